/**
 * The home screen: what needs attention at the top, then the jobs (last result, last run, next
 * run; Enter opens one), running sessions with progress, rate and time left, VMs running from a
 * backup (instant recoveries: i manages them), and the repositories with used/free space and
 * dedup ratio. Reloads when a session changes.
 */
import {useKeys} from '../../components/use-keys.js';
import {Box, Text} from 'ink';
import {useMemo, useReducer} from 'react';
import type {JobConfig} from '../../../config/schema.js';
import type {SessionSummary, StatusReply} from '../../api.js';
import {ErrorMessage} from '../../components/message/view.js';
import {ProgressBar} from '../../components/progress-bar/view.js';
import {Select} from '../../components/select/view.js';
import {COLOR} from '../../components/status/status.js';
import {StatusLine} from '../../components/status/view.js';
import {cell} from '../../components/table/layout.js';
import {duration, rate, timeLeft} from '../../format.js';
import {sessionTotalsOf} from '../../live/progress-state.js';
import {useEvents} from '../../live/use-events.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {attentionItems, maintenanceReducer} from './attention.js';
import {jobHeader, jobRows} from './job-rows.js';
import {repositoryLines} from '../repositories/table.js';

interface Data {
  status: StatusReply;
  jobs: JobConfig[];
  sessions: SessionSummary[];
  lowSpacePercent: number;
}

export function Dashboard(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const data = useLoad<Data>(async () => {
    const [status, jobs, sessions, settings] = await Promise.all([api.status(), api.list<JobConfig>('jobs'), api.sessions({limit: 200}), api.settings().catch(() => ({lowSpacePercent: undefined}))]);
    return {status, jobs, sessions, lowSpacePercent: settings.lowSpacePercent ?? 10};
  });
  const [maintenance, seeMaintenance] = useReducer(maintenanceReducer, {});
  const {progress} = useEvents((e) => {
    if (e.type === 'maintenance') seeMaintenance(e);
    if (e.type === 'session' || e.type === 'config' || (e.type === 'maintenance' && e.state !== 'started')) data.reload();
  });
  useKeys((input) => {
    if (input === 'n') nav({type: 'push', route: {name: 'job-wizard'}});
    else if (input === 'm') nav({type: 'push', route: {name: 'menu'}});
    else if (input === 'r') nav({type: 'push', route: {name: 'restore'}});
    else if (input === 'i') nav({type: 'push', route: {name: 'instant'}});
    else if (input === 'g') data.reload();
  });
  const d = data.data;
  const w = props.width;
  // Recomputed per load and width, not per progress event (bench/console.ts).
  const jobItems = useMemo(() => (d ? jobRows(d.jobs, d.sessions, d.status.sessions.filter((s) => s.state === 'running'), w - 2, new Date()) : []), [d, w]);
  if (data.error && !d) return <ErrorMessage error={data.error} />;
  if (!d) return <Text color="cyan">… loading from vmbackupd</Text>;
  const attention = attentionItems(d.status, d.sessions, d.lowSpacePercent, maintenance);
  // Running backups, and running restores (they live in the history, not among the job sessions).
  const running = [
    ...d.status.sessions.filter((s) => s.state === 'running'),
    ...d.sessions.filter((s) => s.jobId === 'restore' && s.state === 'running' && !d.status.sessions.some((x) => x.id === s.id)),
  ];
  const repoLines = repositoryLines(d.status.repositories, w);
  const jobsVisible = Math.max(2, props.height - 6 - Math.min(3, attention.length) - running.length * 1 - repoLines.length);
  return (
    <Box flexDirection="column">
      {attention.length === 0 ? <StatusLine tone="ok">All jobs and repositories are fine.</StatusLine> : null}
      {attention.slice(0, 3).map((a, i) => (
        <StatusLine key={i} tone={a.tone}>
          {a.text}
        </StatusLine>
      ))}
      {attention.length > 3 ? <Text dimColor>  … and {attention.length - 3} more (m → Sessions)</Text> : null}
      <Text dimColor>{'  ' + jobHeader(w - 2)}</Text>
      {d.jobs.length === 0 ? (
        <Text>  No backup jobs yet. Press n to create one.</Text>
      ) : (
        <Select
          items={jobItems}
          visible={jobsVisible}
          onChoose={(item) => nav({type: 'push', route: {name: 'job', params: {id: item.value}}})}
          render={(item, focused) => (
            <Text wrap="truncate-end" color={focused ? 'cyan' : COLOR[(item as (typeof jobItems)[number]).tone]}>
              {item.label}
            </Text>
          )}
        />
      )}
      {running.map((s) => {
        if (s.trigger === 'instant')
          return (
            <Text key={s.id} wrap="truncate-end">
              <Text color="cyan">⏵ </Text>
              {s.jobName}: runs from the backup <Text dimColor>· i to finish or stop it</Text>
            </Text>
          );
        const t = sessionTotalsOf(progress[s.id]);
        const done = t.size ? t.done : s.totals.readBytes;
        const size = t.size || s.totals.sizeBytes;
        return (
          <Box key={s.id}>
            <Text wrap="truncate-end">
              <Text color="cyan">▶ </Text>
              {cell(s.jobName, 16)} <ProgressBar fraction={size ? done / size : 0} width={Math.max(10, w - 58)} /> {cell(rate(t.rate), 11, 'right')} {cell(`${duration(timeLeft(done, size, t.rate))} left`, 12, 'right')}
            </Text>
          </Box>
        );
      })}
      {repoLines.map((l, i) => (
        <Text key={i} dimColor={i === 0} wrap="truncate-end">
          {l}
        </Text>
      ))}
      <Text dimColor>Enter open job · n new job · r restore{running.some((s) => s.trigger === 'instant') ? ' · i instant VMs' : ''} · m menu · g refresh</Text>
      {data.error ? <ErrorMessage error={data.error} /> : null}
    </Box>
  );
}
