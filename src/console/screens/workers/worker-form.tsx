/**
 * Adds a worker: where disk tasks run (on the appliance, or next to a cluster or host of a
 * connection) and how many at once.
 */
import {Box, Text} from 'ink';
import {Form} from '../../components/form/view.js';
import {ActionMessage} from '../../components/message/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';

export function WorkerForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const conns = useLoad(() => api.list('connections'));
  const save = async (v: Record<string, string>) => {
    const taken = (await api.list('workers').catch(() => [])).map((w) => String(w.id));
    const placement = v.placement === 'appliance' ? {kind: 'appliance'} : {kind: v.placement, connection: v.connection, [v.placement === 'cluster' ? 'cluster' : 'host']: v.where?.trim()};
    const body = {id: idFromName(v.name ?? '', taken), name: v.name?.trim(), placement, slots: Number(v.slots) || 4};
    const r = await action.run('Saving the worker', () => api.create('workers', body), () => `Worker ${body.name} saved.`);
    if (r.ok) props.onDone(body.id);
  };
  // The form takes its choices when it is first drawn: wait for the connections.
  if (conns.loading && !conns.data && !conns.error) return <Text color="cyan">… loading</Text>;
  const connections = (conns.data ?? []).map((c) => ({value: String(c.id), label: String(c.name)}));
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">A worker runs disk tasks (reading a disk, writing it to the repository). Slots: how many disks it handles at once.</Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'letters, digits, -'},
          {
            key: 'placement',
            label: 'Runs',
            kind: 'choice',
            choices: [
              {value: 'appliance', label: 'on the appliance'},
              {value: 'cluster', label: 'for a cluster'},
              {value: 'host', label: 'for a host'},
            ],
          },
          {key: 'connection', label: 'Connection', kind: 'choice', choices: connections.length ? connections : [{value: '', label: '(none yet)'}]},
          {key: 'where', label: 'Cluster or host', kind: 'text', placeholder: 'only for cluster/host'},
          {key: 'slots', label: 'Slots', kind: 'text', placeholder: '(empty: 4)'},
        ]}
        initial={{slots: '4'}}
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
