/**
 * Connects an OLVM/oVirt engine in three steps: URL, user and password; the engine CA's SHA-256
 * fingerprint to confirm (never trusted blindly); then a connection test, and only a connection
 * that passed is saved.
 */
import {Box, Text} from 'ink';
import {useReducer} from 'react';
import {explain} from '../../api.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {StatusLine} from '../../components/status/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction} from '../../use-load.js';

type Step = {at: 'form'; values?: Record<string, string>} | {at: 'confirm'; values: Record<string, string>; pem: string; fingerprint: string} | {at: 'fail'; error: {message: string; hint?: string}; values: Record<string, string>};

export function OvirtForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const [step, go] = useReducer((_: Step, s: Step) => s, {at: 'form'});
  const fetchCa = async (values: Record<string, string>) => {
    const r = await action.run("Fetching the engine's CA", () => api.fetchCa(values.url!.trim()));
    if (r.ok) go({at: 'confirm', values, pem: r.value.pem, fingerprint: r.value.fingerprint});
  };
  const trust = async (s: Extract<Step, {at: 'confirm'}>) => {
    const taken = (await api.list('connections').catch(() => [])).map((c) => String(c.id));
    const v = s.values;
    const body = {id: idFromName(v.name ?? '', taken), kind: 'ovirt', name: v.name?.trim(), url: v.url?.trim(), user: v.user?.trim(), password: v.password, caPem: s.pem, caFingerprint: s.fingerprint};
    const t = await action.run('Testing the connection', () => api.testConnection(body));
    if (!t.ok) return;
    if (!t.value.ok) {
      go({at: 'fail', values: v, error: t.value.error ?? {message: t.value.reachable ? 'The engine refused the user or password.' : 'The engine cannot be reached.'}});
      return;
    }
    const c = await action.run('Saving', () => api.create('connections', body), () => `Connected: ${t.value.vms ?? 0} VMs visible.`);
    if (c.ok) props.onDone(body.id);
  };
  if (step.at === 'confirm')
    return (
      <Box flexDirection="column">
        <Text>The engine presented this CA. Compare its SHA-256 fingerprint with the one on the engine:</Text>
        <Text dimColor>  openssl x509 -in /etc/pki/ovirt-engine/ca.pem -noout -fingerprint -sha256</Text>
        {/* 16 pairs a line, as openssl's output is compared pair by pair. */}
        <Text color="yellow">  {step.fingerprint.slice(0, 47)}</Text>
        <Text color="yellow">  {step.fingerprint.slice(48)}</Text>
        <Select
          items={[
            {value: 'trust', label: 'The fingerprint matches: trust it, test and save'},
            {value: 'no', label: 'It does not match: go back'},
          ]}
          onChoose={(item) => (item.value === 'trust' ? void trust(step) : go({at: 'form', values: step.values}))}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      {step.at === 'fail' ? (
        <>
          <StatusLine tone="error">The connection test failed; nothing was saved.</StatusLine>
          <ErrorMessage error={step.error} />
        </>
      ) : null}
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. olvm'},
          {key: 'url', label: 'Engine URL', kind: 'text', placeholder: 'e.g. https://engine.example.com/ovirt-engine'},
          {key: 'user', label: 'User', kind: 'text', placeholder: 'e.g. admin@internal'},
          {key: 'password', label: 'Password', kind: 'secret'},
        ]}
        initial={step.values}
        submitLabel="fetch the CA"
        onSubmit={(v) => void fetchCa(v).catch((e: unknown) => go({at: 'fail', values: v, error: explain(e)}))}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
