/**
 * Console users (docs/security.md): `vmbackup user add|remove|list` and `vmbackup audit`.
 *
 * Adding a user makes a Unix account (as root: the daemon's sandbox cannot write /etc or
 * /home) whose login opens the console and nothing else (sshd's Match Group vmbackup-console,
 * appliance/install-daemon.sh), installs its SSH key, and records its role with the daemon.
 */
import {execa} from 'execa';
import {chown, mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {parseConfig} from '../config/parse.js';
import {consoleUserSchema, ROLES} from '../config/schema.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatTable, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const CONSOLE_SHELL = '/usr/local/bin/vmbackup-console';
/** Members get the console as their only SSH login (sshd Match Group). */
export const CONSOLE_GROUP = 'vmbackup-console';
/** Members may reach the control socket. */
export const SOCKET_GROUP = 'vmbackup';
/** The comment of the accounts this command makes; remove touches no other account. */
const GECOS = 'vmbackup console user';

function needRoot(what: string): void {
  if ((process.getuid?.() ?? 0) !== 0) {
    throw new UserError(`${what} makes or removes a Unix account, which needs root.`, {hint: 'Run it as root (sudo vmbackup …) on the appliance.', exitCode: ExitCode.forbidden});
  }
}

async function passwd(name: string): Promise<string[] | undefined> {
  const r = await execa('getent', ['passwd', name], {reject: false});
  return r.exitCode === 0 ? r.stdout.split(':') : undefined;
}

async function ensureGroup(name: string): Promise<void> {
  if ((await execa('getent', ['group', name], {reject: false})).exitCode !== 0) await execa('groupadd', ['--system', name]);
}

export const userAdd: Command = {
  words: ['user', 'add'],
  summary: 'Add a console user (a Unix account whose SSH login opens the console) with a role',
  usage: '<name> --ssh-key <public key file> [--role operator|admin] [--socket <path>]',
  help:
    'Run as root. Operators read everything, run and stop jobs, verify, and restore to new places;\n' +
    'admins also change connections, credentials, email, users, retention, and restore over VMs.',
  options: {...socketOption, 'ssh-key': {type: 'string'}, role: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [name]) {
    needRoot('vmbackup user add');
    const role = typeof values.role === 'string' ? values.role : 'operator';
    if (!(ROLES as readonly string[]).includes(role)) throw new UserError(`--role: must be ${ROLES.join(' or ')}, not '${role}'.`, {exitCode: ExitCode.usage});
    if (typeof values['ssh-key'] !== 'string') throw new UserError('Give the user\'s SSH public key: --ssh-key <file> (e.g. id_ed25519.pub).', {exitCode: ExitCode.usage});
    const sshKey = (await readFile(values['ssh-key'], 'utf8').catch(() => {
      throw new UserError(`Cannot read the SSH public key file ${values['ssh-key']}.`, {hint: 'Give the path of the user\'s .pub file.', exitCode: ExitCode.notFound});
    })).trim();
    // The same checks the daemon makes, before any account exists.
    parseConfig(consoleUserSchema, {name, role, sshKey}, 'user');
    const existing = await passwd(name!);
    if (existing && existing[4] !== GECOS) {
      throw new UserError(`An account named ${name} exists and was not made by vmbackup.`, {hint: 'Choose another name; vmbackup never takes over an existing account.', exitCode: ExitCode.invalidInput});
    }
    await ensureGroup(SOCKET_GROUP);
    await ensureGroup(CONSOLE_GROUP);
    if (!existing) {
      await execa('useradd', ['--create-home', '--shell', CONSOLE_SHELL, '--groups', `${SOCKET_GROUP},${CONSOLE_GROUP}`, '--comment', GECOS, '--', name!]);
      // Keys only: "*" (not "!", which sshd without PAM treats as locked for keys too).
      await execa('usermod', ['-p', '*', '--', name!]);
    }
    const [, , uid, gid, , home] = (await passwd(name!))!;
    const dir = join(home!, '.ssh');
    await mkdir(dir, {recursive: true, mode: 0o700});
    await writeFile(join(dir, 'authorized_keys'), `${sshKey}\n`, {mode: 0o600});
    await chown(dir, Number(uid), Number(gid));
    await chown(join(dir, 'authorized_keys'), Number(uid), Number(gid));
    const saved = await withDaemon(ctx, values, (c) => c.putUser(name!, {role, sshKey}));
    ctx.out.result(saved, () => `Added console user ${name} (${role}): "ssh ${name}@<this appliance>" opens the console.`);
  },
};

export const userRemove: Command = {
  words: ['user', 'remove'],
  summary: 'Remove a console user: its role, and the Unix account vmbackup made for it',
  usage: '<name> [--socket <path>]',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [name]) {
    needRoot('vmbackup user remove');
    await withDaemon(ctx, values, (c) => c.removeUser(name!));
    const existing = await passwd(name!);
    if (existing && existing[4] === GECOS) await execa('userdel', ['--remove', '--', name!], {reject: false});
    ctx.out.result({removed: name}, () => `Removed console user ${name}.`);
  },
};

export const userList: Command = {
  words: ['user', 'list'],
  summary: 'List the console users and their roles',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const users = await withDaemon(ctx, values, (c) => c.users<{name: string; role: string; builtin?: boolean}>());
    ctx.out.result(users, () => formatTable(['USER', 'ROLE', ''], users.map((u) => [u.name, u.role, u.builtin ? 'built in' : ''])));
  },
};

export const audit: Command = {
  words: ['audit'],
  summary: 'Show the audit log: every change asked of the daemon, who asked, and what came of it',
  usage: '[--lines <n>] [--socket <path>]',
  options: {...socketOption, lines: {type: 'string'}},
  positionals: [0, 0],
  async run(ctx, values) {
    const n = typeof values.lines === 'string' ? Number(values.lines) : 50;
    if (!Number.isInteger(n) || n < 1) throw new UserError(`--lines: must be a whole number of 1 or more, not '${String(values.lines)}'.`, {exitCode: ExitCode.usage});
    const {entries} = await withDaemon(ctx, values, (c) => c.audit(n));
    ctx.out.result(entries, () =>
      entries.length === 0
        ? 'No changes recorded yet.'
        : formatTable(
            ['TIME', 'USER', 'ROLE', 'REQUEST', 'OUTCOME'],
            entries.map((e) => [formatTime(e.time), `${e.user} (${e.uid})`, e.role, `${e.method} ${e.path}`, e.outcome === 'ok' ? '✔ ok' : `✖ ${e.outcome}${e.error ? `: ${e.error}` : ''}`]),
          ),
    );
  },
};
