/**
 * Roles and the audit log against a real daemon, with real Unix accounts connecting to its
 * socket (docs/security.md): the daemon learns who is asking from the kernel (SO_PEERCRED), so a
 * member of the socket's group without a role is refused, an operator runs jobs but cannot change
 * connections or restore over a VM, and every change, refused ones included, is in the audit log
 * with the caller's uid. `vmbackup user add/remove` make and remove a console account.
 */
import {execa} from 'execa';
import {chmod, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ExitCode} from '../../src/util/errors.js';
import {isolate, startDaemon, type RunningDaemon} from '../daemon/helpers.js';
import {vmbackup} from '../lib/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OPERATOR = `vmbop${process.pid % 100000}`;
const STRANGER = `vmbno${process.pid % 100000}`;
const ADDED = `vmbad${process.pid % 100000}`;
let dir: string;
let socket: string;
let d: RunningDaemon;

/** One API request made by `user` through the real client, as that user's process. */
async function as(user: string, method: string, path: string, body?: unknown): Promise<{status: 'ok' | 'error'; exitCode?: number; message?: string; value?: unknown}> {
  const script = join(dir, 'request.mts');
  const r = await execa('setpriv', ['--reuid', user, '--regid', user, '--init-groups', '--', process.execPath, '--import', 'tsx', script, socket, method, path, JSON.stringify(body ?? null)], {
    cwd: ROOT,
    reject: false,
    env: {HOME: '/tmp', TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json')},
  });
  if (r.exitCode !== 0) throw new Error(`the client as ${user} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as {status: 'ok' | 'error'; exitCode?: number; message?: string; value?: unknown};
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-roles-'));
  await chmod(dir, 0o755);
  for (const g of ['vmbackup', 'vmbackup-console']) if ((await execa('getent', ['group', g], {reject: false})).exitCode !== 0) await execa('groupadd', ['--system', g]);
  for (const u of [OPERATOR, STRANGER]) {
    await execa('userdel', [u], {reject: false});
    await execa('useradd', ['--no-create-home', '--groups', 'vmbackup', '--shell', '/usr/sbin/nologin', u]);
  }
  await writeFile(
    join(dir, 'request.mts'),
    [
      `import {DaemonClient} from ${JSON.stringify(join(ROOT, 'src/api/client.ts'))};`,
      `const [socketPath, method, path, body] = process.argv.slice(2);`,
      `const c = new DaemonClient({socketPath});`,
      `try { const value = await c.request(method!, path!, JSON.parse(body!) ?? undefined); console.log(JSON.stringify({status: 'ok', value})); }`,
      `catch (e) { console.log(JSON.stringify({status: 'error', exitCode: (e as {exitCode?: number}).exitCode, message: (e as Error).message})); }`,
      `finally { await c.close(); }`,
    ].join('\n'),
  );
  await chmod(join(dir, 'request.mts'), 0o644);
  socket = join(dir, 'run', 'api.sock');
  d = await startDaemon(join(dir, 'state'), socket);
  await isolate(d.client);
  await d.client.request('PUT', `/users/${OPERATOR}`, {role: 'operator'});
  await d.client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
});

afterAll(async () => {
  await d?.stop();
  for (const u of [OPERATOR, STRANGER, ADDED]) await execa('userdel', ['--remove', u], {reject: false});
  await rm(dir, {recursive: true, force: true});
});

describe('roles', () => {
  it('tells who is asking from the kernel: root is an admin, the operator is an operator', async () => {
    expect(await d.client.request('GET', '/whoami')).toMatchObject({uid: 0, role: 'admin'});
    const uid = Number((await execa('id', ['-u', OPERATOR])).stdout);
    expect((await as(OPERATOR, 'GET', '/whoami')).value).toEqual({uid, user: OPERATOR, role: 'operator'});
  });

  it('refuses a member of the socket group who has no role, for reading too', async () => {
    const r = await as(STRANGER, 'GET', '/status');
    expect(r).toMatchObject({status: 'error', exitCode: ExitCode.forbidden});
    expect(r.message).toContain(`The user ${STRANGER}`);
    expect(r.message).toContain('is not a vmbackup console user');
  });

  it('an operator reads and runs, but changes nothing an admin owns', async () => {
    expect((await as(OPERATOR, 'GET', '/repositories')).status).toBe('ok');
    expect((await as(OPERATOR, 'POST', '/repositories/r/verify')).status).toBe('ok');
    for (const [method, path, body] of [
      ['POST', '/connections', {kind: 'morpheus', name: 'Mine', clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'local'}}]}]}],
      ['DELETE', '/repositories/r', undefined],
      ['PUT', '/email', {transport: 'sendmail', from: 'a@b.example'}],
      ['PUT', `/users/${OPERATOR}`, {role: 'admin'}],
      ['POST', '/repositories/r/prune', undefined],
      ['DELETE', '/repositories/r/restore-points/web-20261206t000000z-abcdef', undefined],
      ['POST', '/restores', {restorePointId: 'x', repository: 'r', target: {kind: 'original'}}],
      ['POST', '/email/test', {transport: 'smtp', host: '127.0.0.1', from: 'a@b.example'}],
      ['PUT', '/settings', {lowSpacePercent: 1}],
      // File-level restore writes what a guest chose, as root: an administrator's.
      ['POST', '/files/files-x/get', {paths: ['/etc/passwd'], to: '/etc/cron.d'}],
    ] as const) {
      const r = await as(OPERATOR, method, path, body);
      expect(r, `${method} ${path}`).toMatchObject({status: 'error', exitCode: ExitCode.forbidden});
      expect(r.message).toContain('needs an administrator');
    }
    // A restore to a new place is an operator's (it fails here only because the point does not exist).
    const restore = await as(OPERATOR, 'POST', '/restores', {restorePointId: 'nope', repository: 'r', target: {kind: 'files', directory: join(dir, 'out')}});
    expect(restore.exitCode).not.toBe(ExitCode.forbidden);
    expect((await d.client.get('repositories', 'r')) as object).toBeDefined();
  });

  it('writes every change to the audit log with the caller\'s uid, refused ones included; never a body', async () => {
    await d.client.setEmail({transport: 'smtp', host: 'mail.invalid', from: 'a@b.example', auth: {user: 'u', password: 'AuditSecret1'}});
    const {entries} = await d.client.request<{entries: {uid: number; user: string; role: string; method: string; path: string; outcome: string}[]}>('GET', '/audit?limit=100');
    const uid = Number((await execa('id', ['-u', OPERATOR])).stdout);
    expect(entries).toContainEqual(expect.objectContaining({uid, user: OPERATOR, role: 'operator', method: 'DELETE', path: '/repositories/r', outcome: 'refused'}));
    expect(entries).toContainEqual(expect.objectContaining({uid, user: OPERATOR, method: 'POST', path: '/repositories/r/verify', outcome: 'ok'}));
    expect(entries).toContainEqual(expect.objectContaining({uid: 0, role: 'admin', method: 'PUT', path: '/email', outcome: 'ok'}));
    const strangerUid = Number((await execa('id', ['-u', STRANGER])).stdout);
    expect(entries.some((e) => e.uid === strangerUid)).toBe(false); // it only read (GET), and was refused
    const file = join(dir, 'state', 'audit.log');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).not.toContain('AuditSecret1');
    // The operator reads it too (read everything), and the CLI shows it.
    expect((await as(OPERATOR, 'GET', '/audit')).status).toBe('ok');
    const cli = await vmbackup(['audit', '--socket', socket]);
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout).toContain(`${OPERATOR} (${uid})`);
    expect(cli.stdout).toContain('DELETE /repositories/r');
  });

  it('vmbackup user add makes a console account with its key and role; remove takes both away', async () => {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
    const add = await vmbackup(['user', 'add', ADDED, '--ssh-key', join(dir, 'key.pub'), '--role', 'operator', '--socket', socket]);
    expect(add.exitCode, add.stderr).toBe(0);
    const pw = (await execa('getent', ['passwd', ADDED])).stdout.split(':');
    expect(pw[6]).toBe('/usr/local/bin/vmbackup-console');
    expect((await execa('id', ['-nG', ADDED])).stdout.split(' ')).toEqual(expect.arrayContaining(['vmbackup', 'vmbackup-console']));
    const keys = join(pw[5]!, '.ssh', 'authorized_keys');
    expect((await readFile(keys, 'utf8')).trim()).toBe((await readFile(join(dir, 'key.pub'), 'utf8')).trim());
    expect([(await stat(keys)).mode & 0o777, (await stat(keys)).uid]).toEqual([0o600, Number(pw[2])]);
    expect((await as(ADDED, 'GET', '/whoami')).value).toMatchObject({user: ADDED, role: 'operator'});
    // An account vmbackup did not make is never taken over.
    const taken = await vmbackup(['user', 'add', OPERATOR, '--ssh-key', join(dir, 'key.pub'), '--socket', socket]);
    expect(taken.exitCode).toBe(ExitCode.invalidInput);
    expect(taken.stderr).toContain('was not made by vmbackup');

    const remove = await vmbackup(['user', 'remove', ADDED, '--socket', socket]);
    expect(remove.exitCode, remove.stderr).toBe(0);
    expect((await execa('getent', ['passwd', ADDED], {reject: false})).exitCode).not.toBe(0);
    expect(((await d.client.request('GET', '/users')) as {name: string}[]).map((u) => u.name)).not.toContain(ADDED);
  });
});
