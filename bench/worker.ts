/**
 * A worker on the VM's host vs. the SSH tunnel of before (prints figures; not a test):
 *   node --import tsx bench/worker.ts
 *
 * The bench disk (bench/lib/ext4-image.ts: a 3 GiB qcow2 holding an ext4 file system with ~800
 * MiB of real files from /usr) on twin VMs made from the same image, each backed up from a
 * "remote" host: libvirt on this machine reached through the test bed's sshd (127.0.0.1:2222).
 * One twin through the tunnel (workers off: the appliance reads every data byte over an
 * SSH-forwarded NBD socket), the other through a worker deployed on the host; per twin a full
 * into a fresh repository, then 64 MiB of guest writes (the same on both: 32 MiB of random data,
 * 32 MiB copied from files on the disk) and an incremental.
 *
 * Figures per backup:
 *   - bytes that crossed the SSH connection: every TCP byte to and from port 2222 on loopback
 *     (iptables counters: SSH's encryption and framing, the virsh commands, the tunnel or the
 *     worker's stream), against the bytes the repository newly stored (the goal: ≤ + 5 %);
 *   - wall time; the appliance's CPU (this process with its threads and the ssh clients it
 *     starts) and the host's CPU (everything the test sshd runs: SSH sessions and their
 *     encryption, virsh, the worker), both from cgroup v1 cpuacct groups made for the run;
 *     QEMU's own NBD serving is the same both ways and in neither.
 * The worker is copied to the host (a fresh scratch directory) before its full; that one-time
 * copy is measured and printed apart. The restore of each twin's incremental is compared with
 * the disk's mirror.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, open, readFile, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {backupVm, type VmBackupResult} from '../src/engine/backup-vm.js';
import {restoreVm} from '../src/engine/restore-vm.js';
import {LibvirtPlatform} from '../src/platforms/libvirt/index.js';
import {createRepository} from '../src/repository/index.js';
import {deployWorker} from '../src/worker/deploy.js';
import {destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, TEST_PREFIX, type TestVm} from '../test/lib/libvirt.js';
import {ensureSshd, testSshHost} from '../test/lib/sshd.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {createBenchVm} from './lib/libvirt-vm.js';
import {MiB, machineLine, mib} from './lib/measure.js';
import {countSshBytes} from './lib/ssh-bytes.js';

const CACHE = '/var/tmp/vmbackup-bench';
const WORK = join(CACHE, 'worker-work');
const REMOTE_SCRATCH = join(CACHE, 'worker-host-scratch');
const WRITES = [256, 1024, 1792, 2560].map((m, i) => ({offset: m * MiB, length: 16 * MiB, random: i % 2 === 0}));

/**
 * CPU accounting per side (cgroup v1 cpuacct, which counts processes that already exited): the
 * test sshd's listener goes into one group, so everything it starts for the "host" — sessions,
 * virsh, the worker — is counted there; this process into another, with the ssh clients it
 * starts (the tunnel's and the worker's encryption on the appliance side) and its threads.
 */
const CPUACCT = '/sys/fs/cgroup/cpuacct';
async function cgroupCpuMs(group: string): Promise<number> {
  return Number((await readFile(join(CPUACCT, group, 'cpuacct.usage'), 'utf8')).trim()) / 1e6;
}
async function intoGroup(group: string, pid: string): Promise<void> {
  await mkdir(join(CPUACCT, group), {recursive: true});
  await writeFile(join(CPUACCT, group, 'cgroup.procs'), pid);
}
async function sshdPid(): Promise<string> {
  return (await execa('pgrep', ['-f', 'sshd -f /var/lib/vmbackup-test/sshd/sshd_config'])).stdout.trim().split('\n')[0]!;
}

function platformFor(): LibvirtPlatform {
  return new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [testSshHost('kvm-remote')], scratchDir: REMOTE_SCRATCH, localScratchDir: join(WORK, 'appliance')});
}

interface Figures {
  label: string;
  wallMs: number;
  applianceCpuMs: number;
  /** The part of applianceCpuMs in this process (engine, chunk threads); the rest is its ssh clients. */
  nodeCpuMs: number;
  hostCpuMs: number;
  sshBytes: number;
  readBytes: number;
  storedBytes: number;
  workerBytes: number;
  copied: boolean;
}

/** One backup with a platform of its own; closed before the host's figures are read (its SSH master is reaped then). */
async function measure(label: string, run: (platform: LibvirtPlatform) => Promise<VmBackupResult>): Promise<Figures> {
  const platform = platformFor();
  const [b0, h0, a0] = [await sshBytes(), await cgroupCpuMs('vmbbench-host'), await cgroupCpuMs('vmbbench-appliance')];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await run(platform);
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await platform.close();
  await new Promise((res) => setTimeout(res, 500));
  if (r.status === 'failed') throw r.error;
  const disks = Object.values(r.disks);
  return {
    label,
    wallMs,
    applianceCpuMs: (await cgroupCpuMs('vmbbench-appliance')) - a0,
    nodeCpuMs: (c.user + c.system) / 1000,
    hostCpuMs: (await cgroupCpuMs('vmbbench-host')) - h0,
    sshBytes: (await sshBytes()) - b0,
    readBytes: disks.reduce((n, d) => n + d.readBytes, 0),
    storedBytes: disks.reduce((n, d) => n + d.storedBytes, 0),
    workerBytes: disks.reduce((n, d) => n + (d.workerBytes ?? 0), 0),
    copied: r.events.some((e) => /copied to the host/.test(e.message)),
  };
}

await ensureLibvirt();
await ensureSshd();
console.log(`machine: ${machineLine()}`);
const image = await ensureExt4Image(CACHE, {sizeMiB: 3072, dataMiB: 800});
await rm(WORK, {recursive: true, force: true});
await rm(REMOTE_SCRATCH, {recursive: true, force: true});
await mkdir(WORK, {recursive: true});
const counter = await countSshBytes();
const sshBytes = () => counter.bytes();
await intoGroup('vmbbench-host', await sshdPid());
await intoGroup('vmbbench-appliance', String(process.pid));
const vms: TestVm[] = [];
const rows: Figures[] = [];
try {
  const twins = {tunnel: await createBenchVm(`worker-bench-tunnel-${process.pid}`, image.path, image.sizeBytes), worker: await createBenchVm(`worker-bench-worker-${process.pid}`, image.path, image.sizeBytes)};
  vms.push(twins.tunnel, twins.worker);
  // The guest writes: the same bytes on both twins.
  const sources: string[] = [];
  const raw = await open(image.path, 'r');
  for (const [i, w] of WRITES.entries()) {
    const src = join(WORK, `write-${i}.bin`);
    let data: Buffer = randomBytes(w.length);
    if (!w.random) {
      data = Buffer.alloc(w.length);
      await raw.read(data, 0, w.length, 300 * MiB + i * 40 * MiB); // file data from the disk itself: compressible, partly known
    }
    await writeFile(src, data);
    sources.push(src);
  }
  await raw.close();

  for (const mode of ['tunnel', 'worker'] as const) {
    const vm = twins[mode];
    if (mode === 'worker') {
      // The one-time copy of the worker to the host (per appliance version), measured apart.
      const platform = platformFor();
      const host = platform.hosts[0]!.workerAccess()!;
      const [b0, t0] = [await sshBytes(), performance.now()];
      await deployWorker(host);
      await platform.close();
      console.log(`copying the worker to the host (once per version): ${mib((await sshBytes()) - b0)} over SSH in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const repo = await createRepository(join(WORK, `repo-${mode}`));
    const backup = (platform: LibvirtPlatform) => backupVm({platform, repository: repo, vmId: vm.uuid, vmName: vm.name, workers: mode === 'worker' ? 'auto' : 'off'});
    rows.push(await measure(`${mode}: full`, backup));
    for (const [i, w] of WRITES.entries()) await guestWrite(vm, 'vda', `write -s ${sources[i]} ${w.offset} ${w.length}`);
    let last: VmBackupResult | undefined;
    rows.push(await measure(`${mode}: incremental`, async (p) => (last = await backup(p))));
    // The newest point restores to what the disk holds.
    const platform = platformFor();
    const restored = await restoreVm({platform, repository: repo, restorePointId: last!.restorePoint!.id, target: {mode: 'disks-to-files', directory: join(WORK, `restore-${mode}`), format: 'raw'}});
    await platform.close();
    const cmp = await imagesIdentical(restored.files![0]!, vm.disks[0]!.mirror);
    console.log(`${mode}: incremental restored ${cmp.same ? 'bit-identical' : `DIFFERENT: ${cmp.output}`}`);
    await rm(join(WORK, `restore-${mode}`), {recursive: true, force: true});
  }
} finally {
  await counter.stop();
  for (const vm of vms) await destroyTestVm(vm);
  // Back to the root group; the groups go once empty (the sshd's sessions have ended by then).
  await writeFile(join(CPUACCT, 'cgroup.procs'), await sshdPid()).catch(() => undefined);
  await writeFile(join(CPUACCT, 'cgroup.procs'), String(process.pid)).catch(() => undefined);
}

console.log('\nbackup                 read        stored new   crossed SSH  (worker stream)  vs stored  wall      appliance CPU (node)   host CPU');
for (const f of rows) {
  console.log(
    `${f.label.padEnd(22)} ${mib(f.readBytes).padStart(11)} ${mib(f.storedBytes).padStart(11)} ${mib(f.sshBytes).padStart(12)} ${(f.workerBytes ? mib(f.workerBytes) : '-').padStart(14)}  ${`${((f.sshBytes / Math.max(1, f.storedBytes)) * 100).toFixed(0)} %`.padStart(8)}  ${(f.wallMs / 1000).toFixed(1).padStart(6)} s  ${(f.applianceCpuMs / 1000).toFixed(1).padStart(9)} s (${(f.nodeCpuMs / 1000).toFixed(1)} s)  ${(f.hostCpuMs / 1000).toFixed(1).padStart(6)} s${f.copied ? '  (includes copying the worker)' : ''}`,
  );
}
