/**
 * Restores through the control API of a real vmbackupd (the console's restore wizard uses these
 * endpoints): list the restore points of a repository, restore disks to image files and a whole
 * VM under a new name on the oVirt simulator, each compared byte for byte with the disks at
 * backup time; progress arrives as events tagged with the restore's id; the restore is in the
 * session history; bad requests name the field.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import type {DaemonEvent} from '../../src/api/contract.js';

let dir: string;
let sim: Simulator;
let d: RunningDaemon;
let atBackup: Map<string, Buffer>;
/** The engine API calls of the backup session in beforeAll. */
let sessionCalls: {method: string; path: string}[] = [];
const events: DaemonEvent[] = [];
const stopEvents = new AbortController();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-restore-'));
  sim = await startSimulator({delayMs: 5});
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
  void d.client.events((e) => events.push(e), stopEvents.signal).catch(() => undefined);
  await d.client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, caFingerprint: sim.caFingerprint});
  await d.client.create('jobs', {id: 'web', name: 'Web', source: {connection: 'engine', vms: [{id: sim.vm('web01').id}]}, repository: 'r', retries: {count: 0}});
  const callsBefore = sim.apiLog.length;
  const s = await waitForSession(d.client, (await d.client.startJob('web')).id);
  sessionCalls = sim.apiLog.slice(callsBefore);
  expect(s.state).not.toBe('failed');
  atBackup = new Map(sim.disksOf('web01').map((x) => [x.id, x.image.read(0, x.image.size)]));
  // The VM changes after the backup: restores must bring back the backup-time bytes.
  for (const disk of sim.disksOf('web01')) sim.guestWrite(disk.id, 0, Buffer.alloc(65536, 0x5a));
});
afterAll(async () => {
  stopEvents.abort();
  await d?.stop();
  await sim?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('a job that picks a VM by id describes that VM only', () => {
  it('its session never lists every VM of the engine (one VM costs one VM)', () => {
    const vmCalls = sessionCalls.filter((c) => c.method === 'GET' && /\/api\/vms(\?|$)/.test(c.path));
    expect(vmCalls).toEqual([]);
    expect(sessionCalls.some((c) => c.method === 'GET' && c.path.startsWith(`/ovirt-engine/api/vms/${sim.vm('web01').id}`))).toBe(true);
  });
});

describe('restores through the control API', () => {
  it('lists restore points and restores disks to image files, bit-identical, with live events', async () => {
    const points = await d.client.request<{id: string; vmName: string; type: string; disks: {key: string}[]}[]>('GET', '/repositories/r/restore-points');
    expect(points).toHaveLength(1);
    expect(points[0]).toMatchObject({vmName: 'web01', type: 'full'});
    const out = join(dir, 'restored files');
    const {id} = await d.client.request<{id: string}>('POST', '/restores', {
      restorePointId: points[0].id,
      repository: 'r',
      target: {kind: 'files', directory: out, format: 'raw'},
    });
    const record = await waitForSession(d.client, id);
    expect(record.state, JSON.stringify(record.log)).toBe('success');
    expect(record.trigger).toBe('restore');
    const finished = record.log.find((l) => l.code === 'restore-finished')!;
    for (const [diskId, bytes] of atBackup) {
      const file = finished.message.split(/files |, /).find((f) => f.includes(diskId))!.replace(/\.$/, '');
      expect((await readFile(file)).equals(bytes), `disk ${diskId}`).toBe(true);
    }
    expect(events.some((e) => e.type === 'engine' && e.sessionId === id && e.event.type === 'vm-finished')).toBe(true);
    expect((await d.client.sessions()).some((s) => s.id === id)).toBe(true);
  });

  it('restores the whole VM under a new name on the engine, bit-identical', async () => {
    const [point] = await d.client.request<{id: string}[]>('GET', '/repositories/r/restore-points');
    const name = `web01 from backup "ü"`;
    const {id} = await d.client.request<{id: string}>('POST', '/restores', {restorePointId: point.id, repository: 'r', target: {kind: 'new', name, storageDomain: 'data2 block'}});
    const record = await waitForSession(d.client, id);
    expect(record.state, JSON.stringify(record.log)).toBe('success');
    const got = sim.disksOf(name).map((x) => x.image.read(0, x.image.size));
    expect(got).toHaveLength(atBackup.size);
    for (const bytes of atBackup.values()) expect(got.some((g) => g.equals(bytes))).toBe(true);
  });

  it('plans a restore before it starts: what it creates on the engine, what it refuses, and nothing changes', async () => {
    type Plan = {target: string; creates: string[]; replaces: string[]; notes: string[]};
    const [point] = await d.client.request<{id: string}[]>('GET', '/repositories/r/restore-points');
    const vmsBefore = sim.vms.length;
    const disksBefore = sim.state.disks.size;
    const plan = await d.client.request<Plan>('POST', '/restores/plan', {restorePointId: point!.id, repository: 'r', target: {kind: 'new', name: 'planned copy', storageDomain: 'data2 block'}});
    expect(plan.target).toBe('a new VM "planned copy" in cluster Default');
    expect(plan.creates[0]).toMatch(/^VM "planned copy" in cluster Default/);
    expect(plan.creates.filter((c) => c.startsWith('disk '))).toHaveLength(atBackup.size);
    expect(plan.creates.join('\n')).toContain('on storage domain data2 block');
    expect(plan.creates.join('\n')).toMatch(/disk "web01_os": qcow2, thin, 64\.0 MiB on storage domain data2 block/);
    expect(plan.creates.join('\n')).toMatch(/disk "web01_data": raw, preallocated, 32\.0 MiB on storage domain data2 block/);
    expect(plan.replaces).toEqual([]);
    // What the restore would refuse, the plan refuses: a name in use.
    await expect(d.client.request('POST', '/restores/plan', {restorePointId: point!.id, repository: 'r', target: {kind: 'new', name: 'web01'}})).rejects.toThrow(/A VM named "web01" already exists/);
    // Image files: their names, and a file that is there already is refused.
    const out = join(dir, 'plan files');
    const files = await d.client.request<Plan>('POST', '/restores/plan', {restorePointId: point!.id, repository: 'r', target: {kind: 'files', directory: out, format: 'qcow2'}});
    expect(files.target).toBe(`qcow2 image files in ${out} on this appliance`);
    expect(files.creates).toHaveLength(atBackup.size);
    for (const diskId of atBackup.keys()) expect(files.creates.join('\n')).toContain(join(out, `web01-${diskId}.qcow2`));
    expect(sim.vms.length).toBe(vmsBefore);
    expect(sim.state.disks.size).toBe(disksBefore);
    const {mkdir, writeFile} = await import('node:fs/promises');
    await mkdir(out, {recursive: true});
    await writeFile(join(out, `web01-${[...atBackup.keys()][0]}.qcow2`), 'x');
    await expect(d.client.request('POST', '/restores/plan', {restorePointId: point!.id, repository: 'r', target: {kind: 'files', directory: out, format: 'qcow2'}})).rejects.toThrow(/already exists/);
  });

  it('tells the wizard whether the VM is still there, so "to its original place" is offered only then', async () => {
    type Point = {vmId: string; vmExists?: boolean};
    const before = await d.client.request<Point[]>('GET', '/repositories/r/restore-points');
    expect(before.map((p) => p.vmExists)).toEqual([true]);
    const vm = sim.vm('web01');
    sim.state.vms.delete(vm.id);
    try {
      const after = await d.client.request<Point[]>('GET', '/repositories/r/restore-points');
      expect(after.map((p) => p.vmExists)).toEqual([false]);
    } finally {
      sim.state.vms.set(vm.id, vm);
    }
  });

  it('protects a restore point and lifts it again; the CLI does the same', async () => {
    type Point = {id: string; protected: boolean};
    const [point] = await d.client.request<Point[]>('GET', '/repositories/r/restore-points');
    expect(await d.client.request('PUT', `/repositories/r/restore-points/${point!.id}/protected`, {protected: true})).toEqual({id: point!.id, protected: true});
    expect((await d.client.request<Point[]>('GET', '/repositories/r/restore-points'))[0]!.protected).toBe(true);
    const cli = await vmbackup(['point', 'unprotect', 'r', point!.id], {env: {VMBACKUP_SOCKET: d.client.socketPath}});
    expect(cli.stdout, cli.stderr).toContain('is no longer protected');
    expect((await d.client.request<Point[]>('GET', '/repositories/r/restore-points'))[0]!.protected).toBe(false);
    await expect(d.client.request('PUT', '/repositories/r/restore-points/..%2F..%2Fetc/protected', {protected: true})).rejects.toThrow();
    await expect(d.client.request('PUT', `/repositories/r/restore-points/${point!.id}/protected`, {protected: 'yes'})).rejects.toThrow(/protected: give true or false/);
  });

  it('refuses bad requests with the field named, and changes nothing', async () => {
    const before = (await d.client.sessions()).length;
    await expect(d.client.request('POST', '/restores', {repository: 'r', target: {kind: 'files', directory: '/tmp/x'}})).rejects.toThrow(/restorePointId/);
    await expect(d.client.request('POST', '/restores', {restorePointId: 'x', repository: 'r', target: {kind: 'files', directory: 'relative/dir'}})).rejects.toThrow(/target.directory/);
    await expect(d.client.request('POST', '/restores', {restorePointId: 'nope', repository: 'r', target: {kind: 'files', directory: '/tmp/x'}})).rejects.toThrow(/no restore point nope/);
    expect((await d.client.sessions()).length).toBe(before);
  });

  it('shows the engine CA fingerprint to confirm before a connection is saved', async () => {
    const ca = await d.client.request<{fingerprint: string}>('POST', '/connections/ovirt-ca', {url: sim.url});
    expect(ca.fingerprint).toBe(sim.caFingerprint);
  });
});
