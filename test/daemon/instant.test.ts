/**
 * Instant recovery end to end on the test bed's real libvirt: a real vmbackupd backs up a VM,
 * starts it again from the restore point (qcow2 overlays backed by the daemon's own NBD export),
 * a guest-like write goes into the running instant VM, `finish` moves it to storage with
 * `virsh blockcopy --pivot` while it runs, and the final disks must equal restore point + write.
 * The same over an SSH host (the test bed's sshd; the export reaches QEMU through `ssh -R`),
 * across a restart of the daemon (the export is served again, QEMU reconnects), and `stop`,
 * which must leave nothing behind. (Restore verification, built on it: verify-boot.test.ts.)
 */
import {randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {copyFile, mkdir, mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createTestVm, destroyTestVm, domstate, ensureLibvirt, hmpIo, offlineWrite, virsh, type TestVm} from '../lib/libvirt.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {vmbackup} from '../lib/cli.js';
import {isolate, sleep, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import {consoleApi} from '../../src/console/api.js';
import {FakeApi} from '../console/fake-api.js';
import {outside, shapeOf} from '../lib/shape.js';

/** The console's fake answers in the real daemon's shapes (test/console/instant.test.tsx relies on it). */
function sameShape(name: string, fake: unknown, real: unknown): void {
  expect(outside(shapeOf(fake), shapeOf(real)), name).toEqual([]);
}

let dir: string;
let d: RunningDaemon;
let vm: TestVm;
let point: string;
const tag = randomBytes(3).toString('hex');
const state = () => join(dir, 'state');
const sock = () => join(dir, 'api.sock');
const env = () => ({VMBACKUP_SOCKET: sock()});
/** Domains this file made (undefined again at the end, whatever happened). */
const made = new Set<string>();

async function persistent(name: string): Promise<boolean> {
  return /Persistent:\s+yes/.test(await virsh('dominfo', name));
}

beforeAll(async () => {
  await Promise.all([ensureLibvirt(), ensureSshd()]);
  dir = await mkdtemp(join(tmpdir(), 'vmb-instant-'));
  vm = await createTestVm(`inst-${tag}`, [
    {target: 'vda', format: 'qcow2', sizeMiB: 32},
    {target: 'vdb', format: 'raw', sizeMiB: 8},
  ]);
  await offlineWrite(vm, 'vda', 'write -P 0x11 0 4M');
  await offlineWrite(vm, 'vda', 'write -P 0x12 20M 1M');
  await offlineWrite(vm, 'vdb', 'write -P 0x21 1M 2M');
  d = await startDaemon(state(), sock());
  const c = d.client;
  await isolate(c);
  await c.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
  await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'Local KVM', clusters: [{name: 'c1', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  const key = (await c.scanHostKey('127.0.0.1', SSHD_PORT)).keys.find((k) => k.type === 'ssh-ed25519')!;
  await c.create('connections', {
    id: 'remote', kind: 'morpheus', name: 'Remote KVM',
    clusters: [{name: 'c1', hosts: [{name: 'kvm-remote', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
  });
  await c.create('jobs', {id: 'j', name: 'Job', source: {connection: 'kvm', vms: [{id: vm.uuid}]}, repository: 'r', guestConsistency: false, retries: {count: 0}});
  const s = await waitForSession(c, (await c.startJob('j')).id);
  // 'warning': the raw disk is read whole (no bitmaps on raw images).
  expect(s.state, JSON.stringify(s.log)).toBe('warning');
  point = s.vms[0]!.restorePointId!;
}, 120_000);

afterAll(async () => {
  await d?.stop();
  for (const name of made) {
    await execa('virsh', ['-c', 'qemu:///system', 'destroy', name], {reject: false});
    await execa('virsh', ['-c', 'qemu:///system', 'undefine', name, '--nvram'], {reject: false});
  }
  await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('instant recovery on libvirt', () => {
  it('starts a VM from the backup in seconds, takes writes, moves it to storage while it runs: the final disks are the restore point plus the writes', async () => {
    const storage = join(dir, 'instant storage');
    const final = join(dir, 'production');
    await mkdir(storage);
    await mkdir(final);
    const name = `inst-${tag}-a`;
    made.add(name);
    const start = await vmbackup(['instant', 'start', 'r', '--vm', vm.name, '--name', name, '--storage', storage, '--no-network', '--json'], {env: env()});
    expect(start.exitCode, start.stderr).toBe(0);
    const r = JSON.parse(start.stdout) as {id: string; name: string; host: string; startedInMs: number};
    expect(r).toMatchObject({name, host: 'local'});
    const fake = new FakeApi();
    fake.points.r = await d.client.restorePoints('r');
    const real = consoleApi(d.client);
    sameShape('startInstant', await fake.startInstant({repository: 'r', restorePointId: point, network: false}), r);
    sameShape('instantRecoveries', await fake.instantRecoveries(), await real.instantRecoveries());
    expect(await domstate(name)).toBe('running');
    expect(await persistent(name)).toBe(false);
    const live = await virsh('dumpxml', name);
    expect(live).toContain("protocol='nbd'");
    expect(live).not.toContain('<interface');

    // The restore point is held while the VM reads it: forget refuses it.
    await expect(d.client.forgetRestorePoint('r', point)).rejects.toMatchObject({exitCode: 12});
    const list = await vmbackup(['instant', 'list'], {env: env()});
    expect(list.stdout).toContain(name);
    expect(list.stdout).toContain('running');

    // Reads come from the backup; a write lands in the overlay.
    await hmpIo(name, 'vda', 'read -P 0x12 20M 1M');
    await hmpIo(name, 'vda', 'write -P 0x77 2M 4M');
    await hmpIo(name, 'vdb', 'write -P 0x78 0 512k');
    const expectA = join(dir, 'expect-vda.raw');
    const expectB = join(dir, 'expect-vdb.raw');
    await copyFile(vm.disks[0]!.mirror, expectA);
    await copyFile(vm.disks[1]!.mirror, expectB);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 2M 4M', expectA]);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x78 0 512k', expectB]);

    sameShape('finishInstant', await fake.finishInstant('instant-1', final), await real.finishInstant(r.id, final));
    // The CLI waits for a move already under way.
    const fin = await vmbackup(['instant', 'finish', r.id, '--wait'], {env: env(), timeoutMs: 300_000});
    expect(fin.exitCode, fin.stderr).toBe(0);
    expect(await domstate(name)).toBe('running');
    expect(await persistent(name)).toBe(true);
    const files = (await readdir(final)).sort();
    expect(files).toEqual([expect.stringMatching(new RegExp(`^${name}-vda-\\d{8}T\\d{6}\\.qcow2$`)), expect.stringMatching(new RegExp(`^${name}-vdb-\\d{8}T\\d{6}\\.raw$`))]);
    // The overlays and the socket are gone, the export ended, the hold was released.
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    const inactive = await virsh('dumpxml', name, '--inactive');
    expect(inactive).toContain(join(final, files[0]!));
    expect(inactive).not.toContain('nbd');

    await virsh('destroy', name);
    for (const [file, expected, format] of [[files[0]!, expectA, 'qcow2'], [files[1]!, expectB, 'raw']] as const) {
      const cmp = await execa('qemu-img', ['compare', '-f', format, '-F', 'raw', join(final, file), expected], {reject: false});
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
    }
    const s = await d.client.session(r.id);
    expect(s).toMatchObject({state: 'success', trigger: 'instant', jobName: `Instant recovery of ${vm.name}`});
    expect(s.log.map((l) => l.code)).toEqual(expect.arrayContaining(['instant-started', 'instant-running', 'instant-migrating', 'instant-finished']));
    // Nothing holds the point any more.
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 300_000);

  it('over an SSH host: the export reaches QEMU through the tunnel, survives a restart of the daemon, and stop leaves nothing behind', async () => {
    const storage = join(dir, 'remote storage');
    await mkdir(storage);
    const name = `inst-${tag}-b`;
    made.add(name);
    const r = await d.client.startInstant({repository: 'r', restorePointId: point, connection: 'remote', name, storage, network: false});
    expect(r.host).toBe('kvm-remote');
    expect(await domstate(name)).toBe('running');
    const sockets = (await readdir(storage)).filter((f) => f.endsWith('.sock'));
    expect(sockets).toHaveLength(1);
    await hmpIo(name, 'vda', 'read -P 0x11 0 4M');

    // The daemon stops: the VM keeps running; started again, the daemon serves its disks again.
    expect(await d.stop()).toBe(0);
    expect(await domstate(name)).toBe('running');
    d = await startDaemon(state(), sock());
    for (let i = 0; i < 100; i++) {
      const s = await d.client.session(r.id);
      if (s.log.some((l) => l.code === 'instant-resumed' || l.code === 'instant-resume-failed')) break;
      await sleep(200);
    }
    const s1 = await d.client.session(r.id);
    expect(s1.state).toBe('running');
    expect(s1.log.map((l) => l.code)).toContain('instant-resumed');
    // QEMU reconnects to the export by itself: a read of data it never read before succeeds.
    let read: unknown;
    for (let i = 0; i < 120; i++) {
      read = await hmpIo(name, 'vdb', 'read -P 0x21 1M 2M').catch((err: unknown) => err);
      if (typeof read === 'string') break;
      await sleep(250);
    }
    expect(typeof read, String(read)).toBe('string');

    const fake = new FakeApi();
    fake.points.r = await d.client.restorePoints('r');
    const started = await fake.startInstant({repository: 'r', restorePointId: point, network: false});
    const stop = await vmbackup(['instant', 'stop', r.id, '--json'], {env: env()});
    expect(stop.exitCode, stop.stderr).toBe(0);
    sameShape('stopInstant', await fake.stopInstant(started.id), JSON.parse(stop.stdout));
    expect(await domstate(name)).toBeUndefined();
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    const s2 = await d.client.session(r.id);
    expect(s2.state).toBe('success');
    expect(s2.log.at(-1)?.code).toBe('instant-discarded');
    expect(existsSync(join(state(), 'instant-recoveries.json'))).toBe(true);
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 300_000);

  it('refuses what it cannot do with a clear error and leaves nothing: a name in use, a missing directory, a bad name, an unknown VM or id', async () => {
    const storage = join(dir, 'refused');
    await mkdir(storage);
    const taken = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--name', vm.name, '--storage', storage], {env: env()});
    expect(taken.exitCode).toBe(17);
    expect(taken.stderr).toContain(`A VM named ${vm.name} already exists`);
    const nodir = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--storage', join(dir, 'nope')], {env: env()});
    expect(nodir.exitCode).toBe(16);
    expect(nodir.stderr).toContain('does not exist');
    const badName = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--name', '../x'], {env: env()});
    expect(badName.exitCode).toBe(17);
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
    const noVm = await vmbackup(['instant', 'start', 'r', '--vm', 'no-such-vm'], {env: env()});
    expect(noVm.exitCode).toBe(16);
    const unknown = await vmbackup(['instant', 'stop', 'instant-nope'], {env: env()});
    expect(unknown.exitCode).toBe(16);
  }, 120_000);
});
