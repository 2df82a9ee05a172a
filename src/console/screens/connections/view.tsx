/** Connections: test one, refresh its inventory, remove it; add an oVirt engine or VM Essentials hosts. */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {ConnectionConfig} from '../../../config/schema.js';
import {UserError} from '../../../util/errors.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';
import {ConnectionAdd} from './connection-add.js';
import {ConnectionEdit} from './connection-edit.js';
import {RemoveConfirm} from '../remove-item.js';

const describe = (c: ConnectionConfig) => (c.kind === 'ovirt' ? `oVirt ${c.url}` : `VM Essentials, ${c.clusters.flatMap((k) => k.hosts).length} host(s)`);

export function Connections(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const data = useLoad(() => api.list<ConnectionConfig>('connections'));
  const action = useAction();
  const [picked, setPicked] = useState<string | undefined>();
  const [removing, setRemoving] = useState(false);
  const [editing, setEditing] = useState(false);
  const jobs = useLoad(() => api.list<{id: string; name: string; source?: {connection?: string}}>('jobs'));
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const conn = data.data.find((c) => c.id === picked);
  if (conn && editing)
    return (
      <ConnectionEdit
        connection={conn}
        onDone={(saved) => {
          setEditing(false);
          // Said on the menu the edit returns to, so the outcome does not vanish with the form.
          if (saved) action.dispatch({type: 'ok', text: saved});
          data.reload();
        }}
      />
    );
  if (conn && removing) {
    const using = (jobs.data ?? []).filter((j) => j.source?.connection === conn.id).map((j) => j.name);
    return (
      <RemoveConfirm
        action={action}
        collection="connections"
        id={conn.id}
        question={`Remove the connection ${conn.name}?`}
        detail={using.length ? `Jobs that use it: ${using.join(', ')}. They fail until they get another connection.` : 'No job uses it. Its VMs stay where they are; restore points stay in the repositories.'}
        done="Removed."
        onNo={() => setRemoving(false)}
        after={() => {
          setPicked(undefined);
          data.reload();
        }}
      />
    );
  }
  if (conn)
    return (
      <Box flexDirection="column">
        <Text bold>
          {conn.name} <Text dimColor>{describe(conn)}</Text>
        </Text>
        <Select
          key={`actions:${conn.id}`}
          items={[
            {value: 'test', label: 'Test the connection'},
            {value: 'refresh', label: 'Refresh the inventory'},
            {value: 'edit', label: 'Edit', hint: conn.kind === 'ovirt' ? 'name, user, password' : 'name, SSH user, key, port'},
            {value: 'remove', label: 'Remove', hint: 'asks first'},
            {value: 'back', label: '← Back to the list'},
          ]}
          onChoose={(item) => {
            if (item.value === 'test')
              void action.run(
                'Testing',
                async () => {
                  const t = await api.testConnection(conn.id);
                  if (!t.ok) throw new UserError(t.error?.message ?? (t.reachable ? 'The login was refused.' : 'The connection cannot be reached.'), {hint: t.error?.hint});
                  return t;
                },
                (t) => `Reachable and logged in: ${t.vms ?? 0} VMs.`,
              );
            else if (item.value === 'refresh') void action.run('Refreshing the inventory', () => api.inventory(conn.id, true), (i) => `${i.vms.length} VMs found.`);
            else if (item.value === 'remove') setRemoving(true);
            else if (item.value === 'edit') setEditing(true);
            else setPicked(undefined);
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      <Select
        items={[...data.data.map((c) => ({value: c.id, label: c.name, hint: describe(c)})), {value: '+add', label: '+ Add a connection'}]}
        visible={props.height - 3}
        onChoose={(item) => (item.value === '+add' ? nav({type: 'push', route: {name: 'connection-add'}}) : setPicked(item.value))}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

export function ConnectionAddScreen() {
  const nav = useNavigate();
  return <ConnectionAdd onDone={() => nav({type: 'pop'})} />;
}
