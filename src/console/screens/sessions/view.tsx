/** Session history of every job, newest first; Enter opens the session view. */
import {Box, Text} from 'ink';
import {ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {SYMBOL, toneOf} from '../../components/status/status.js';
import {duration, when} from '../../format.js';
import {useEvents} from '../../live/use-events.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

export function Sessions(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const data = useLoad(() => api.sessions({limit: 200}));
  useEvents((e) => e.type === 'session' && data.reload());
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const list = [...data.data].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  if (list.length === 0) return <Text>No sessions yet.</Text>;
  return (
    <Box flexDirection="column">
      <Select
        items={list.map((s) => ({value: s.id, label: `${SYMBOL[toneOf(s.state)]} ${when(s.startedAt)} ${s.jobName}`, hint: `${s.state} · ${s.vms.length} VMs · ${duration(s.totals.durationMs)}`}))}
        visible={props.height - 2}
        onChoose={(item) => nav({type: 'push', route: {name: 'session', params: {id: item.value}}})}
      />
    </Box>
  );
}
