/**
 * Child process of the platform benchmarks: runs ONE engine operation (a VM backup or a restore
 * to image files) so that its peak RSS (process.resourceUsage().maxRSS) is the operation's own
 * (VmHWM, see vmHwmKiB), not the benchmark driver's, the simulator's or another tool's.
 *
 * Contract: the job arrives as one JSON document on stdin (never argv: the oVirt password is in
 * it, and argv is visible in ps); the result leaves as one JSON line on stdout prefixed with
 * RESULT_MARK. Nothing else is printed on stdout. Exit code 0 even when the operation failed:
 * the driver reads `error` and decides.
 */
import {readFile} from 'node:fs/promises';
import {execa} from 'execa';
import {backupVm} from '../../src/engine/backup-vm.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import type {PlatformAdapter} from '../../src/platforms/types.js';
import {openRepository} from '../../src/repository/index.js';
import {RESULT_MARK, type ChildJob, type ChildResult} from './child-protocol.js';
import {timedRusage} from './measure.js';

/**
 * Peak RSS of this process image: VmHWM belongs to the address space made at exec, while
 * getrusage's ru_maxrss survives exec on Linux and so starts at the forking parent's RSS (the
 * oVirt driver holds 1 GiB of simulated disk: every child would "peak" at over 1 GiB).
 */
async function vmHwmKiB(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of process.stdin) parts.push(p as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** Commands the libvirt platform starts, with when (ms on performance.now()): where fixed costs go. */
const commands: {at: number; line: string}[] = [];

/** Only the job's platform is loaded, as the CLI does (platform-args.ts): the other one costs ~50-110 ms of start-up. */
async function makePlatform(job: ChildJob): Promise<PlatformAdapter & {close(): Promise<void>}> {
  if (job.platform.kind === 'libvirt') {
    const {LibvirtPlatform} = await import('../../src/platforms/libvirt/index.js');
    return new LibvirtPlatform({
      hosts: [{name: 'local', connection: {kind: 'local'}}],
      scratchDir: job.platform.scratchDir,
      commandLog: (line) => commands.push({at: performance.now(), line}),
    });
  }
  const {url, user, password, caPem} = job.platform;
  const {OvirtPlatform} = await import('../../src/platforms/ovirt/platform.js');
  return new OvirtPlatform({url, user, password, caPem, pollIntervalMs: 20});
}

/**
 * The source side of a full backup alone: data extents read `parallel` at a time in pieces of
 * `readSize`, into reused buffers, nothing stored; the platform backup is aborted afterwards
 * (its checkpoint deleted), so the VM is left as it was.
 */
async function readOnly(platform: PlatformAdapter, vmId: string, parallel: number, readSize: number): Promise<{bytes: number; readMs: number}> {
  const backup = await platform.openBackup(vmId, {log: () => {}});
  try {
    let bytes = 0;
    const t0 = performance.now();
    for (const src of backup.sources) {
      const size = Math.min(readSize, src.maxReadSize);
      const ranges: [number, number][] = [];
      for await (const e of src.extents()) {
        if (e.kind !== 'data') continue;
        for (let o = e.offset; o < e.offset + e.length; o += size) ranges.push([o, Math.min(size, e.offset + e.length - o)]);
      }
      let next = 0;
      const lanes = Math.max(1, Math.min(parallel, src.maxParallelReads));
      await Promise.all(Array.from({length: lanes}, async () => {
        const buf = Buffer.allocUnsafe(size);
        while (next < ranges.length) {
          const [o, l] = ranges[next++]!;
          const got = await src.read(o, l, buf.subarray(0, l));
          bytes += got.length;
        }
      }));
    }
    return {bytes, readMs: performance.now() - t0};
  } finally {
    await backup.abort();
  }
}

/**
 * The read limit of a libvirt pull backup: the backup opened by the adapter as for a full, each
 * disk's export copied by nbdcopy (its defaults: several connections, block status to skip zeros
 * and holes) to null:, then the backup aborted. The export name is the disk's target (libvirt's
 * default) and the socket is the one in the running job's backup XML.
 */
async function nbdcopyRead(platform: PlatformAdapter, vmId: string): Promise<NonNullable<ChildResult['nbdcopy']>> {
  const backup = await platform.openBackup(vmId, {log: () => {}});
  try {
    const xml = (await execa('virsh', ['-q', '-c', 'qemu:///system', 'backup-dumpxml', vmId])).stdout;
    const {backupJobSocket} = await import('../../src/platforms/libvirt/cleanup.js');
    const socket = backupJobSocket(xml);
    if (!socket) throw new Error(`no unix socket in the backup job's XML:\n${xml}`);
    const total = {ms: 0, cpuMs: 0, maxRssKiB: 0, exports: 0};
    for (const src of backup.sources) {
      const r = await timedRusage('nbdcopy', [`nbd+unix:///${src.key}?socket=${socket}`, 'null:']);
      total.ms += r.ms;
      total.cpuMs += r.cpuMs;
      total.maxRssKiB = Math.max(total.maxRssKiB, r.maxRssKiB);
      total.exports++;
    }
    return total;
  } finally {
    await backup.abort();
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(await readStdin()) as ChildJob;
  const startedModules = performance.now();
  const platform = await makePlatform(job);
  const repository = job.op === 'read-only' ? undefined : await openRepository(job.repository);
  const out: ChildResult = {opMs: 0, maxRssKiB: 0, peakRssKiB: 0};
  // Where the memory is, sampled every 100 ms: the parts of RSS that Node can name.
  const peak = {heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0};
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]);
  }, 100);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  try {
    if (job.op === 'read-only') {
      out.readOnly = await readOnly(platform, job.vmId, job.parallel, job.readSize);
      out.opMs = performance.now() - t0;
      if (job.nbdcopy) out.nbdcopy = await nbdcopyRead(platform, job.vmId);
    } else if (job.op === 'backup') {
      const r = await backupVm({platform, repository: repository!, vmId: job.vmId, vmName: job.vmName});
      out.opMs = performance.now() - t0;
      out.incremental = r.incremental;
      out.disks = r.disks;
      out.restorePointId = r.restorePoint?.id;
      if (r.error !== undefined) out.error = r.error instanceof Error ? r.error.message : String(r.error);
    } else {
      const r = await restoreVm({
        platform,
        repository: repository!,
        restorePointId: job.restorePointId,
        target: {mode: 'disks-to-files', directory: job.directory, format: job.format},
      });
      out.opMs = performance.now() - t0;
      out.files = r.files;
      out.restoreDisks = r.disks;
    }
  } catch (err) {
    out.opMs = performance.now() - t0;
    out.error = err instanceof Error ? err.message : String(err);
  } finally {
    clearInterval(sampler);
    await platform.close().catch(() => undefined);
  }
  out.memoryPeaks = peak;
  out.commands = commands.filter((c) => c.at >= t0).map((c) => ({atMs: c.at - t0, line: c.line}));
  const opCpu = process.cpuUsage(cpu0);
  const allCpu = process.cpuUsage();
  out.opCpuMs = (opCpu.user + opCpu.system) / 1000;
  out.cpuMs = (allCpu.user + allCpu.system) / 1000;
  out.setupMs = t0 - startedModules;
  out.maxRssKiB = process.resourceUsage().maxRSS;
  out.peakRssKiB = await vmHwmKiB();
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(out)}\n`);
}

await main();
