/**
 * Jobs end to end: a real vmbackupd process backs up real libvirt VMs (shut off, qcow2 and raw
 * disks, test/lib/libvirt.ts) into real repositories: sessions with per-VM status, two jobs
 * sharing a VM, stop, kill -9 in the middle of a session and reconciliation, retries of failed
 * VMs, retention, and a health check that finds a damaged chunk and makes the next backup heal it.
 */
import {randomBytes} from 'node:crypto';
import {spawn} from 'node:child_process';
import {mkdtemp, open, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openRepository} from '../../src/repository/index.js';
import {createTestVm, destroyTestVm, ensureLibvirt, offlineWrite, type TestVm} from '../lib/libvirt.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import type {DaemonEvent} from '../../src/api/contract.js';

let dir: string;
let d: RunningDaemon;
const vms: Record<string, TestVm> = {};
const tag = randomBytes(3).toString('hex');
const state = () => join(dir, 'state');
const sock = () => join(dir, 'api.sock');

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-jobs-'));
  vms.a = await createTestVm(`dmn-${tag} a "ü"`, [
    {target: 'vda', format: 'qcow2', sizeMiB: 8},
    {target: 'vdb', format: 'raw', sizeMiB: 4},
  ]);
  vms.b = await createTestVm(`dmn-${tag} b`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}]);
  vms.c = await createTestVm(`dmn-${tag} c`, [{target: 'vda', format: 'qcow2', sizeMiB: 64}]);
  vms.e = await createTestVm(`dmn-${tag} e`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}]);
  await offlineWrite(vms.a, 'vda', 'write -P 0x11 0 2M');
  await offlineWrite(vms.a, 'vdb', 'write -P 0x12 1M 1M');
  await offlineWrite(vms.b, 'vda', 'write -P 0x21 0 2M');
  await offlineWrite(vms.c, 'vda', 'write -P 0x31 0 24M');
  await offlineWrite(vms.e, 'vda', 'write -P 0x51 0 1M');
  d = await startDaemon(state(), sock());
  const c = d.client;
  await isolate(c);
  await c.create('repositories', {id: 'r1', name: 'Repo one', path: join(dir, 'repo 1')});
  await c.create('repositories', {id: 'r2', name: 'Repo two', path: join(dir, 'repo 2')});
  await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'Local KVM', clusters: [{name: 'c1', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  const job = (id: string, picks: string[], extra: Record<string, unknown> = {}) =>
    c.create('jobs', {id, name: `Job ${id}`, source: {connection: 'kvm', vms: picks.map((k) => ({id: vms[k]!.uuid}))}, repository: 'r1', guestConsistency: false, retries: {count: 0}, ...extra});
  await job('ab', ['a', 'b']);
  await job('b', ['b']);
  await job('bc-slow', ['b', 'c'], {bandwidthLimitMBps: 1});
  await job('c-slow', ['c'], {bandwidthLimitMBps: 1});
  await job('c', ['c']);
  await job('retry', ['b', 'e'], {retries: {count: 2, waitMinutes: 0}});
  await job('keep2', ['b'], {repository: 'r2', retention: {restorePoints: 2}});
  await job('keep1', ['b'], {repository: 'r2', retention: {restorePoints: 1}});
  await job('b-full', ['b'], {activeFullDays: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']});
});

afterAll(async () => {
  await d?.stop();
  for (const vm of Object.values(vms)) await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

function collect(until: (e: DaemonEvent) => boolean): {events: DaemonEvent[]; done: Promise<void>} {
  const ac = new AbortController();
  const events: DaemonEvent[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  void d.client.events((e) => {
    events.push(e);
    if (until(e)) {
      resolve();
      ac.abort();
    }
  }, ac.signal);
  return {events, done};
}

describe('jobs on a real daemon against libvirt', () => {
  it('runs a job: per-VM status, figures, a log with the raw-disk warning, history', async () => {
    const s0 = await d.client.startJob('ab');
    await expect(d.client.startJob('ab')).rejects.toMatchObject({exitCode: 12});
    const s = await waitForSession(d.client, s0.id);
    expect(s.state, JSON.stringify(s.log)).toBe('warning');
    const a = s.vms.find((v) => v.id === vms.a!.uuid)!;
    const b = s.vms.find((v) => v.id === vms.b!.uuid)!;
    expect(a).toMatchObject({name: vms.a!.name, state: 'warning', worker: 'appliance', attempts: 1});
    expect(b.state).toBe('success');
    expect(a.restorePointId).toBeTruthy();
    expect(a.figures!.readBytes).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(s.totals.readBytes).toBe(a.figures!.readBytes + b.figures!.readBytes);
    expect(s.totals.storedBytes).toBeGreaterThan(0);
    expect(['source', 'processing', 'repository']).toContain(s.totals.bottleneck);
    expect(s.log.some((l) => l.severity === 'warning' && l.vm === vms.a!.name)).toBe(true);
    const repo = await openRepository(join(dir, 'repo 1'));
    expect((await repo.listRestorePoints({vmId: vms.a!.uuid})).map((p) => p.sessionId)).toEqual([s.id]);
    const list = await d.client.sessions({job: 'ab'});
    expect(list[0]).toMatchObject({id: s.id, state: 'warning'});
    expect((list[0] as Record<string, unknown>).log).toBeUndefined();
  });

  it('two jobs sharing a VM: the VM is backed up by one at a time, both finish', async () => {
    const [s1, s2] = [await d.client.startJob('ab'), await d.client.startJob('b')];
    const [r1, r2] = [await waitForSession(d.client, s1.id), await waitForSession(d.client, s2.id)];
    expect(r1.state).not.toBe('failed');
    expect(r2.state).toBe('success');
    const repo = await openRepository(join(dir, 'repo 1'));
    const points = await repo.listRestorePoints({vmId: vms.b!.uuid});
    expect(points.map((p) => p.sessionId)).toEqual(expect.arrayContaining([s1.id, s2.id]));
  });

  it('an active full day reads every disk in full even though a base exists', async () => {
    const s = await waitForSession(d.client, (await d.client.startJob('b-full')).id);
    expect(s.vms[0]).toMatchObject({state: 'success', full: true, incremental: false});
    // Nothing changed since the last backup, yet the whole written data was read again.
    expect(s.vms[0]!.figures!.readBytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
  });

  it('stop: VMs that finished keep their restore points, the others stop cleanly', async () => {
    const watch = collect((e) => e.type === 'engine' && e.event.type === 'vm-finished' && e.event.vmId === vms.b!.uuid);
    const s0 = await d.client.startJob('bc-slow');
    await watch.done;
    const stopped = await d.client.stopJob('bc-slow');
    expect(stopped.state).toBe('stopped');
    const s = await d.client.session(s0.id);
    expect(s.vms.find((v) => v.id === vms.b!.uuid)).toMatchObject({state: 'success'});
    expect(s.vms.find((v) => v.id === vms.c!.uuid)).toMatchObject({state: 'stopped', reason: expect.stringMatching(/Stopped/)});
    const repo = await openRepository(join(dir, 'repo 1'));
    expect((await repo.listRestorePoints({vmId: vms.b!.uuid})).some((p) => p.sessionId === s0.id)).toBe(true);
    expect(await repo.listRestorePoints({vmId: vms.c!.uuid})).toEqual([]);
  });

  it('kill -9 in the middle of a session: the restart marks it failed, cleans up, and the VM backs up again', async () => {
    const watch = collect((e) => e.type === 'engine' && e.event.type === 'disk-progress' && e.event.vmId === vms.c!.uuid);
    const s0 = await d.client.startJob('c-slow');
    await watch.done;
    await d.kill();
    d = await startDaemon(state(), sock());
    const s = await d.client.session(s0.id);
    expect(s.state).toBe('failed');
    expect(s.reason).toMatch(/daemon stopped/);
    expect(s.vms[0]).toMatchObject({state: 'failed', reason: expect.stringMatching(/daemon stopped/)});
    const again = await waitForSession(d.client, (await d.client.startJob('c')).id);
    expect(again.state, JSON.stringify(again.log)).toBe('success');
    expect(d.lines.filter((l) => /leftovers on connection Local KVM/.test(l)).at(-1), d.lines.join('\n')).toMatch(/Cleaned up leftovers/);
    const repo = await openRepository(join(dir, 'repo 1'));
    expect((await repo.listRestorePoints({vmId: vms.c!.uuid})).map((p) => p.sessionId)).toEqual([again.id]);
  });

  it('SIGTERM in the middle of a session stops it cleanly: exit 0, session stopped, no partial restore point', async () => {
    const repo = await openRepository(join(dir, 'repo 1'));
    const before = (await repo.listRestorePoints({vmId: vms.c!.uuid})).map((p) => p.id);
    // 24 MiB changed at 1 MB/s: many throttled reads remain when the first progress event arrives.
    await offlineWrite(vms.c!, 'vda', 'write -P 0x32 0 24M');
    const watch = collect((e) => e.type === 'engine' && e.event.type === 'disk-progress' && e.event.vmId === vms.c!.uuid);
    const s0 = await d.client.startJob('c-slow');
    await watch.done;
    const lines = d.lines;
    expect(await d.stop(), lines.slice(-40).join('\n')).toBe(0);
    d = await startDaemon(state(), sock());
    const s = await d.client.session(s0.id);
    expect(s).toMatchObject({state: 'stopped', reason: expect.stringMatching(/SIGTERM/)});
    expect(s.vms[0]).toMatchObject({state: 'stopped'});
    expect(d.lines.some((l) => /Closed session/.test(l))).toBe(false);
    expect((await repo.listRestorePoints({vmId: vms.c!.uuid})).map((p) => p.id)).toEqual(before);
    // Nothing was left locked: the next backup of the VM works.
    expect((await waitForSession(d.client, (await d.client.startJob('c')).id)).state).toBe('success');
  });

  it('retries only the failed VMs, then retry-failed runs just those', async () => {
    // qemu-io holds the image's write lock, as a running QEMU or a stuck tool on the host would.
    const holder = spawn('qemu-io', ['-f', 'qcow2', vms.e!.disks[0]!.path], {stdio: ['pipe', 'ignore', 'ignore']});
    await new Promise((r) => setTimeout(r, 500)); // let it open the image (not an assertion)
    let s;
    try {
      s = await waitForSession(d.client, (await d.client.startJob('retry')).id);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.on('exit', r));
    }
    expect(s.state).toBe('failed');
    expect(s.attempt).toBe(3);
    expect(s.vms.find((v) => v.id === vms.e!.uuid)).toMatchObject({state: 'failed', attempts: 3, reason: expect.any(String)});
    expect(s.vms.find((v) => v.id === vms.b!.uuid)).toMatchObject({state: 'success', attempts: 1});
    const r = await waitForSession(d.client, (await d.client.retryFailed('retry')).id);
    expect(r.trigger).toBe('retry-failed');
    expect(r.vms.map((v) => v.id)).toEqual([vms.e!.uuid]);
    expect(r.state).toBe('success');
  });

  it('applies the job retention after each session', async () => {
    for (let i = 0; i < 3; i++) {
      await offlineWrite(vms.b!, 'vda', `write -P 0x${(0x40 + i).toString(16)} 0 64k`);
      const s = await waitForSession(d.client, (await d.client.startJob('keep2')).id);
      expect(s.state).toBe('success');
    }
    const repo = await openRepository(join(dir, 'repo 2'));
    expect(await repo.listRestorePoints({vmId: vms.b!.uuid})).toHaveLength(2);
    const last = (await d.client.sessions({job: 'keep2', limit: 1}))[0]!;
    expect((await d.client.session(last.id)).log.some((l) => l.code === 'retention')).toBe(true);
  });

  it("two jobs backing up one VM into one repository each prune only their own restore points", async () => {
    // After the test above, keep2 has 2 points of VM b in repo 2; keep1 (keep one) runs twice.
    const repo = await openRepository(join(dir, 'repo 2'));
    const keep2Points = (await repo.listRestorePoints({vmId: vms.b!.uuid})).map((p) => p.id);
    expect(keep2Points).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      await offlineWrite(vms.b!, 'vda', `write -P 0x${(0x50 + i).toString(16)} 0 64k`);
      expect((await waitForSession(d.client, (await d.client.startJob('keep1')).id)).state).toBe('success');
    }
    const points = await repo.listRestorePoints({vmId: vms.b!.uuid});
    expect(points.filter((p) => p.jobId === 'keep1')).toHaveLength(1);
    expect(points.filter((p) => p.jobId === 'keep2').map((p) => p.id).sort()).toEqual([...keep2Points].sort());
    // A prune on request applies the same rule: nothing more to remove.
    expect(await d.client.prune('r2')).toMatchObject({ok: true, removed: 0, kept: 3});
  });

  it('a health check that finds a damaged chunk makes the next backup read in full, which heals it', async () => {
    // Damage every chunk file (the referenced ones among them), just after the 16-byte header.
    const root = join(dir, 'repo 2', 'chunks');
    for (const prefix of await readdir(root)) {
      for (const name of await readdir(join(root, prefix))) {
        const fh = await open(join(root, prefix, name), 'r+');
        await fh.write(Buffer.from('dmg!'), 0, 4, 17);
        await fh.close();
      }
    }
    const check = await d.client.verify('r2');
    expect(check.ok).toBe(false);
    expect(check.vms).toEqual([vms.b!.uuid]);
    expect((await d.client.status()).repositories.find((r) => r.id === 'r2')!.needsFullVms).toBe(1);
    const s = await waitForSession(d.client, (await d.client.startJob('keep2')).id);
    expect(s.vms[0]).toMatchObject({state: 'success', full: true});
    expect((await d.client.status()).repositories.find((r) => r.id === 'r2')!.needsFullVms).toBe(0);
    const s2 = await waitForSession(d.client, (await d.client.startJob('keep2')).id);
    expect(s2.vms[0]!.full).toBe(false);
    // The newest restore point is whole again.
    const repo = await openRepository(join(dir, 'repo 2'));
    const newest = (await repo.listRestorePoints({vmId: vms.b!.uuid})).at(-1)!;
    expect((await repo.verify({restorePoints: [newest.id]})).ok).toBe(true);
  });
});
