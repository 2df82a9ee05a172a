/**
 * The control API as an attacker with access to the socket would use it (docs/security.md):
 * secrets sent back as the placeholder towards another server, a program path for the daemon
 * (root) to run, and hundreds of idle connections. A real daemon on a temp socket.
 */
import {existsSync} from 'node:fs';
import {chmod, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import net from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {UserError} from '../../src/util/errors.js';
import {isolate, sleep, startDaemon, type RunningDaemon} from '../daemon/helpers.js';

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
const IDLE_MS = 1500;
let dir: string;
let socket: string;
let d: RunningDaemon;

/** A listener that only counts who connects to it: the "attacker's server". */
async function listener(): Promise<{port: number; connections: () => number; close: () => Promise<void>}> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => n,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function refused(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-api-attack-'));
  socket = join(dir, 'run', 'api.sock');
  d = await startDaemon(join(dir, 'state'), socket, {VMBACKUP_API_IDLE_MS: String(IDLE_MS)});
  await isolate(d.client);
});
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('secrets stay with the endpoint they were stored for', () => {
  it('a stored engine password is not sent to another URL, by a test or an update', async () => {
    const evil = await listener();
    try {
      const c = await d.client.create<Record<string, unknown>>('connections', {
        kind: 'ovirt',
        name: 'Engine',
        url: 'https://engine.invalid/ovirt-engine',
        user: 'admin@internal',
        password: 'TopSecret!',
        caPem: pem,
      });
      const url = `https://127.0.0.1:${evil.port}/ovirt-engine`;
      const test = await refused(d.client.testConnection({...c, url}));
      expect(test.message).toContain('stored password belongs to another engine URL');
      const update = await refused(d.client.update('connections', String(c.id), {...c, url}));
      expect(update.message).toContain('stored password belongs to another engine URL');
      // Another user, or another CA (which would let another server pass as the engine), too.
      await refused(d.client.testConnection({...c, user: 'evil@internal'}));
      await refused(d.client.testConnection({...c, caPem: pem.replace('MIIB', 'MIIC')}));
      await sleep(200);
      expect(evil.connections()).toBe(0);
      // The same URL keeps the password (the placeholder round trip the console relies on).
      const renamed = await d.client.update<Record<string, unknown>>('connections', String(c.id), {...c, name: 'Engine 2'});
      expect(renamed.name).toBe('Engine 2');
    } finally {
      await evil.close();
    }
  });

  it('a stored SMTP password is not sent to another mail server or port', async () => {
    const evil = await listener();
    try {
      await d.client.setEmail({
        transport: 'smtp',
        host: 'mail.invalid',
        port: 587,
        security: 'starttls',
        auth: {user: 'backup', password: 'MailSecret!'},
        from: 'vmbackup@example.test',
        recipients: ['ops@example.test'],
        timeoutSeconds: 3,
      });
      const shown = (await d.client.email()) as Record<string, unknown>;
      expect(JSON.stringify(shown)).not.toContain('MailSecret');
      const err = await refused(d.client.testEmail({...shown, host: '127.0.0.1', port: evil.port}));
      expect(err.message).toContain('stored password belongs to another mail server');
      await refused(d.client.setEmail({...shown, host: '127.0.0.1', port: evil.port}));
      await sleep(200);
      expect(evil.connections()).toBe(0);
    } finally {
      await evil.close();
    }
  });
});

describe('no request makes the daemon run a program of the caller\'s choosing', () => {
  it('refuses a sendmail path in the email settings and in a test message', async () => {
    const marker = join(dir, 'ran-as-root');
    const evil = join(dir, 'evil-sendmail');
    await writeFile(evil, `#!/bin/sh\ntouch '${marker}'\ncat >/dev/null\n`);
    await chmod(evil, 0o755);
    const settings = {transport: 'sendmail', path: evil, from: 'vmbackup@example.test', recipients: ['ops@example.test']};
    expect((await refused(d.client.setEmail(settings))).message).toContain('path: cannot be set through the settings');
    expect((await refused(d.client.testEmail(settings))).message).toContain('path: cannot be set through the settings');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('the control socket under a flood of idle connections', () => {
  it('holds a bounded number of connections, closes idle ones, and serves again afterwards; a slow request is not cut', async () => {
    const fds = async () => (await readdir(`/proc/${d.proc.pid}/fd`)).length;
    const baseline = await fds();
    const clients: net.Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 300; i++) {
      const s = net.connect(socket);
      s.on('error', () => undefined);
      s.on('close', () => closed++);
      clients.push(s);
    }
    await sleep(500);
    // At most MAX_CONNECTIONS (64) are held; the rest were closed as they arrived.
    expect(await fds()).toBeLessThan(baseline + 64 + 8);
    // Idle ones are closed after the idle timeout; wait for all (bounded by the test timeout).
    while (closed < clients.length) await sleep(100);
    expect((await d.client.status()) as object).toHaveProperty('daemon');
    expect(await fds()).toBeLessThan(baseline + 8);

    // A request that takes longer than the idle timeout (a mail server that never answers).
    const silent = await listener();
    try {
      const r = (await d.client.testEmail({transport: 'smtp', host: '127.0.0.1', port: silent.port, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 3})) as {ok: boolean; message?: string};
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/did not answer|timed out|timeout/i);
    } finally {
      await silent.close();
    }
  });
});

describe('the demo lab on an appliance with real connections', () => {
  it('is refused without an explicit confirmation, before anything is installed or started', async () => {
    await d.client.create('connections', {kind: 'morpheus', name: 'Production KVM', clusters: [{name: 'c1', hosts: [{name: 'h1', connection: {kind: 'local'}}]}]});
    const vmDir = join(dir, 'demo-vms');
    const err = await refused(d.client.request('POST', '/demo-lab', {vmDir, repositoryPath: join(dir, 'demo-repo'), packages: false}));
    expect(err.message).toContain('real connections (');
    expect(err.message).toContain('Production KVM');
    expect(err.hint).toContain('--yes');
    expect(existsSync(vmDir)).toBe(false);
    expect(existsSync(join(dir, 'state', 'demo'))).toBe(false);
    expect(existsSync(join(dir, 'demo-repo'))).toBe(false);
  });
});
