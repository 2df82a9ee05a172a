/**
 * Email settings for the reports: SMTP (host, port, security, login) or the local sendmail,
 * sender and recipients. After saving, a test message shows whether mail really leaves.
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import {Form} from '../../components/form/view.js';
import {ActionMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';

/** The settings object the daemon validates (notify/settings.ts), from the form's text values. */
export function emailBody(v: Record<string, string>): Record<string, unknown> {
  const recipients = (v.recipients ?? '')
    .split(/[\s,;]+/)
    .map((r) => r.trim())
    .filter(Boolean);
  const common = {from: v.from?.trim(), recipients};
  if (v.transport === 'sendmail') return {transport: 'sendmail', ...common};
  return {
    transport: 'smtp',
    host: v.host?.trim(),
    ...(v.port?.trim() ? {port: Number(v.port)} : {}),
    security: v.security || 'starttls',
    ...(v.user?.trim() ? {auth: {user: v.user.trim(), password: v.password ?? ''}} : {}),
    ...common,
  };
}

function initial(e: Record<string, unknown> | null | undefined): Record<string, string> {
  if (!e) return {transport: 'smtp', security: 'starttls'};
  const auth = e.auth as {user?: string} | undefined;
  return {
    transport: String(e.transport ?? 'smtp'),
    host: String(e.host ?? ''),
    port: e.port === undefined ? '' : String(e.port),
    security: String(e.security ?? 'starttls'),
    user: auth?.user ?? '',
    // The daemon never sends a stored password back; an empty field keeps nothing.
    password: '',
    from: String(e.from ?? ''),
    recipients: ((e.recipients as string[] | undefined) ?? []).join(', '),
  };
}

export function EmailForm(props: {onDone: () => void}) {
  const api = useApi();
  const current = useLoad(() => api.email());
  const action = useAction();
  const [saved, setSaved] = useState(false);
  if (current.loading && !current.data && !current.error) return <Text color="cyan">… loading</Text>;
  if (saved)
    return (
      <Box flexDirection="column">
        <Select
          items={[
            {value: 'test', label: 'Send a test message'},
            {value: 'done', label: 'Done'},
          ]}
          onChoose={(item) => (item.value === 'test' ? void action.run('Sending a test message', () => api.testEmail(), (r) => r.message ?? 'Test message sent.') : props.onDone())}
        />
        <ActionMessage state={action.state} />
      </Box>
    );
  return (
    <Box flexDirection="column">
      <Form
        fields={[
          {key: 'transport', label: 'Send through', kind: 'choice', choices: [{value: 'smtp', label: 'SMTP server'}, {value: 'sendmail', label: 'local sendmail'}]},
          {key: 'host', label: 'SMTP host', kind: 'text', placeholder: 'e.g. smtp.example.com'},
          {key: 'port', label: 'Port', kind: 'text', placeholder: '587 / 465 / 25'},
          {key: 'security', label: 'Security', kind: 'choice', choices: [{value: 'starttls', label: 'STARTTLS'}, {value: 'tls', label: 'TLS'}, {value: 'none', label: 'none'}]},
          {key: 'user', label: 'User', kind: 'text', placeholder: '(no login)'},
          {key: 'password', label: 'Password', kind: 'secret'},
          {key: 'from', label: 'From', kind: 'text', placeholder: 'e.g. backup@example.com'},
          {key: 'recipients', label: 'Recipients', kind: 'text', placeholder: 'e.g. ops@example.com, …'},
        ]}
        initial={initial(current.data)}
        onSubmit={(v) =>
          void action.run('Saving', () => api.setEmail(emailBody(v)), () => 'Email settings saved.').then((r) => {
            if (r.ok) setSaved(true);
          })
        }
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
