/**
 * The audit log: every change asked of the daemon (refused ones too), newest last: when, who
 * (user and uid from the kernel), with which role, what, and what came of it. Read-only.
 */
import {Box, Text} from 'ink';
import {ErrorMessage} from '../../components/message/view.js';
import {when} from '../../format.js';
import {useApi} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {AuditEntry} from '../../api.js';
import type {ScreenProps} from '../types.js';

export function Audit(props: ScreenProps) {
  const api = useApi();
  const me = useLoad(() => api.whoami());
  const audit = useLoad(() => api.audit(200));
  const room = Math.max(2, props.height - 2);
  const entries = audit.data?.entries ?? [];
  return (
    <Box flexDirection="column">
      {me.data ? (
        <Text wrap="truncate-end">
          You are {me.data.user} (uid {me.data.uid}), {me.data.role === 'admin' ? 'an admin' : 'an operator'}.
        </Text>
      ) : null}
      {audit.error ? <ErrorMessage error={audit.error} /> : null}
      {audit.loading && !audit.data ? <Text color="cyan">… loading</Text> : null}
      {audit.data && entries.length === 0 ? <Text>No changes recorded yet.</Text> : null}
      {lines(entries).slice(-room).map((l, i) => (
        <Text key={i} wrap="truncate-end" color={l.tone}>
          {l.text}
        </Text>
      ))}
    </Box>
  );
}

/** One line per entry; a refused or failed change gets a second line with the reason. */
function lines(entries: readonly AuditEntry[]): {text: string; tone: string | undefined}[] {
  const out: {text: string; tone: string | undefined}[] = [];
  for (const e of entries) {
    const tone = e.outcome === 'ok' ? undefined : e.outcome === 'refused' ? 'yellow' : 'red';
    const mark = e.outcome === 'ok' ? '✔' : e.outcome === 'refused' ? '⚠' : '✖';
    out.push({text: `${mark} ${when(e.time)} ${e.user} (${e.uid}, ${e.role}) ${e.method} ${e.path}`, tone});
    if (e.outcome !== 'ok') out.push({text: `    ${e.outcome}${e.error ? `: ${e.error}` : ''}`, tone});
  }
  return out;
}
