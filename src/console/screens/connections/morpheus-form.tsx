/**
 * Connects HPE Morpheus VM Essentials hosts (libvirt/QEMU over SSH): a cluster name, its hosts,
 * the SSH user and key; the host keys the hosts present are shown to confirm; then a connection
 * test, and only a connection that passed is saved.
 */
import {Box, Text} from 'ink';
import {useReducer} from 'react';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction} from '../../use-load.js';

interface HostKey {
  host: string;
  key: string;
  fingerprint: string;
}
type Step = {at: 'form'; error?: {message: string; hint?: string}; values?: Record<string, string>} | {at: 'confirm'; values: Record<string, string>; keys: HostKey[]};

const hostsOf = (v: Record<string, string>) =>
  (v.hosts ?? '')
    .split(/[\s,]+/)
    .map((h) => h.trim())
    .filter(Boolean);

export function MorpheusForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const [step, go] = useReducer((_: Step, s: Step) => s, {at: 'form'});
  const scan = async (values: Record<string, string>) => {
    const hosts = hostsOf(values);
    if (hosts.length === 0) return go({at: 'form', values, error: {message: 'Hosts: give at least one host name or address.', hint: 'Separate several hosts with commas.'}});
    const keys: HostKey[] = [];
    for (const h of hosts) {
      const r = await action.run(`Reading the host key of ${h}`, () => api.scanHostKey(h, Number(values.port) || 22));
      if (!r.ok) return;
      const k = r.value.keys.find((x) => x.type === 'ssh-ed25519') ?? r.value.keys[0];
      if (!k) return go({at: 'form', values, error: {message: `${h} presented no SSH host key.`, hint: 'Check that sshd runs on the host and the port is right.'}});
      keys.push({host: h, key: k.key, fingerprint: k.fingerprint});
    }
    action.dispatch({type: 'clear'});
    go({at: 'confirm', values, keys});
  };
  const trust = async (s: Extract<Step, {at: 'confirm'}>) => {
    const v = s.values;
    const taken = (await api.list('connections').catch(() => [])).map((c) => String(c.id));
    const body = {
      id: idFromName(v.name ?? '', taken),
      kind: 'morpheus',
      name: v.name?.trim(),
      clusters: [
        {
          name: v.cluster?.trim() || 'default',
          hosts: s.keys.map((k) => ({
            name: k.host,
            connection: k.host === 'localhost' && v.user === 'local' ? {kind: 'local'} : {kind: 'ssh', host: k.host, port: Number(v.port) || 22, user: v.user?.trim(), identityFile: v.identityFile?.trim(), hostKey: k.key},
          })),
        },
      ],
    };
    const t = await action.run('Testing the connection', () => api.testConnection(body));
    if (!t.ok) return;
    if (!t.value.ok) return go({at: 'form', values: v, error: t.value.error ?? {message: t.value.reachable ? 'The hosts refused the SSH login.' : 'The hosts cannot be reached.'}});
    const c = await action.run('Saving', () => api.create('connections', body), () => `Connected: ${t.value.vms ?? 0} VMs visible.`);
    if (c.ok) props.onDone(body.id);
  };
  if (step.at === 'confirm')
    return (
      <Box flexDirection="column">
        <Text>Compare each host key with the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub):</Text>
        {step.keys.map((k) => (
          <Text key={k.host} color="yellow" wrap="truncate-end">
            {'  '}
            {k.host}: {k.fingerprint}
          </Text>
        ))}
        <Select
          items={[
            {value: 'trust', label: 'The keys match: trust them, test and save'},
            {value: 'no', label: 'They do not match: go back'},
          ]}
          onChoose={(item) => (item.value === 'trust' ? void trust(step) : go({at: 'form', values: step.values}))}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      {step.error ? <ErrorMessage error={step.error} /> : null}
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. vme-site1'},
          {key: 'cluster', label: 'Cluster', kind: 'text', placeholder: 'default'},
          {key: 'hosts', label: 'Hosts', kind: 'text', placeholder: 'kvm1, kvm2'},
          {key: 'user', label: 'SSH user', kind: 'text', placeholder: 'root'},
          {key: 'identityFile', label: 'SSH key file', kind: 'text', placeholder: '/etc/vmbackup/id_ed25519'},
          {key: 'port', label: 'SSH port', kind: 'text', placeholder: '22'},
        ]}
        initial={step.values}
        submitLabel="read the host keys"
        onSubmit={(v) => void scan(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
