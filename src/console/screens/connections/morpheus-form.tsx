/**
 * Connects HPE Morpheus VM Essentials hosts (libvirt/QEMU): either this appliance itself (libvirt
 * on this machine, no SSH), or KVM hosts over SSH. For SSH the appliance's own key is shown with
 * the line that authorizes it on a host, the host keys the hosts present are shown to compare
 * (ssh-ed25519 first, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the
 * host), and only after they are confirmed is the connection tested; only a connection that
 * passed is saved.
 */
import {Box, Text} from 'ink';
import {useReducer} from 'react';
import type {HostKeyScanReply} from '../../api.js';
import {ApplianceKeyLine} from '../../components/appliance-key/view.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';

type ScannedKey = HostKeyScanReply['keys'][number];
interface HostKey {
  host: string;
  key: ScannedKey;
}
type Step =
  | {at: 'where'}
  | {at: 'local'; error?: {message: string; hint?: string}; values?: Record<string, string>}
  | {at: 'form'; error?: {message: string; hint?: string}; values?: Record<string, string>}
  | {at: 'confirm'; values: Record<string, string>; keys: HostKey[]};

const hostsOf = (v: Record<string, string>) =>
  (v.hosts ?? '')
    .split(/[\s,]+/)
    .map((h) => h.trim())
    .filter(Boolean);

/** The key to compare: ed25519 (what `ssh-keygen -lf` of the host's ed25519 key shows), else the first. */
export function keyToConfirm(keys: readonly ScannedKey[]): ScannedKey | undefined {
  return keys.find((k) => k.type === 'ssh-ed25519') ?? keys[0];
}

export function MorpheusForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const applianceKey = useLoad(() => api.applianceSshKey());
  const [step, go] = useReducer((_: Step, s: Step) => s, {at: 'where'});

  const save = async (v: Record<string, string>, hosts: {name: string; connection: Record<string, unknown>}[], back: (error: {message: string; hint?: string}) => void) => {
    const taken = (await api.list('connections').catch(() => [])).map((c) => String(c.id));
    const body = {id: idFromName(v.name ?? '', taken), kind: 'morpheus', name: v.name?.trim(), clusters: [{name: v.cluster?.trim() || 'default', hosts}]};
    const t = await action.run('Testing the connection', () => api.testConnection(body));
    if (!t.ok) return;
    if (!t.value.ok) return back(t.value.error ?? {message: t.value.reachable ? 'The hosts refused the SSH login.' : 'The hosts cannot be reached.'});
    const c = await action.run('Saving', () => api.create('connections', body), () => `Connected: ${t.value.vms ?? 0} VMs visible.`);
    if (c.ok) props.onDone(body.id);
  };

  const scan = async (values: Record<string, string>) => {
    const hosts = hostsOf(values);
    if (hosts.length === 0) return go({at: 'form', values, error: {message: 'Hosts: give at least one host name or address.', hint: 'Separate several hosts with commas.'}});
    const keys: HostKey[] = [];
    for (const h of hosts) {
      const r = await action.run(`Reading the host key of ${h}`, () => api.scanHostKey(h, Number(values.port) || 22));
      if (!r.ok) return;
      const k = keyToConfirm(r.value.keys);
      if (!k) return go({at: 'form', values, error: {message: `${h} presented no SSH host key.`, hint: 'Check that sshd runs on the host and the port is right.'}});
      keys.push({host: h, key: k});
    }
    action.dispatch({type: 'clear'});
    go({at: 'confirm', values, keys});
  };

  if (step.at === 'where')
    return (
      <Box flexDirection="column">
        <Text>Where does libvirt run?</Text>
        <Select
          items={[
            {value: 'ssh', label: 'On KVM hosts reached over SSH'},
            {value: 'local', label: 'On this appliance (no SSH)'},
          ]}
          onChoose={(item) => go(item.value === 'local' ? {at: 'local'} : {at: 'form'})}
        />
      </Box>
    );

  if (step.at === 'local')
    return (
      <Box flexDirection="column">
        {step.error ? <ErrorMessage error={step.error} /> : null}
        <Text wrap="wrap">The appliance backs up the VMs of the libvirt on this machine (qemu:///system).</Text>
        <Form
          fields={[
            {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. this-appliance'},
            {key: 'cluster', label: 'Cluster', kind: 'text', placeholder: '(empty: default)'},
          ]}
          initial={step.values}
          submitLabel="test and save"
          onSubmit={(v) => void save(v, [{name: 'localhost', connection: {kind: 'local'}}], (error) => go({at: 'local', values: v, error}))}
        />
        <ActionMessage state={action.state} />
      </Box>
    );

  if (step.at === 'confirm')
    return (
      <Box flexDirection="column">
        <Text wrap="wrap">Compare each host key with the host (there: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub):</Text>
        {step.keys.map((k) => (
          <Text key={k.host} color="yellow" wrap="wrap">
            {'  '}
            {k.host}: {k.key.fingerprint} ({k.key.type})
          </Text>
        ))}
        <Select
          items={[
            {value: 'trust', label: 'The keys match: trust them, test and save'},
            {value: 'no', label: 'They do not match: go back'},
          ]}
          onChoose={(item) => {
            const v = step.values;
            if (item.value !== 'trust') return go({at: 'form', values: v});
            const identityFile = v.identityFile?.trim() || applianceKey.data?.identityFile;
            void save(
              v,
              step.keys.map((k) => ({
                name: k.host,
                connection: {kind: 'ssh', host: k.host, port: Number(v.port) || 22, user: v.user?.trim() || 'root', identityFile, hostKey: k.key.key},
              })),
              (error) => go({at: 'form', values: v, error}),
            );
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );

  const key = applianceKey.data;
  return (
    <Box flexDirection="column">
      {step.error ? <ErrorMessage error={step.error} /> : null}
      <ApplianceKeyLine
        state={applianceKey}
        intro={(k) => `The appliance logs in with its own key (${k.fingerprint}). On each host, as the SSH user, run:`}
        line={(k) => k.authorizeCommand}
        note={(k) => `(one line; a narrow terminal breaks it — or copy ${k.identityFile}.pub from the appliance)`}
      />
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. vme-site1'},
          {key: 'cluster', label: 'Cluster', kind: 'text', placeholder: '(empty: default)'},
          {key: 'hosts', label: 'Hosts', kind: 'text', placeholder: 'e.g. kvm1, kvm2'},
          {key: 'user', label: 'SSH user', kind: 'text', placeholder: '(empty: root)'},
          {key: 'identityFile', label: 'SSH key file', kind: 'text', placeholder: key ? `${key.identityFile} (the appliance's)` : 'the appliance\'s key'},
          {key: 'port', label: 'SSH port', kind: 'text', placeholder: '(empty: 22)'},
        ]}
        initial={step.values}
        submitLabel="read the host keys"
        onSubmit={(v) => void scan(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
