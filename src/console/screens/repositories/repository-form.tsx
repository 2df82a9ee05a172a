/**
 * Adds a repository: a name and a directory on a local disk (or an S3 bucket: S3RepositoryForm;
 * another appliance over SSH: SshRepositoryForm),
 * and whether to encrypt it (with a passphrase typed twice). A directory that already holds a
 * repository is imported as it is (the daemon opens it instead of creating one), so the same form
 * serves "import an existing repository" — with the passphrase of an encrypted one.
 */
import {Box, Text} from 'ink';
import {useReducer} from 'react';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {keyToConfirm} from '../connections/morpheus-form.js';
import {ApplianceKeyLine} from '../../components/appliance-key/view.js';
import {Form} from '../../components/form/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import {ExitCode, UserError} from '../../../util/errors.js';
import {isS3Url} from '../../../util/s3-url.js';

/** The passphrase the form sends, or undefined; a UserError when the fields do not agree. */
function passphraseOf(v: Record<string, string>, importing: boolean): string | undefined {
  const p = v.passphrase ?? '';
  if (importing) return p.length > 0 ? p : undefined;
  if (v.encrypt !== 'yes') {
    if (p.length > 0) throw new UserError('A passphrase was typed, but "Encrypt" is no.', {hint: 'Set Encrypt to yes (←/→), or clear the passphrase.', exitCode: ExitCode.invalidInput});
    return undefined;
  }
  if (p.length < 8) throw new UserError('The passphrase must be at least 8 characters.', {hint: 'Choose a long one (several words) and keep it safe: without it nobody can restore from this repository.', exitCode: ExitCode.invalidInput});
  if (p !== (v.repeat ?? '')) throw new UserError('The two passphrases differ.', {hint: 'Type the same passphrase in both fields.', exitCode: ExitCode.invalidInput});
  return p;
}

/**
 * A repository in an S3 bucket: a name, the address (s3://HOST[:PORT]/BUCKET[/PREFIX], or
 * s3+http:// on a trusted network), the access key and secret key, and whether to encrypt it. An
 * existing repository at that address is imported (with its passphrase when encrypted).
 */
export function S3RepositoryForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const save = async (v: Record<string, string>) => {
    const r = await action.run(
      'Connecting to the bucket',
      async () => {
        const address = (v.path ?? '').trim();
        if (!isS3Url(address)) {
          throw new UserError(`"${address}" is not an S3 address.`, {hint: 'Write it as s3://HOST[:PORT]/BUCKET[/PREFIX] (HTTPS), or s3+http://HOST:PORT/BUCKET[/PREFIX].', exitCode: ExitCode.invalidInput});
        }
        const passphrase = passphraseOf(v, false);
        const taken = (await api.list('repositories').catch(() => [])).map((x) => String(x.id));
        const s3 = {accessKeyId: (v.accessKey ?? '').trim(), secretAccessKey: v.secretKey ?? '', region: (v.region ?? '').trim() || 'us-east-1'};
        const body = {id: idFromName(v.name ?? '', taken), name: v.name?.trim(), path: address, s3, ...(passphrase !== undefined ? {passphrase} : {})};
        await api.create('repositories', body);
        return body;
      },
      (body) => `Repository ${body.name} saved in the bucket${body.passphrase !== undefined ? ' (encrypted: keep the passphrase safe)' : ''}.`,
    );
    if (r.ok) props.onDone(r.value.id);
  };
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        A repository in an S3 bucket (AWS, MinIO, Ceph, Swift…): objects of 4 MiB chunks, only what is new is sent. The keys are kept
        on the appliance (0600) and used for this address only. Encrypt it when the bucket is not yours alone.
      </Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. offsite'},
          {key: 'path', label: 'Address', kind: 'text', placeholder: 's3://s3.example.com/bucket/prefix'},
          {key: 'accessKey', label: 'Access key', kind: 'text'},
          {key: 'secretKey', label: 'Secret key', kind: 'secret'},
          {key: 'region', label: 'Region', kind: 'text', placeholder: 'us-east-1'},
          {key: 'encrypt', label: 'Encrypt', kind: 'toggle'},
          {key: 'passphrase', label: 'Passphrase', kind: 'secret', placeholder: '(when encrypted: 8+ characters)'},
          {key: 'repeat', label: 'Repeat passphrase', kind: 'secret'},
        ]}
        submitLabel="save"
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

export function RepositoryForm(props: {importing?: boolean; onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const importing = props.importing === true;
  const save = async (v: Record<string, string>) => {
    const r = await action.run(
      importing ? 'Importing the repository' : v.encrypt === 'yes' ? 'Creating the encrypted repository' : 'Creating the repository',
      async () => {
        const passphrase = passphraseOf(v, importing);
        const taken = (await api.list('repositories').catch(() => [])).map((x) => String(x.id));
        const body = {id: idFromName(v.name ?? '', taken), name: v.name?.trim(), path: v.path?.trim(), ...(passphrase !== undefined ? {passphrase} : {})};
        await api.create('repositories', body);
        return body;
      },
      (body) => `Repository ${body.name} saved${body.passphrase !== undefined ? ' (encrypted: keep the passphrase safe)' : ''}.`,
    );
    if (r.ok) props.onDone(r.value.id);
  };
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        {importing
          ? 'Give the directory of an existing repository (for example a disk moved from another appliance); its restore points become available. An encrypted one needs its passphrase.'
          : 'A repository is a directory on a local disk of the appliance. It is created if empty; an existing repository there is imported. Encrypted: nothing in it can be read without the passphrase — keep it safe.'}
      </Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. main'},
          {key: 'path', label: 'Directory', kind: 'text', placeholder: 'e.g. /srv/backup/main'},
          ...(importing
            ? [{key: 'passphrase', label: 'Passphrase', kind: 'secret' as const, placeholder: '(only for an encrypted repository)'}]
            : [
                {key: 'encrypt', label: 'Encrypt', kind: 'toggle' as const},
                {key: 'passphrase', label: 'Passphrase', kind: 'secret' as const, placeholder: '(when encrypted: 8+ characters)'},
                {key: 'repeat', label: 'Repeat passphrase', kind: 'secret' as const},
              ]),
        ]}
        submitLabel={importing ? 'import' : 'create'}
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}

type SshStep =
  | {at: 'form'; values?: Record<string, string>; error?: {message: string; hint?: string}}
  | {at: 'confirm'; values: Record<string, string>; key: {key: string; fingerprint: string; type: string}};

/** The ssh:// address the form's fields name (a UserError when the directory is not absolute). */
export function sshAddressOf(v: Record<string, string>): string {
  const host = (v.host ?? '').trim();
  const dir = (v.dir ?? '').trim().replace(/\/+$/, '');
  if (!host) throw new UserError('Appliance: give the host name or address of the other appliance.', {exitCode: ExitCode.invalidInput});
  if (!dir.startsWith('/')) throw new UserError(`Directory there: "${dir}" is not an absolute path.`, {hint: 'Give the directory on the other appliance, e.g. /srv/vmbackup/copy.', exitCode: ExitCode.invalidInput});
  const port = Number(v.port) || 22;
  const h = host.includes(':') ? `[${host}]` : host;
  return `ssh://${(v.user ?? '').trim() || 'vmbackup-copy'}@${h}${port === 22 ? '' : `:${port}`}${dir}`;
}

/**
 * A repository on another vmbackup appliance over SSH: where (host, port, user, directory), the
 * line that authorizes this appliance's key there (pinned to `vmbackup repo serve DIR`), then the
 * far host key to compare with the other appliance before anything is trusted; the daemon then
 * creates (or opens) the repository there, encrypted when asked.
 */
export function SshRepositoryForm(props: {onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const applianceKey = useLoad(() => api.applianceSshKey());
  const [step, go] = useReducer((_: SshStep, s: SshStep) => s, {at: 'form'});

  const scan = async (values: Record<string, string>) => {
    try {
      sshAddressOf(values);
      passphraseOf(values, false);
    } catch (err) {
      return go({at: 'form', values, error: {message: (err as Error).message, ...((err as UserError).hint ? {hint: (err as UserError).hint} : {})}});
    }
    const host = (values.host ?? '').trim();
    const r = await action.run(`Reading the host key of ${host}`, () => api.scanHostKey(host, Number(values.port) || 22));
    if (!r.ok) return;
    const key = keyToConfirm(r.value.keys);
    if (!key) return go({at: 'form', values, error: {message: `${host} presented no SSH host key.`, hint: 'Check that sshd runs there and the port is right.'}});
    action.dispatch({type: 'clear'});
    go({at: 'confirm', values, key});
  };

  const save = async (v: Record<string, string>, hostKey: string) => {
    const r = await action.run(
      v.encrypt === 'yes' ? 'Creating the encrypted repository there' : 'Connecting to the other appliance',
      async () => {
        const passphrase = passphraseOf(v, false);
        const taken = (await api.list('repositories').catch(() => [])).map((x) => String(x.id));
        const remote = (v.command ?? '').trim();
        const body = {
          id: idFromName(v.name ?? '', taken),
          name: v.name?.trim(),
          path: sshAddressOf(v),
          ssh: {hostKey, ...(remote ? {remoteVmbackup: remote} : {})},
          ...(passphrase !== undefined ? {passphrase} : {}),
        };
        await api.create('repositories', body);
        return body;
      },
      (body) => `Repository ${body.name} saved on the other appliance${body.passphrase !== undefined ? ' (encrypted: keep the passphrase safe)' : ''}.`,
    );
    if (r.ok) props.onDone(r.value.id);
    else go({at: 'form', values: v});
  };

  if (step.at === 'confirm')
    return (
      <Box flexDirection="column">
        <Text wrap="wrap">Compare the host key with the other appliance (there: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub):</Text>
        <Text color="yellow" wrap="wrap">
          {'  '}
          {(step.values.host ?? '').trim()}: {step.key.fingerprint} ({step.key.type})
        </Text>
        <Select
          items={[
            {value: 'trust', label: 'The key matches: trust it and save'},
            {value: 'no', label: 'It does not match: go back'},
          ]}
          onChoose={(item) => (item.value === 'trust' ? void save(step.values, step.key.key) : go({at: 'form', values: step.values}))}
        />
        <ActionMessage state={action.state} />
      </Box>
    );

  const dir = (step.values?.dir ?? '').trim() || '/srv/vmbackup/copy';
  return (
    <Box flexDirection="column">
      {step.error ? <ErrorMessage error={step.error} /> : null}
      <ApplianceKeyLine
        state={applianceKey}
        intro={() => 'On the other appliance, add this line to ~USER/.ssh/authorized_keys (it lets this appliance run only the repository server, for that directory):'}
        line={(k) => `command="vmbackup repo serve ${dir}",restrict ${k.publicKey}`}
      />
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. offsite'},
          {key: 'host', label: 'Appliance', kind: 'text', placeholder: 'host name or address of the other appliance'},
          {key: 'dir', label: 'Directory there', kind: 'text', placeholder: '/srv/vmbackup/copy'},
          {key: 'user', label: 'SSH user', kind: 'text', placeholder: '(empty: vmbackup-copy)'},
          {key: 'port', label: 'SSH port', kind: 'text', placeholder: '(empty: 22)'},
          {key: 'command', label: 'vmbackup there', kind: 'text', placeholder: '(empty: vmbackup on its PATH)'},
          {key: 'encrypt', label: 'Encrypt', kind: 'toggle'},
          {key: 'passphrase', label: 'Passphrase', kind: 'secret', placeholder: '(when encrypted: 8+ characters)'},
          {key: 'repeat', label: 'Repeat passphrase', kind: 'secret'},
        ]}
        initial={step.values}
        submitLabel="read the host key"
        onSubmit={(v) => void scan(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
