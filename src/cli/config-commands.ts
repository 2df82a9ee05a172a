/**
 * The appliance's configuration from the command line, through the daemon: everything the
 * console does with connections, repositories, workers, jobs, e-mail and restore points is also
 * a `vmbackup` command, with --json for scripts. Objects go in as JSON (--file F, or - for
 * standard input), in the shape the daemon's API takes (src/config/schema.ts), and come back
 * as the daemon stored them (secrets shown as "••••").
 */
import {readFile} from 'node:fs/promises';
import {savedJob} from '../api/jobs.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatTable, formatTime} from '../util/format.js';
import type {Collection} from '../config/store.js';
import type {Command, CommandContext, OptionSpec} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

type Values = Record<string, unknown>;

const fileOption: OptionSpec = {...socketOption, file: {type: 'string'}};

/** The JSON object in --file (a path, or - for standard input). */
async function readObject(values: Values): Promise<Record<string, unknown>> {
  const file = values.file;
  if (typeof file !== 'string') throw new UserError('Give the object as JSON with --file <path> (or --file - to read standard input).', {exitCode: ExitCode.usage});
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read ${file}: ${(err as Error).message}.`, {exitCode: ExitCode.invalidInput});
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file === '-' ? 'Standard input' : file} is not JSON: ${(err as Error).message}.`, {exitCode: ExitCode.invalidInput});
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UserError(`${file} must hold one JSON object.`, {exitCode: ExitCode.invalidInput});
  return parsed as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/**
 * A test the daemon answers as data ({ok, error?}): the outcome in words (the error with its
 * hint), and the exit code — 0, or the error's.
 */
function testOutcome(ctx: CommandContext, r: {ok: boolean; error?: {message: string; hint?: string; exitCode?: number}}, ok: string, fallback: string): number {
  ctx.out.result(r, () => (r.ok ? ok : `✖ ${r.error?.message ?? fallback}${r.error?.hint ? `\n  ${r.error.hint}` : ''}`));
  return r.ok ? 0 : r.error?.exitCode ?? ExitCode.platformFailed;
}

const NOUN: Record<Collection, string> = {connections: 'connection', repositories: 'repository', workers: 'worker', jobs: 'job', webhooks: 'webhook'};

/** list / show / add / edit / remove for one collection. */
function crud(c: Collection, addWord: string, removeWord: string, describe: (x: Record<string, unknown>) => string[]): Command[] {
  const noun = NOUN[c];
  const header = ['ID', 'NAME', 'DETAILS'];
  return [
    {
      words: [noun, 'list'],
      summary: `List the ${c} the daemon has`,
      usage: '[--socket <path>]',
      options: socketOption,
      positionals: [0, 0],
      async run(ctx, values) {
        const items = await withDaemon(ctx, values, (d) => d.list<Record<string, unknown>>(c));
        ctx.out.result(items, () => (items.length ? formatTable(header, items.map((x) => [String(x.id), String(x.name ?? ''), ...describe(x).slice(0, 1)])) : `No ${c} yet.`));
      },
    },
    {
      words: [noun, 'show'],
      summary: `Show one ${noun} as the daemon stored it (JSON)`,
      usage: '<id> [--socket <path>]',
      options: socketOption,
      positionals: [1, 1],
      async run(ctx, values, [id]) {
        const item = await withDaemon(ctx, values, (d) => d.get<Record<string, unknown>>(c, id!));
        ctx.out.result(item, () => JSON.stringify(item, null, 2));
      },
    },
    {
      words: [noun, addWord],
      summary: `Add a ${noun} from JSON (the daemon checks it first)`,
      usage: '--file <path|-> [--socket <path>]',
      options: fileOption,
      positionals: [0, 0],
      async run(ctx, values) {
        const body = await readObject(values);
        const made = await withDaemon(ctx, values, (d) => d.create<Record<string, unknown>>(c, body));
        ctx.out.result(made, () => `Added ${noun} ${String(made.id)}.`);
      },
    },
    {
      words: [noun, 'edit'],
      summary: `Replace a ${noun} with the JSON given (get it with "${noun} show")`,
      usage: '<id> --file <path|-> [--socket <path>]',
      options: fileOption,
      positionals: [1, 1],
      async run(ctx, values, [id]) {
        const body = await readObject(values);
        const saved = await withDaemon(ctx, values, (d) => d.update<Record<string, unknown>>(c, id!, {...body, id}));
        ctx.out.result(saved, () => `Saved ${noun} ${id}.`);
      },
    },
    {
      words: [noun, removeWord],
      summary: `Remove a ${noun} from the appliance${c === 'repositories' ? ' (its files stay on disk)' : ''}`,
      usage: '<id> [--socket <path>]',
      options: socketOption,
      positionals: [1, 1],
      async run(ctx, values, [id]) {
        await withDaemon(ctx, values, (d) => d.remove(c, id!));
        ctx.out.result({id, removed: true}, () => `Removed ${noun} ${id}.`);
      },
    },
  ];
}

const connectionCommands = crud('connections', 'add', 'remove', (x) => [x.kind === 'ovirt' ? `oVirt ${String(x.url)}` : 'VM Essentials']);
const repositoryCommands = crud('repositories', 'add', 'remove', (x) => [String(x.path)]);
const workerCommands = crud('workers', 'add', 'remove', (x) => [`${String(x.slots ?? '')} slots`]);
const webhookCommands = crud('webhooks', 'add', 'remove', (x) => [`${String(x.format ?? 'json')}${x.allJobs ? ', every job' : ''}${x.enabled === false ? ', disabled' : ''}${(x.info as {host?: string} | undefined)?.host ? ` → ${(x.info as {host: string}).host}` : ''}`]);
const jobCommands = crud('jobs', 'create', 'delete', (x) => [x.enabled === false ? 'disabled' : 'enabled']).filter((cmd) => cmd.words[1] !== 'list');

const connectionTest: Command = {
  words: ['connection', 'test'],
  summary: 'Test a saved connection: reachable, logged in, how many VMs',
  usage: '<id> [--socket <path>]',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const t = await withDaemon(ctx, values, (d) => d.testConnection(id!));
    return testOutcome(ctx, t, `Reachable and logged in: ${t.vms ?? 0} VMs.`, t.reachable ? 'The login was refused.' : 'Not reachable.');
  },
};

const connectionHostKey: Command = {
  words: ['connection', 'host-key'],
  summary: "Show a KVM host's SSH host keys to compare before trusting one (its key goes into hostKey)",
  usage: '<host> [--port 22] [--socket <path>]',
  options: {...socketOption, port: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [host]) {
    const port = typeof values.port === 'string' ? Number(values.port) : undefined;
    const r = await withDaemon(ctx, values, (d) => d.scanHostKey(host, port));
    ctx.out.result(r, () => [`Host keys of ${host} (compare on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub):`, ...r.keys.map((k) => `  ${k.type.padEnd(20)} ${k.fingerprint}\n    hostKey: ${k.key}`)].join('\n'));
  },
};

const applianceKey: Command = {
  words: ['appliance', 'ssh-key'],
  summary: "The appliance's own SSH key, and the line that lets it log in to a KVM host",
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const k = await withDaemon(ctx, values, (d) => d.applianceSshKey());
    ctx.out.result(k, () => `${k.publicKey}\n\nKey file: ${k.identityFile} (${k.fingerprint})\nOn each KVM host, as the SSH user:\n  ${k.authorizeCommand}`);
  },
};

function setEnabled(enabled: boolean): Command {
  return {
    words: ['job', enabled ? 'enable' : 'disable'],
    summary: enabled ? 'Let a job run on its schedule again' : 'Stop a job from running on its schedule (it can still be started by hand)',
    usage: '<id> [--socket <path>]',
    options: socketOption,
    positionals: [1, 1],
    async run(ctx, values, [id]) {
      const saved = await withDaemon(ctx, values, async (d) => {
        const job = await d.get<Record<string, unknown>>('jobs', id!);
        return d.update<Record<string, unknown>>('jobs', id!, {...savedJob(job), enabled});
      });
      ctx.out.result(saved, () => `Job ${id} ${enabled ? 'enabled' : 'disabled'}.`);
    },
  };
}


const emailShow: Command = {
  words: ['email', 'show'],
  summary: 'Show the e-mail settings (the password as "••••")',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const e = await withDaemon(ctx, values, (d) => d.email());
    ctx.out.result(e, () => (e ? JSON.stringify(e, null, 2) : 'No e-mail settings yet: reports are not sent.'));
  },
};

const emailSet: Command = {
  words: ['email', 'set'],
  summary: 'Save the e-mail settings from JSON (SMTP server, sender, recipients)',
  usage: '--file <path|-> [--socket <path>]',
  options: fileOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const body = await readObject(values);
    const saved = await withDaemon(ctx, values, async (d) => (await d.setEmail(body)) ?? {});
    ctx.out.result(saved, () => 'E-mail settings saved.');
  },
};

const emailTest: Command = {
  words: ['email', 'test'],
  summary: 'Send a test message with the saved settings',
  usage: '[--to <address>] [--socket <path>]',
  options: {...socketOption, to: {type: 'string'}},
  positionals: [0, 0],
  async run(ctx, values) {
    const r = await withDaemon(ctx, values, (d) => d.testEmail(undefined, typeof values.to === 'string' ? values.to : undefined));
    return testOutcome(ctx, r, `Test message sent to ${(r.accepted ?? []).join(', ')}.`, r.message ?? 'not sent');
  },
};

const webhookTest: Command = {
  words: ['webhook', 'test'],
  summary: 'Post a test report to a saved webhook now and show what the receiver answered',
  usage: '<id> [--socket <path>]',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const r = await withDaemon(ctx, values, (d) => d.testWebhook(id!));
    return testOutcome(ctx, r, `The receiver answered HTTP ${r.status ?? '?'}${r.answer ? `: ${r.answer}` : ''}.`, 'not delivered');
  },
};

interface PointRow {
  id: string;
  vmName: string;
  time: string;
  type: string;
  sizeBytes: number;
  protected?: boolean;
  vmExists?: boolean;
}

const pointList: Command = {
  words: ['point', 'list'],
  summary: 'List the restore points of a repository the daemon has',
  usage: '<repository id> [--vm <name>] [--socket <path>]',
  options: {...socketOption, vm: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [repo]) {
    let points = await withDaemon(ctx, values, (d) => d.restorePoints<PointRow>(repo!));
    if (typeof values.vm === 'string') points = points.filter((p) => p.vmName === values.vm);
    ctx.out.result(points, () =>
      points.length
        ? formatTable(['ID', 'VM', 'TIME', 'TYPE', 'SIZE', ''], points.map((p) => [p.id, p.vmName, formatTime(p.time), p.type, `${(p.sizeBytes / 2 ** 30).toFixed(1)} GiB`, p.protected ? 'protected' : '']))
        : 'No restore points.',
    );
  },
};

const pointForget: Command = {
  words: ['point', 'forget'],
  summary: 'Forget one restore point (garbage collection frees its space later)',
  usage: '<repository id> <restore point id> [--force] [--socket <path>]',
  help: '--force forgets a protected restore point too.',
  options: {...socketOption, force: {type: 'boolean'}},
  positionals: [2, 2],
  async run(ctx, values, [repo, point]) {
    const r = await withDaemon(ctx, values, (d) =>
      d.forgetRestorePoint(repo!, point!, values.force === true),
    );
    ctx.out.result(r, () => `Forgot restore point ${r.id}.`);
  },
};

function pointProtect(value: boolean): Command {
  return {
    words: ['point', value ? 'protect' : 'unprotect'],
    summary: value ? 'Protect a restore point: retention never removes it' : 'Lift the protection of a restore point',
    usage: '<repository id> <restore point id> [--socket <path>]',
    options: socketOption,
    positionals: [2, 2],
    async run(ctx, values, [repo, point]) {
      const r = await withDaemon(ctx, values, (d) =>
        d.protectRestorePoint(repo!, point!, value),
      );
      ctx.out.result(r, () => `Restore point ${r.id} is ${value ? 'now protected' : 'no longer protected'}.`);
    },
  };
}

export const configCommands: Command[] = [
  ...connectionCommands, connectionTest, connectionHostKey, applianceKey,
  ...repositoryCommands,
  ...workerCommands,
  ...jobCommands, setEnabled(true), setEnabled(false),
  emailShow, emailSet, emailTest,
  ...webhookCommands, webhookTest,
  pointList, pointProtect(true), pointProtect(false), pointForget,
];
