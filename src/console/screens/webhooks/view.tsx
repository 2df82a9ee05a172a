/**
 * Webhooks: where session reports are posted besides email (Slack, Teams, Mattermost or our
 * JSON), with each one's delivery state from the daemon's queue; add one, send a test, turn it
 * on or off, remove it (asks first; a webhook a job names cannot go until the job stops naming it).
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {idFromName} from '../../ids.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import {RemoveConfirm} from '../remove-item.js';
import type {ScreenProps} from '../types.js';

interface Listed {
  id: string;
  name: string;
  enabled: boolean;
  format: string;
  allJobs: boolean;
  onSuccess: boolean;
  onWarning: boolean;
  onFailure: boolean;
  info?: {host?: string; pending?: number; lastError?: {message: string; hint?: string}; lastSuccessAt?: string};
  [k: string]: unknown;
}

const FORMAT_LABEL: Record<string, string> = {json: 'JSON', slack: 'Slack', teams: 'Teams', mattermost: 'Mattermost'};

function results(w: Listed): string {
  const on = [w.onSuccess && 'success', w.onWarning && 'warning', w.onFailure && 'failure'].filter(Boolean);
  return on.length === 3 ? 'every result' : on.length ? on.join('/') : 'nothing';
}

function state(w: Listed): string {
  if (!w.enabled) return 'off';
  if (w.info?.lastError) return `⚠ ${w.info.pending ? `${w.info.pending} waiting` : 'last delivery failed'}`;
  if (w.info?.pending) return `${w.info.pending} waiting`;
  return w.info?.lastSuccessAt ? '✔ delivered' : 'on';
}

export function Webhooks(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const [picked, setPicked] = useState<string | undefined>();
  const [removing, setRemoving] = useState(false);
  const data = useLoad(() => api.list<Listed>('webhooks'));
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const hooks = data.data;
  const w = hooks.find((x) => x.id === picked);
  const leave = () => {
    setPicked(undefined);
    setRemoving(false);
  };
  if (w && removing)
    return (
      <RemoveConfirm
        action={action}
        collection="webhooks"
        id={w.id}
        question={`Remove the webhook ${w.name}?`}
        detail="Reports still queued for it are given up."
        done="Webhook removed."
        onNo={() => setRemoving(false)}
        after={() => {
          leave();
          data.reload();
        }}
      />
    );
  if (w)
    return (
      <Box flexDirection="column">
        <Text bold wrap="truncate-end">
          {w.name}{' '}
          <Text dimColor>
            {FORMAT_LABEL[w.format] ?? w.format} → {w.info?.host ?? '?'} · {w.allJobs ? 'every job' : 'jobs that pick it'} · {results(w)}
          </Text>
        </Text>
        {w.info?.lastError ? <ErrorMessage error={w.info.lastError} /> : null}
        <Select
          key={`actions:${w.id}:${String(w.enabled)}`}
          items={[
            {value: 'test', label: 'Send a test report', hint: 'now, and show the answer'},
            {value: 'toggle', label: w.enabled ? 'Turn off' : 'Turn on', hint: w.enabled ? 'no reports until turned on' : ''},
            {value: 'remove', label: 'Remove', hint: 'asks first'},
            {value: 'back', label: '← Back to the list'},
          ]}
          onChoose={(item) => {
            if (item.value === 'back') return leave();
            if (item.value === 'remove') return setRemoving(true);
            if (item.value === 'test') return void action.run('Posting a test report', () => api.testWebhook(w.id), (r) => r.message).then(() => data.reload());
            void action
              .run('Saving the webhook', () => api.update('webhooks', w.id, {...w, enabled: !w.enabled}), () => `Webhook ${w.name} turned ${w.enabled ? 'off' : 'on'}.`)
              .then((r) => r.ok && data.reload());
          }}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      {hooks.length === 0 ? <Text wrap="wrap">No webhooks: session reports go by email only. A webhook posts them to Slack, Teams, Mattermost or any HTTPS endpoint.</Text> : null}
      <Select
        items={[
          ...hooks.map((x) => ({value: x.id, label: x.name, hint: `${FORMAT_LABEL[x.format] ?? x.format} → ${x.info?.host ?? '?'} · ${x.allJobs ? 'every job' : 'picked by jobs'} · ${state(x)}`})),
          {value: '+add', label: '+ Add a webhook'},
        ]}
        visible={props.height - 3}
        onChoose={(item) => (item.value === '+add' ? nav({type: 'push', route: {name: 'webhook-add'}}) : setPicked(item.value))}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

const RESULTS: Record<string, {onSuccess: boolean; onWarning: boolean; onFailure: boolean}> = {
  all: {onSuccess: true, onWarning: true, onFailure: true},
  problems: {onSuccess: false, onWarning: true, onFailure: true},
  failures: {onSuccess: false, onWarning: false, onFailure: true},
};

/** Adds a webhook: the URL from the chat's app settings (it is kept secret), its format, for which jobs and results. */
export function WebhookAdd() {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const save = async (v: Record<string, string>) => {
    const taken = (await api.list('webhooks').catch(() => [])).map((x) => String(x.id));
    const body = {
      id: idFromName(v.name ?? '', taken),
      name: v.name?.trim(),
      url: v.url?.trim(),
      format: v.format,
      allJobs: v.jobs === 'all',
      ...RESULTS[v.results ?? 'all'],
      ...(v.secret?.trim() ? {secret: v.secret.trim()} : {}),
    };
    const r = await action.run('Saving the webhook', () => api.create('webhooks', body), () => `Webhook ${body.name} saved.`);
    if (r.ok) nav({type: 'pop'});
  };
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">Session reports are posted to this URL as well as mailed. The URL is kept secret (for Slack, Teams and Mattermost it is the credential).</Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. ops channel'},
          {key: 'url', label: 'URL', kind: 'secret', placeholder: 'https://…'},
          {
            key: 'format',
            label: 'Format',
            kind: 'choice',
            choices: [
              {value: 'slack', label: 'Slack'},
              {value: 'teams', label: 'Microsoft Teams (Workflows)'},
              {value: 'mattermost', label: 'Mattermost'},
              {value: 'json', label: 'JSON (own receiver)'},
            ],
          },
          {
            key: 'jobs',
            label: 'For',
            kind: 'choice',
            choices: [
              {value: 'all', label: 'every job'},
              {value: 'picked', label: 'jobs that pick it (job wizard)'},
            ],
          },
          {
            key: 'results',
            label: 'Report',
            kind: 'choice',
            choices: [
              {value: 'all', label: 'every result'},
              {value: 'problems', label: 'warnings and failures'},
              {value: 'failures', label: 'failures only'},
            ],
          },
          {key: 'secret', label: 'Signing secret', kind: 'secret', placeholder: '(optional, JSON receivers; 16+ chars)'},
        ]}
        initial={{format: 'slack', jobs: 'all', results: 'all'}}
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
