/**
 * Edits a saved connection: for an oVirt engine its name, user and password (left empty, the
 * stored one stays — the daemon keeps it only for the same engine, URL and CA); for VM
 * Essentials its name and, for every SSH host, the user, key file and port. The changed
 * connection is tested before it is saved; a failed test saves nothing and keeps what was typed.
 * A new engine address or new hosts are a new connection (their CA or host keys must be confirmed).
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {ConnectionConfig} from '../../../config/schema.js';
import {useEscape} from '../../app/key-capture.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {useApi} from '../../router/context.js';
import {useAction} from '../../use-load.js';

const REDACTED = '••••';

export function ConnectionEdit(props: {connection: ConnectionConfig; onDone: (saved?: string) => void}) {
  const api = useApi();
  const action = useAction();
  const c = props.connection;
  // Esc leaves the edit, not the connections screen.
  useEscape(() => props.onDone());
  const [failed, setFailed] = useState<{error: {message: string; hint?: string}; values: Record<string, string>} | undefined>();
  const sshHosts = c.kind === 'morpheus' ? c.clusters.flatMap((k) => k.hosts).filter((h) => h.connection.kind === 'ssh') : [];
  const first = sshHosts[0]?.connection.kind === 'ssh' ? sshHosts[0].connection : undefined;
  const initial: Record<string, string> =
    c.kind === 'ovirt'
      ? {name: c.name, user: c.user, password: ''}
      : {name: c.name, user: first?.user ?? '', identityFile: first?.identityFile ?? '', port: String(first?.port ?? 22)};

  const save = async (v: Record<string, string>) => {
    const body: Record<string, unknown> =
      c.kind === 'ovirt'
        ? {...c, name: v.name?.trim() || c.name, user: v.user?.trim() || c.user, password: v.password ? v.password : REDACTED}
        : {
            ...c,
            name: v.name?.trim() || c.name,
            clusters: c.clusters.map((k) => ({
              ...k,
              hosts: k.hosts.map((h) =>
                h.connection.kind === 'ssh'
                  ? {...h, connection: {...h.connection, user: v.user?.trim() || h.connection.user, identityFile: v.identityFile?.trim() || h.connection.identityFile, port: Number(v.port) || h.connection.port}}
                  : h,
              ),
            })),
          };
    const t = await action.run('Testing the changed connection', () => api.testConnection(body));
    if (!t.ok) return;
    if (!t.value.ok) {
      action.dispatch({type: 'clear'});
      return setFailed({values: v, error: t.value.error ?? {message: t.value.reachable ? 'The login was refused.' : 'The connection cannot be reached.'}});
    }
    const r = await action.run('Saving', () => api.update('connections', c.id, body));
    if (r.ok) props.onDone(`Saved: ${t.value.vms ?? 0} VMs visible.`);
  };

  const fields =
    c.kind === 'ovirt'
      ? [
          {key: 'name', label: 'Name', kind: 'text' as const},
          {key: 'user', label: 'User', kind: 'text' as const},
          {key: 'password', label: 'Password', kind: 'secret' as const, placeholder: '(empty: keep the stored one)'},
        ]
      : [
          {key: 'name', label: 'Name', kind: 'text' as const},
          ...(sshHosts.length
            ? [
                {key: 'user', label: 'SSH user', kind: 'text' as const},
                {key: 'identityFile', label: 'SSH key file', kind: 'text' as const},
                {key: 'port', label: 'SSH port', kind: 'text' as const},
              ]
            : []),
        ];
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Edit {c.name} <Text dimColor>{c.kind === 'ovirt' ? c.url : `${sshHosts.length} SSH host(s)`}</Text>
      </Text>
      {failed ? (
        <>
          <Text color="red">✖ The changed connection failed its test; nothing was saved.</Text>
          <ErrorMessage error={failed.error} />
        </>
      ) : null}
      <Form key={failed ? 'again' : 'first'} fields={fields} initial={failed?.values ?? initial} submitLabel="test and save" onSubmit={(v) => void save(v)} />
      <Text dimColor wrap="wrap">A new engine address or new hosts: add a new connection (their CA or host keys must be confirmed).</Text>
      <ActionMessage state={action.state} />
    </Box>
  );
}
