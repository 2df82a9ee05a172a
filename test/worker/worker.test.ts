/**
 * Workers on the hosts, end to end on real components: a running VM on libvirt + QEMU reached
 * as a remote host over the test bed's sshd (127.0.0.1:2222); the appliance deploys the worker
 * over that SSH connection (its own runtime and code), the worker reads the disks from libvirt's
 * NBD export on the host and sends only ids and new packed chunks; the restore points restore
 * bit-identical (into an encrypted repository too: keyed ids from the id key); nothing of the
 * worker runs afterwards and it can be removed from the host. A worker killed (kill -9) in the
 * middle of a disk fails that VM cleanly (no job, no session directory left on the host) and the
 * next run succeeds. (A chunk that does not hash to its id is refused: packed-chunks.test.ts.)
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm, type VmBackupResult} from '../../src/engine/backup-vm.js';
import {Placement} from '../../src/engine/placement.js';
import type {DiskSource, HostRead, SessionEvent} from '../../src/platforms/types.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import {LibvirtPlatform} from '../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {copyFile, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, virsh, type TestVm, TEST_PREFIX} from '../lib/libvirt.js';
import {deployWorker, removeWorker} from '../../src/worker/deploy.js';
import {vmbackup} from '../lib/cli.js';
import {ensureSshd, testSshHost, testSshTarget} from '../lib/sshd.js';

const MiB = 1024 * 1024;
const REMOTE_SCRATCH = '/var/tmp/vmbackup-test-worker-remote';
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
let repo: Repository;
let work: string;

function sshPlatform(): LibvirtPlatform {
  return new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [testSshHost('hvm-1')], scratchDir: REMOTE_SCRATCH, localScratchDir: '/var/tmp/vmbackup-test-worker-appliance'});
}

function backup(extra: Partial<Parameters<typeof backupVm>[0]> = {}): Promise<VmBackupResult> {
  return backupVm({platform, repository: repo, vmId: vm!.uuid, vmName: vm!.name, ...extra});
}

async function restoreAndCompare(restorePointId: string, mirror: string, tag: string): Promise<void> {
  const result = await restoreVm({platform, repository: repo, restorePointId, target: {mode: 'disks-to-files', directory: join(work, `restore-${tag}`), format: 'raw'}});
  const cmp = await imagesIdentical(result.files![0]!, mirror);
  expect(cmp.same, `${tag}: ${cmp.output}`).toBe(true);
}

/** Worker processes of this appliance running on the "host" (the same machine here). */
async function workerProcesses(): Promise<string[]> {
  const r = await execa('pgrep', ['-af', `${REMOTE_SCRATCH}/worker-`], {reject: false});
  return r.stdout.split('\n').filter((l) => l.includes('app/worker/main.js'));
}

async function remoteEntries(): Promise<string[]> {
  const r = await execa('ls', ['-1', REMOTE_SCRATCH], {reject: false});
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

beforeAll(async () => {
  await ensureLibvirt();
  await ensureSshd();
  work = await mkdtemp(join(tmpdir(), 'worker-'));
  repo = await createRepository(join(work, 'repo'), {chunkSize: 256 * 1024});
  platform = sshPlatform();
  vm = await createTestVm(`worker vm ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 96}], {start: true});
});

afterAll(async () => {
  await platform?.close();
  await destroyTestVm(vm);
  if (work) await rm(work, {recursive: true, force: true});
});

describe('a worker on the VM host', () => {
  let base: string | undefined;

  it('deploys itself, reads the disk on the host, sends only new packed chunks, and the point restores bit-identical', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x5a 0 6M');
    await guestWrite(vm!, 'vda', 'write -P 0x5b 50M 2M');
    const r = await backup();
    expect(r.status, String(r.error)).not.toBe('failed');
    const said = r.events.map((e) => e.message).join('\n');
    expect(said).toMatch(/a worker on hvm-1 \(the VM's host\) reads the disks there/);
    expect(r.workers).toHaveLength(1);
    const disk = r.disks.vda!;
    expect(disk.readBytes).toBe(8 * MiB);
    // What crossed: the ids and the packed new chunks, about the compressed size (a pattern packs to almost nothing).
    expect(disk.workerBytes).toBeGreaterThan(0);
    expect(disk.workerBytes!).toBeLessThan(disk.storedBytes + 64 * 1024);
    expect(r.workers![0]!.bytesIn).toBeLessThan(disk.storedBytes * 1.05 + 64 * 1024);
    expect(r.workers![0]!.stats!.cpuUserUs).toBeGreaterThan(0);
    base = r.restorePoint!.id;
    const mirror = join(work, 'full.raw');
    await copyFile(vm!.disks[0]!.mirror, mirror);
    await restoreAndCompare(base, mirror, 'full');
    // Nothing of the worker runs once the backup is over.
    expect(await workerProcesses()).toEqual([]);
    expect((await remoteEntries()).filter((e) => e.startsWith('worker-'))).toHaveLength(1);
  });

  it('an incremental sends the changed chunks only; data the repository has is not sent again', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x5a 70M 1M'); // the same bytes as chunks the repository holds
    await guestWrite(vm!, 'vda', 'write -P 0x61 80M 512k'); // new
    const r = await backup();
    expect(r.status, String(r.error)).not.toBe('failed');
    expect(r.incremental).toBe(true);
    const disk = r.disks.vda!;
    expect(disk.readBytes).toBe(1.5 * MiB);
    expect(disk.newChunks).toBe(1); // the 0x61 chunks are all alike: one new chunk
    expect(disk.workerBytes!).toBeLessThan(disk.storedBytes + 4096);
    const mirror = join(work, 'incr.raw');
    await copyFile(vm!.disks[0]!.mirror, mirror);
    await restoreAndCompare(r.restorePoint!.id, mirror, 'incremental');
  });

  it('into an encrypted repository: the worker computes keyed ids with the id key it was given, and the point restores bit-identical', async () => {
    const encrypted = await createRepository(join(work, 'repo-encrypted'), {chunkSize: 256 * 1024, passphrase: 'worker-test-passphrase'});
    const r = await backupVm({platform, repository: encrypted, vmId: vm!.uuid, vmName: vm!.name});
    expect(r.status, String(r.error)).not.toBe('failed');
    expect(r.workers).toHaveLength(1);
    expect(r.disks.vda!.newChunks).toBeGreaterThan(0);
    const result = await restoreVm({platform, repository: encrypted, restorePointId: r.restorePoint!.id, target: {mode: 'disks-to-files', directory: join(work, 'restore-encrypted'), format: 'raw'}});
    const cmp = await imagesIdentical(result.files![0]!, vm!.disks[0]!.mirror);
    expect(cmp.same, cmp.output).toBe(true);
  });

  it('a worker killed in the middle of a disk fails that VM cleanly, and the next run succeeds', async () => {
    // Twelve runs of 1 MiB apart from each other: twelve reads, four at a time, slowed by the limit.
    for (let i = 0; i < 12; i++) await guestWrite(vm!, 'vda', `write -P 0x71 ${i * 7}M 1M`);
    // Killed as soon as the first data arrived from it; the bandwidth limit keeps the rest slow.
    let killed: Promise<unknown> | undefined;
    const running = backup({
      full: true,
      throttle: () => new Promise((r) => setTimeout(r, 500)),
      onEvent: (e) => {
        if (e.type === 'disk-progress' && e.readBytes > 0 && !killed) killed = execa('pkill', ['-9', '-f', `${REMOTE_SCRATCH}/worker-.*/app/worker/main.js`]);
      },
    });
    const r = await running;
    expect(((await killed) as {exitCode: number}).exitCode).toBe(0);
    expect(r.status).toBe('failed');
    expect(String((r.error as Error).message)).toMatch(/The worker on hvm-1 stopped/);
    // Nothing left on the host: no backup job, no session directory, no worker process.
    expect(await virsh('domjobinfo', vm!.uuid)).toMatch(/Job type:\s+None/);
    expect((await remoteEntries()).filter((e) => !e.startsWith('worker-'))).toEqual([]);
    expect(await workerProcesses()).toEqual([]);
    const again = await backup();
    expect(again.status, String(again.error)).not.toBe('failed');
    const mirror = join(work, 'after-kill.raw');
    await copyFile(vm!.disks[0]!.mirror, mirror);
    await restoreAndCompare(again.restorePoint!.id, mirror, 'after-kill');
  });

  it('with workers off, the appliance reads the disk itself and says why', async () => {
    const events: SessionEvent[] = [];
    const placement = new Placement('off', (e) => events.push(e), undefined, 'its disk tasks run on the appliance\'s worker "appliance"');
    const hostRead = {hostName: 'hvm-1', socketPath: '/nonexistent', exportName: 'vda'} as unknown as HostRead;
    expect(await placement.place({key: 'vda', hostRead} as unknown as DiskSource)).toBeUndefined();
    expect(await placement.place({key: 'vdb'} as unknown as DiskSource)).toBeUndefined();
    expect(events.map((e) => e.message)).toEqual([
      'the appliance reads the disks itself: its disk tasks run on the appliance\'s worker "appliance" (the VM runs on hvm-1)',
      'the appliance reads the disks itself (no worker can read them on their host: a local host, an export over TCP, a file the host hands over, or a platform without host access)',
    ]);
    await placement.close();
    // Beside disks placed on a worker (here one that could not be started), a disk the host hands over is named.
    const more: SessionEvent[] = [];
    const auto = new Placement('auto', (e) => more.push(e), undefined);
    const unreachable = {...hostRead, runner: {where: 'hvm-1', run: () => Promise.reject(new Error('No route to host'))}} as unknown as HostRead;
    expect(await auto.place({key: 'vda', hostRead: unreachable} as unknown as DiskSource)).toBeUndefined();
    expect(await auto.place({key: 'nvram'} as unknown as DiskSource)).toBeUndefined();
    expect(more.map((e) => `${e.severity} ${e.message}`)).toEqual([
      'warning no worker on hvm-1, so the appliance reads the disks itself through the SSH tunnel: No route to host',
      'info the appliance reads nvram itself (no worker can read it on its host: a local host, an export over TCP, a file the host hands over, or a platform without host access)',
    ]);
  });

  it('is removed from the host on request (vmbackup worker uninstall)', async () => {
    const t = testSshTarget();
    const args = ['worker', 'uninstall', '--host', `${t.user}@${t.host}:${t.port}`, '--identity', t.identityFile, '--known-hosts', t.knownHostsFile];
    const env = {VMBACKUP_HOST_SCRATCH: REMOTE_SCRATCH};
    const r = await vmbackup(args, {env});
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Removed from 127\\.0\\.0\\.1:\\n  ${REMOTE_SCRATCH}/worker-[0-9a-f]{16}`));
    expect((await remoteEntries()).filter((e) => e.startsWith('worker-'))).toEqual([]);
    expect((await vmbackup(args, {env})).stdout).toMatch(/has no worker of this appliance/);
  });

  it('removed behind the appliance\'s back, the worker is copied again by the next backup', async () => {
    // This process last found it intact a moment ago; the uninstall above ran in another process.
    await guestWrite(vm!, 'vda', 'write -P 0x73 2M 256k');
    const r = await backup();
    expect(r.status, String(r.error)).not.toBe('failed');
    expect(r.events.map((e) => e.message).join('\n')).toMatch(/a worker on hvm-1 \(the VM's host\) reads the disks there .*copied to the host/);
    expect(r.workers).toHaveLength(1);
  });

  it('VMs that start together on a fresh host share one copy of the worker', async () => {
    const hr = platform.hosts[0]!.workerAccess()!;
    await removeWorker(hr);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => deployWorker(hr)));
    expect(a!.copied).toBe(true);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect((await remoteEntries()).filter((e) => e.startsWith('worker-'))).toEqual([a!.dir.split('/').pop()]);
  });
});
