/**
 * The appliance's own health: daemon version and memory, free space of the state directory and
 * of every repository (warned below the low-space threshold), each repository's last health
 * check, and the daemon's log (newest last).
 */
import {Box, Text} from 'ink';
import {ErrorMessage} from '../../components/message/view.js';
import {StatusLine} from '../../components/status/view.js';
import {bytes, when} from '../../format.js';
import {useApi} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

/** Free space as "12.3 GiB free of 100 GiB (12 %)", and whether it is below the warning threshold. */
function space(free: number | undefined, total: number | undefined, lowPercent: number): {text: string; low: boolean} {
  if (free === undefined || !total) return {text: 'free space unknown', low: false};
  const pct = (free / total) * 100;
  return {text: `${bytes(free)} free of ${bytes(total)} (${Math.round(pct)} %)`, low: pct < lowPercent};
}

export function Appliance(props: ScreenProps) {
  const api = useApi();
  const status = useLoad(() => api.status());
  const settings = useLoad(() => api.settings());
  const logs = useLoad(() => api.logs(100));
  const d = status.data?.daemon;
  const repos = status.data?.repositories ?? [];
  const low = settings.data?.lowSpacePercent ?? 10;
  const room = Math.max(2, props.height - 9 - repos.length);
  return (
    <Box flexDirection="column">
      {status.error ? <ErrorMessage error={status.error} /> : null}
      {d ? (
        <>
          <StatusLine tone="ok">vmbackupd {d.version} is running (pid {d.pid})</StatusLine>
          <Text wrap="truncate-end">
            Since {when(d.startedAt)} · memory {bytes(d.rssBytes)} · {status.data!.sessions.filter((s) => s.state === 'running').length} session(s) running
          </Text>
          {(() => {
            const st = space(d.stateFreeBytes, d.stateTotalBytes, low);
            return (
              <StatusLine tone={st.low ? 'warning' : 'ok'}>
                State {d.stateDir}: {st.text}
              </StatusLine>
            );
          })()}
          {repos.map((r) => {
            const sp = space(r.freeBytes, r.totalBytes, low);
            const hc = r.lastHealthCheck;
            const check = hc ? `checked ${when(hc.at)}${hc.ok ? '' : `: ${hc.problems} problem(s)`}` : 'never checked';
            return (
              <StatusLine key={r.id} tone={r.error || (hc && !hc.ok) ? 'error' : sp.low || !hc ? 'warning' : 'ok'}>
                {r.name}: {sp.text} · {check}
              </StatusLine>
            );
          })}
        </>
      ) : status.loading ? (
        <Text color="cyan">… loading</Text>
      ) : null}
      <Text bold>Log</Text>
      {logs.error ? <ErrorMessage error={logs.error} /> : null}
      {(logs.data?.lines ?? []).slice(-room).map((l, i) => (
        <Text key={i} wrap="truncate-end" color={/error|fail/i.test(l) ? 'red' : /warn/i.test(l) ? 'yellow' : undefined}>
          {l}
        </Text>
      ))}
    </Box>
  );
}
