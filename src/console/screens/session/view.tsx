/**
 * One session, live: per-VM state and per-disk progress (from events), the log as it grows with
 * warnings and errors marked, totals (rate, bottleneck) and each VM's restore point when it ends.
 * Keys: s stop, f retry the failed VMs, h the job's past sessions, l the whole log (log-view.tsx).
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {LogLine, SessionVm} from '../../../api/session-model.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {ProgressBar} from '../../components/progress-bar/view.js';
import {COLOR, SYMBOL, toneOf} from '../../components/status/status.js';
import {useKeys} from '../../components/use-keys.js';
import {bytes, duration, rate, timeLeft, when} from '../../format.js';
import type {SessionProgress, VmProgress} from '../../live/progress-state.js';
import {useEvents} from '../../live/use-events.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {LogView} from './log-view.js';

/** The recorded log plus live lines newer than its last line. */
export function mergedLog(recorded: readonly LogLine[], live: readonly LogLine[]): LogLine[] {
  const last = recorded[recorded.length - 1]?.time ?? '';
  return [...recorded, ...live.filter((l) => l.time > last)];
}

export function Session(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const id = props.params.id ?? '';
  const data = useLoad(() => api.session(id), [id]);
  const action = useAction();
  const [viewingLog, setViewingLog] = useState(false);
  const {progress, lost} = useEvents((e) => {
    if ((e.type === 'session' && e.session.id === id) || (e.type === 'engine' && e.sessionId === id && e.event.type === 'vm-finished')) data.reload();
  });
  const s = data.data;
  useKeys((input) => {
    if (!s || viewingLog) return;
    if (input === 'l') return setViewingLog(true);
    if (s.jobId === 'restore') {
      // A restore has no job and no retry; s stops it (the daemon removes what it created).
      if (input === 's') void action.run('Stopping the restore', () => api.stopRestore(s.id), (r) => (r.stopped ? 'Stop requested: what the restore created is removed.' : 'The restore is not running.'));
      return;
    }
    if (input === 's') void action.run('Stopping the session', () => api.stopJob(s.jobId), () => 'Stop requested: running disks finish their current chunk.');
    else if (input === 'f')
      void action.run('Retrying failed VMs', () => api.retryFailed(s.jobId)).then((r) => {
        if (r.ok) nav({type: 'replace', route: {name: 'session', params: {id: r.value.id}}});
      });
    else if (input === 'h') nav({type: 'push', route: {name: 'job', params: {id: s.jobId}}});
  });
  if (data.error && !s) return <ErrorMessage error={data.error} />;
  if (!s) return <Text color="cyan">… loading</Text>;
  const live: SessionProgress | undefined = progress[id];
  const tone = toneOf(live?.state ?? s.state);
  const log = mergedLog(s.log, live?.log ?? []);
  const vmLines = s.vms.flatMap((v) => vmRows(v, live?.vms[v.id], props.width));
  // Live VMs the record does not list yet (the session started them after our load).
  for (const v of Object.values(live?.vms ?? {})) if (!s.vms.some((x) => x.id === v.id)) vmLines.push(...vmRows({id: v.id, name: v.name, state: 'running', attempts: 1}, v, props.width));
  const logRoom = Math.max(3, props.height - 4 - Math.min(vmLines.length, Math.floor(props.height / 2)));
  if (viewingLog) return <LogView log={log} vms={[...new Set(log.map((l) => l.vm).filter((v): v is string => !!v))]} height={props.height} onClose={() => setViewingLog(false)} />;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" color={COLOR[tone]}>
        {SYMBOL[tone]} {s.jobName} · {live?.state ?? s.state} · started {when(s.startedAt)}
        {s.endedAt ? ` · ${duration(s.totals.durationMs)} · ${bytes(s.totals.readBytes)} read at ${rate(s.totals.rateBytesPerSec)}, ${bytes(s.totals.storedBytes)} stored${s.totals.bottleneck ? ` · bottleneck ${s.totals.bottleneck}` : ''}` : ''}
        {s.reason ? ` · ${s.reason}` : ''}
      </Text>
      {vmLines.slice(0, Math.floor(props.height / 2))}
      <Text bold>Log</Text>
      {log.slice(-logRoom).map((l, i) => (
        <Text key={i} wrap="truncate-end" color={l.severity === 'error' ? 'red' : l.severity === 'warning' ? 'yellow' : undefined}>
          {l.severity === 'error' ? '✖' : l.severity === 'warning' ? '⚠' : ' '} {l.time.slice(11, 19)} {l.message}
        </Text>
      ))}
      {lost ? <Text color="yellow">⚠ Live updates stopped: {lost}</Text> : null}
      <ActionMessage state={action.state} />
      <Text dimColor>{s.jobId === 'restore' ? 's stop the restore · l whole log' : 's stop · f retry failed VMs · h job history · l whole log'}</Text>
    </Box>
  );
}

function vmRows(v: SessionVm, p: VmProgress | undefined, width: number) {
  const tone = toneOf(p?.status ?? v.state);
  const disks = Object.values(p?.disks ?? {});
  const rows = [
    <Text key={v.id} color={COLOR[tone]} wrap="truncate-end">
      {SYMBOL[tone]} {v.name} {p?.status ?? v.state}
      {v.incremental || p?.incremental ? ' (incremental)' : v.full ? ' (full)' : ''}
      {v.reason || p?.error ? ` – ${v.reason ?? p?.error}` : ''}
      {v.figures && v.endedAt ? ` · ${bytes(v.figures.readBytes)} read, ${bytes(v.figures.storedBytes)} stored, ${duration(v.figures.durationMs)}` : ''}
      {v.restorePointId ? ` · ${v.restorePointId}` : ''}
    </Text>,
  ];
  // Restore verification: booting now, or what the boot check found.
  const check = v.verification;
  if (check)
    rows.push(
      <Text key={`${v.id}/boot`} color={check.result === 'passed' ? 'green' : check.result === 'running' ? 'cyan' : 'yellow'} wrap="truncate-end">
        {'    '}boot check {check.result === 'running' ? 'running' : check.result}: {check.message}
      </Text>,
    );
  if (v.state === 'running' || (p && !p.status))
    for (const d of disks)
      rows.push(
        <Text key={`${v.id}/${d.key}`} wrap="truncate-end">
          {'    '}
          {d.name.slice(0, 18).padEnd(18)} <ProgressBar fraction={d.size ? d.done / d.size : 0} width={Math.max(10, width - 60)} /> {rate(d.rate).padStart(11)} {`${duration(timeLeft(d.done, d.size, d.rate))} left`.padStart(11)}
        </Text>,
      );
  return rows;
}
