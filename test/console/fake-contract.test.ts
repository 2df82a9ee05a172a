/**
 * The console's test fake (fake-api.ts) against the real daemon: every reply the fake gives
 * must have the real reply's shape (each key the fake sends exists in the real reply with the
 * same type), and replies the contract defines (src/api/contract.ts) must pass its schemas from
 * both sides. A fake that answers what the daemon never sends — the host-key reply once did, and
 * adding an SSH host from the console failed — fails here.
 *
 * The real side is a vmbackupd process, the test bed's sshd on 127.0.0.1:2222 as a remote KVM
 * host, the oVirt simulator as an engine, and a real repository; a real backup gives the session,
 * restore point and restore replies. Not compared here: stopJob and retryFailed (they need a
 * session at the right moment), testEmail (a real send), demoLab, and the event stream, whose
 * events the console tests take from the daemon's own types.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {applianceSshKeyReply, hostKeyScanReply} from '../../src/api/contract.js';
import {consoleApi, type ConsoleApi} from '../../src/console/api.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {startDaemon, waitForSession, type RunningDaemon} from '../daemon/helpers.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {seeded, type FakeApi} from './fake-api.js';
import {WebhookReceiver} from '../notify/webhook-receiver.js';
import {outside, shapeOf} from '../lib/shape.js';

let dir: string;
let daemon: RunningDaemon;
let real: ConsoleApi;
let fake: FakeApi;
let sim: Simulator;

beforeAll(async () => {
  await ensureSshd();
  dir = await mkdtemp(join(tmpdir(), 'vmb-contract-'));
  daemon = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  real = consoleApi(daemon.client);
  fake = seeded();
  sim = await startSimulator({delayMs: 5});
}, 60_000);
afterAll(async () => {
  await daemon?.stop();
  await sim?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

async function same(name: string, fakeReply: Promise<unknown>, realReply: Promise<unknown>): Promise<{fake: unknown; real: unknown}> {
  const [f, r] = await Promise.all([fakeReply, realReply]);
  expect(outside(shapeOf(f), shapeOf(r)), name).toEqual([]);
  return {fake: f, real: r};
}

describe('the console fake answers in the real daemon\'s shapes', () => {
  it('host keys and the appliance key: the contract schemas hold on both sides', async () => {
    const {fake: f, real: r} = await same('scanHostKey', fake.scanHostKey('127.0.0.1', SSHD_PORT), real.scanHostKey('127.0.0.1', SSHD_PORT));
    hostKeyScanReply.parse(f);
    hostKeyScanReply.parse(r);
    // The key the console stores is the one the host really has.
    const hostPub = (await readFile(`${SSHD_DIR}/host_ed25519.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    expect(hostKeyScanReply.parse(r).keys.find((k) => k.type === 'ssh-ed25519')?.key).toBe(hostPub);
    const a = await same('applianceSshKey', fake.applianceSshKey(), real.applianceSshKey());
    applianceSshKeyReply.parse(a.fake);
    applianceSshKeyReply.parse(a.real);
  });

  it('collections, status, settings, who am I, audit, e-mail', async () => {
    const repo = {id: 'second', name: 'second', path: join(dir, 'repo')};
    await same('create repositories', fake.create('repositories', repo), real.create('repositories', repo));
    await same('list repositories', fake.list('repositories'), real.list('repositories'));
    await same('get repositories', fake.get('repositories', 'second'), real.get('repositories', 'second'));
    await same('verify', fake.verify('second'), real.verify('second'));
    // Repository figures come from a background count the first status call starts.
    while ((await real.status()).repositories.some((x) => x.usedBytes === undefined)) await new Promise((res) => setTimeout(res, 50));
    await same('status', fake.status(), real.status());
    await same('settings', fake.settings(), real.settings());
    await same('whoami', fake.whoami(), real.whoami());
    await same('audit', fake.audit(), real.audit());
    await same('restorePoints', fake.restorePoints('second'), real.restorePoints('second'));
    await same('sessions', fake.sessions(), real.sessions());
  });

  it('an oVirt engine: its CA, a connection test, the inventory', async () => {
    const {real: ca} = await same('fetchCa', fake.fetchCa(sim.url), real.fetchCa(sim.url));
    const conn = {id: 'engine', kind: 'ovirt', name: 'engine', url: sim.url, user: sim.user, password: sim.password, caPem: (ca as {pem: string}).pem};
    await same('testConnection (ovirt)', fake.testConnection(conn), real.testConnection(conn));
    await real.create('connections', conn);
    await same('inventory', fake.inventory('engine', true), real.inventory('engine', true));
  });

  it('a KVM host over SSH: the key the scan gave is accepted, the connection tested and saved', async () => {
    const scan = hostKeyScanReply.parse(await real.scanHostKey('127.0.0.1', SSHD_PORT));
    const key = scan.keys.find((k) => k.type === 'ssh-ed25519')!;
    const conn = {
      id: 'kvm', kind: 'morpheus', name: 'kvm',
      clusters: [{name: 'c1', hosts: [{name: '127.0.0.1', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
    };
    const {real: t} = await same('testConnection (ssh)', fake.testConnection(conn), real.testConnection(conn));
    expect(t).toMatchObject({ok: true, reachable: true, authenticated: true});
    await same('create connections', fake.create('connections', conn), real.create('connections', conn));
  });

  it('a backup and what follows it: the session, its restore points, a restore, retention, e-mail, the log', async () => {
    // The fake's seeded session and a restore point in its shape.
    fake.points.second = [{
      id: 'web01-20261121t220000z-aaaaaa', vmId: 'vm-1', vmName: 'web01', time: '2026-11-21T22:00:00Z', type: 'full', sizeBytes: 2 ** 30, storedBytes: 2 ** 29,
      protected: false, platform: 'ovirt', disks: [{key: 'd1', name: 'web01_os', size: 2 ** 30}], vmExists: true,
    }];
    const vm = sim.vm('web01');
    const job = {id: 'nightly', name: 'nightly', source: {connection: 'engine', vms: [{id: vm.id, name: vm.name}]}, repository: 'second', schedule: {kind: 'none'}};
    await same('create jobs', fake.create('jobs', {...job, id: 'second-job'}), real.create('jobs', job));
    const {real: started} = await same('startJob', fake.startJob('nightly'), real.startJob('nightly'));
    const done = await waitForSession(daemon.client, (started as {id: string}).id);
    expect(done.state).toMatch(/success|warning/);
    await same('sessions', fake.sessions(), real.sessions());
    await same('session', fake.session('s-1'), real.session(done.id));
    const {real: points} = await same('restorePoints', fake.restorePoints('second'), real.restorePoints('second'));
    const point = (points as {id: string}[])[0]!.id;
    await same('protectRestorePoint', fake.protectRestorePoint('second', 'web01-20261121t220000z-aaaaaa', true), real.protectRestorePoint('second', point, true));
    await same('protectRestorePoint (lift)', fake.protectRestorePoint('second', 'web01-20261121t220000z-aaaaaa', false), real.protectRestorePoint('second', point, false));
    const req = {restorePointId: point, repository: 'second', target: {kind: 'files' as const, directory: join(dir, 'restored'), format: 'raw' as const}};
    const {real: plan} = await same('planRestore', fake.planRestore(req), real.planRestore(req));
    expect((plan as {creates: string[]}).creates.join('\n')).toContain(join(dir, 'restored'));
    const {real: op} = await same('startRestore', fake.startRestore(req), real.startRestore(req));
    await same('stopRestore', fake.stopRestore('r-1'), real.stopRestore((op as {id: string}).id));
    await waitForSession(daemon.client, (op as {id: string}).id);
    await same('prune', fake.prune('second'), real.prune('second'));
    await same('gc', fake.gc('second'), real.gc('second'));
    await same('logs', fake.logs(), real.logs());
    const mail = {transport: 'smtp', host: '127.0.0.1', port: 2525, security: 'none', from: 'vmbackup@example.com', recipients: ['ops@example.com']};
    await same('setEmail', fake.setEmail(mail), real.setEmail(mail));
    await same('email', fake.email(), real.email());
    await same('forgetRestorePoint', fake.forgetRestorePoint('second', 'web01-20261121t220000z-aaaaaa'), real.forgetRestorePoint('second', point));
    await same('retentionLock', fake.retentionLock('second'), real.retentionLock('second'));
    const {fake: fl, real: rl} = await same('setRetentionLock', fake.setRetentionLock('second', 7), real.setRetentionLock('second', 7));
    expect((fl as {note: string}).note).toBe((rl as {note: string}).note);
    // Lowering is refused by both, in the same words.
    const [fe, re] = await Promise.all([fake.setRetentionLock('second', 3).catch((e: unknown) => e), real.setRetentionLock('second', 3).catch((e: unknown) => e)]);
    expect((fe as Error).message).toBe((re as Error).message);
    await same('update repositories', fake.update('repositories', 'second', {id: 'second', name: 'second', path: join(dir, 'repo')}), real.update('repositories', 'second', {id: 'second', name: 'second', path: join(dir, 'repo')}));
  });

  it('webhooks: create, list, a test report to a real receiver, remove', async () => {
    const rx = await new WebhookReceiver().start();
    try {
      const hook = {id: 'chat', name: 'chat', url: rx.url('/T/B/x'), format: 'slack', caPem: rx.caPem, allJobs: true};
      await same('create webhooks', fake.create('webhooks', hook), real.create('webhooks', hook));
      const {real: listed} = await same('list webhooks', fake.list('webhooks'), real.list('webhooks'));
      expect((listed as {url: string}[])[0]!.url).toBe('••••');
      // The screen sends the listed object back (turn off): the real daemon takes it as it is.
      const item = (listed as Record<string, unknown>[])[0]!;
      await same('update webhooks', fake.update('webhooks', 'chat', {...item, enabled: false}), real.update('webhooks', 'chat', {...item, enabled: false}));
      await same('testWebhook', fake.testWebhook('chat'), real.testWebhook('chat'));
      expect(rx.received).toHaveLength(1);
      await same('remove webhooks', fake.remove('webhooks', 'chat'), real.remove('webhooks', 'chat'));
    } finally {
      await rx.stop();
    }
  });
});
