/** The appliance: version, daemon status, memory, and the daemon's log (newest last). */
import {Box, Text} from 'ink';
import {ErrorMessage} from '../../components/message/view.js';
import {StatusLine} from '../../components/status/view.js';
import {bytes, when} from '../../format.js';
import {useApi} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

export function Appliance(props: ScreenProps) {
  const api = useApi();
  const status = useLoad(() => api.status());
  const logs = useLoad(() => api.logs(100));
  const d = status.data?.daemon;
  const room = Math.max(2, props.height - 7);
  return (
    <Box flexDirection="column">
      {status.error ? <ErrorMessage error={status.error} /> : null}
      {d ? (
        <>
          <StatusLine tone="ok">vmbackupd {d.version} is running (pid {d.pid})</StatusLine>
          <Text wrap="truncate-end">
            Since {when(d.startedAt)} · memory {bytes(d.rssBytes)} · {status.data!.sessions.filter((s) => s.state === 'running').length} session(s) running
          </Text>
          <Text wrap="truncate-end">State {d.stateDir} · socket {d.socket}</Text>
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
