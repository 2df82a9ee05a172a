/**
 * Placement through the real daemon: a KVM host reached over SSH (the test bed's sshd) with a
 * worker placed on it. A job's VM on that host is read by a worker deployed there (a shut-off VM:
 * the read-only qemu-nbd on the host), the session log says which and why, and the restore point
 * restores bit-identical; without that worker (the default configuration), the scheduler grants
 * the appliance's slots and the appliance reads the disk itself, and the log says why.
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createTestVm, destroyTestVm, ensureLibvirt, imagesIdentical, offlineWrite, type TestVm} from '../lib/libvirt.js';
import {vmbackup} from '../lib/cli.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from '../daemon/helpers.js';

let dir: string;
let d: RunningDaemon;
let vm: TestVm;
const tag = randomBytes(3).toString('hex');

beforeAll(async () => {
  await Promise.all([ensureLibvirt(), ensureSshd()]);
  dir = await mkdtemp(join(tmpdir(), 'vmb-daemon-worker-'));
  vm = await createTestVm(`dw-${tag}`, [{target: 'vda', format: 'qcow2', sizeMiB: 32}]);
  await offlineWrite(vm, 'vda', 'write -P 0x31 0 3M');
  await offlineWrite(vm, 'vda', 'write -P 0x32 17M 1M');
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  const c = d.client;
  await isolate(c);
  await c.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
  const key = (await c.scanHostKey('127.0.0.1', SSHD_PORT)).keys.find((k) => k.type === 'ssh-ed25519')!;
  await c.create('connections', {
    id: 'remote', kind: 'morpheus', name: 'Remote KVM',
    clusters: [{name: 'c1', hosts: [{name: 'kvm-remote', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
  });
  await c.create('workers', {id: 'w1', name: 'on-kvm-remote', placement: {kind: 'host', connection: 'remote', host: 'kvm-remote'}, slots: 2});
  await c.create('jobs', {id: 'j', name: 'Job', source: {connection: 'remote', vms: [{id: vm.uuid}]}, repository: 'r', guestConsistency: false, retries: {count: 0}});
}, 120_000);

afterAll(async () => {
  await d?.stop();
  await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('workers placed by the daemon', () => {
  it("a worker placed on the VM's host reads its disk there; the log says so, and the point restores bit-identical", async () => {
    const s = await waitForSession(d.client, (await d.client.startJob('j')).id);
    const said = s.log.map((l) => l.message).join('\n');
    expect(s.state, said).toBe('success');
    expect(said).toMatch(/a worker on kvm-remote \(the VM's host\) reads the disks there and sends only new, compressed chunks/);
    expect(said).toMatch(/the worker on kvm-remote read 4\.0 MiB and sent 0\.\d MiB over SSH/);
    // The report's "Transferred" is what the worker sent, not the 4 MiB it read.
    const figures = s.vms[0]!.figures!;
    expect(figures.workerBytes).toBeGreaterThan(0);
    expect(figures.workerBytes!).toBeLessThan(figures.readBytes / 10);
    expect(s.totals!.transferredBytes).toBe(figures.workerBytes);
    const point = s.vms[0]!.restorePointId!;
    const r = await vmbackup(['restore', '--repo', join(dir, 'repo'), '--restore-point', point, '--to-files', join(dir, 'restored'), '--format', 'raw', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout).files;
    const cmp = await imagesIdentical(files.find((f) => f.endsWith('-vda.raw'))!, vm.disks[0]!.mirror);
    expect(cmp.same, cmp.output).toBe(true);
  });

  it('without a worker placed there (the default: only the appliance\'s), the appliance reads the disk and the log says why', async () => {
    await d.client.remove('workers', 'w1');
    await offlineWrite(vm, 'vda', 'write -P 0x33 9M 256k');
    const s = await waitForSession(d.client, (await d.client.startJob('j')).id);
    const said = s.log.map((l) => l.message).join('\n');
    expect(s.state, said).toBe('success');
    expect(said).toMatch(/the appliance reads the disks itself: its disk tasks run on the appliance's worker "appliance" \(the VM runs on kvm-remote\)/);
    expect(said).not.toMatch(/a worker on kvm-remote/);
  });
});
