/**
 * oVirt: the engine's full backup WITH repository writes vs curl downloading the same data from
 * the same kind of ticket, through the simulator (prints figures; not a test).
 *   node --import tsx bench/ovirt-engine.ts [runs=2] [--tsx]
 *
 * The simulator (engine REST + imageio over TLS on loopback) runs in this process and holds a VM
 * with a 4 GiB cow disk carrying 1 GiB of data in 4 MiB runs every 16 MiB; every 64 KiB block
 * is distinct (no dedup to hide behind), half the runs random (incompressible), half text-like
 * (LZ4 compresses them well). Per run:
 *   1. curl: a backup + image transfer opened the way the adapter does (OvirtPlatform), the data
 *      extents of /extents?context=zero, and curl downloading each extent range with --cacert to
 *      /dev/null, split over as many curl processes as the engine reads in parallel (keep-alive
 *      within each); one warm-up pass, then the measured pass;
 *   2. vmbackup: backupVm into a fresh repository in a child process (its own peak RSS);
 *   3. 64 MiB of guest writes (16 MiB of random data at 4 offsets), then an incremental backup
 *      in a child process: bytes read vs the dirty bytes rounded out to whole chunks.
 * Our rate is the bytes read over the disk task's duration (read + hash + compress + write +
 * the restore point's fsyncs), which is what curl's wall time compares with; the rate over the
 * whole backupVm call (engine phases, polling included) is printed beside it.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {OvirtPlatform} from '../src/platforms/ovirt/platform.js';
import {createRepository} from '../src/repository/index.js';
import {BLOCK} from '../test/ovirt-sim/image.js';
import {startSimulator, type Simulator} from '../test/ovirt-sim/index.js';
import {childRuntime, prepareChildRuntime, runChild, type ChildPlatform, type ChildRun} from './lib/child-protocol.js';
import {MiB, diskUsage, dirtyRoundedToChunks, machineLine, mib, secs, timedRusage} from './lib/measure.js';
import {renderTable, type Row} from './lib/report.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
// --tsx: run the vmbackup children through tsx instead of compiled JavaScript (see child-protocol.ts).
const runtimeKind = args.includes('--tsx') ? 'tsx' : 'compiled';
const DISK = 4 * 1024 * MiB;
const DATA = 1024 * MiB;
const RUN = 4 * MiB;
const WORK = '/var/tmp/vmbackup-bench/ovirt-work';
const WRITES = [100, 1100, 2100, 3100].map((m) => ({offset: m * MiB, length: 16 * MiB}));

/** A text-like 64 KiB block unique to `idx`: compresses well, never dedups with another. */
function textBlock(idx: number): Buffer {
  const line = `block ${idx.toString().padStart(8, '0')}: the quick brown fox jumps over the lazy dog; /usr/share/doc/vmbackup\n`;
  return Buffer.from(line.repeat(Math.ceil(BLOCK / line.length)).slice(0, BLOCK));
}

function fillDisk(sim: Simulator): number {
  const [disk] = sim.disksOf('bench');
  const every = (DISK / DATA) * RUN;
  let n = 0;
  for (let at = 0, run = 0; at < DISK && n * BLOCK < DATA; at += every, run++) {
    for (let b = at / BLOCK; b < (at + RUN) / BLOCK; b++, n++) disk!.image.setBlock(b, run % 2 === 0 ? randomBytes(BLOCK) : textBlock(b));
  }
  return n * BLOCK;
}

/** The curl side: ranges from the adapter's own extents, downloaded from the live ticket. */
async function curlPass(sim: Simulator, dir: string, parallel: number): Promise<{ms: number; cpuMs: number; bytes: number; ranges: number}> {
  const platform = new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 20});
  const backup = await platform.openBackup(sim.vm('bench').id, {log: () => {}});
  try {
    const src = backup.sources[0]!;
    const ranges: [number, number][] = [];
    for await (const e of src.extents()) if (e.kind === 'data') ranges.push([e.offset, e.length]);
    const t = [...sim.state.transfers.values()].find((x) => x.phase === 'transferring');
    if (!t?.ticket) throw new Error('no transferring image transfer in the simulator');
    const url = `${sim.imageio.daemon}/images/${t.ticket.uuid}`;
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, sim.caPem);
    const configs: string[] = [];
    for (let w = 0; w < parallel; w++) {
      const mine = ranges.filter((_, i) => i % parallel === w);
      const cfg = join(dir, `curl-${w}.cfg`);
      await writeFile(cfg, mine.map(([o, l]) => `url = "${url}"\nrange = "${o}-${o + l - 1}"\noutput = "/dev/null"\ncacert = "${ca}"\n`).join('next\n'));
      configs.push(cfg);
    }
    const once = async () => {
      const t0 = performance.now();
      const each = await Promise.all(configs.map((cfg) => timedRusage('curl', ['-sS', '--fail', '-K', cfg])));
      return {ms: performance.now() - t0, cpuMs: each.reduce((s, r) => s + r.cpuMs, 0)};
    };
    await once(); // warm-up: page faults of the simulator's buffers, TLS session set-up
    const {ms, cpuMs} = await once();
    return {ms, cpuMs, bytes: ranges.reduce((s, [, l]) => s + l, 0), ranges: ranges.length};
  } finally {
    await backup.complete();
    await platform.close();
  }
}

async function main(): Promise<void> {
  await prepareChildRuntime(runtimeKind);
  console.log(`${new Date().toISOString()}  ${machineLine()}`);
  console.log(`vmbackup children: ${childRuntime() === 'tsx' ? 'TypeScript through tsx' : 'JavaScript compiled by tsc'}`);
  console.log(`simulator: disk ${mib(DISK, 0)} (cow), data ${mib(DATA, 0)} in 4 MiB runs every 16 MiB, half random, half text-like; distinct 64 KiB blocks; a fresh simulator per run`);
  for (let run = 1; run <= runs; run++) {
    // A fresh simulator per run: every run starts from the same 1 GiB, not from the last run's writes.
    const sim = await startSimulator({delayMs: 10, vms: [{name: 'bench', status: 'up', disks: [{alias: 'bench_os', size: DISK, format: 'cow'}]}]});
    try {
      await oneRun(sim, run);
    } finally {
      await sim.stop();
    }
  }
}

async function oneRun(sim: Simulator, run: number): Promise<void> {
  fillDisk(sim);
  const diskId = sim.disksOf('bench')[0]!.id;
  const platform: ChildPlatform = {kind: 'ovirt', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem};
  const dir = join(WORK, `run-${run}`);
  await rm(dir, {recursive: true, force: true});
  await mkdir(dir, {recursive: true});
  try {
    const repoPath = join(dir, 'repo');
    const repo = await createRepository(repoPath);
    // The engine reads min(maxParallelReads, 4) at once (disk-task.ts); curl gets as many processes.
    const parallel = 4;
    const curl = await curlPass(sim, dir, parallel);
    const sourceOnly = await runChild({op: 'read-only', platform, vmId: sim.vm('bench').id, parallel, readSize: 8 * MiB});
    const full: ChildRun = await runChild({op: 'backup', platform, repository: repoPath, vmId: sim.vm('bench').id, vmName: 'bench'});
    const repoBytes = await diskUsage(repoPath);
    for (const w of WRITES) sim.guestWrite(diskId, w.offset, randomBytes(w.length));
    const inc: ChildRun = await runChild({op: 'backup', platform, repository: repoPath, vmId: sim.vm('bench').id, vmName: 'bench'});
    if (!inc.incremental) throw new Error('the second backup was not incremental');

    const f = full.disks![diskId]!;
    const i = inc.disks![diskId]!;
    const curlRate = curl.bytes / (curl.ms / 1000);
    const ourRate = f.readBytes / (f.durationMs / 1000);
    const opRate = f.readBytes / (full.opMs / 1000);
    const dirty = dirtyRoundedToChunks(WRITES, repo.chunkSize);
    const rssMiB = Math.max(full.peakRssKiB, inc.peakRssKiB) / 1024;
    const rate = (r: number) => `${(r / MiB).toFixed(0)} MiB/s`;
    const rows: Row[] = [
      {figure: 'full: data rate (disk task)', ours: rate(ourRate), theirs: rate(curlRate), ratio: ourRate / curlRate, target: '≥ 0.70', met: ourRate >= 0.7 * curlRate},
      {figure: 'full: data rate (whole backupVm)', ours: rate(opRate), theirs: '', ratio: opRate / curlRate, target: '', met: undefined},
      {figure: 'full: time (disk task / backupVm)', ours: `${secs(f.durationMs)} / ${secs(full.opMs)}`, theirs: secs(curl.ms), target: '', met: undefined},
      {figure: 'full: CPU user+sys (backupVm / curl)', ours: secs(full.opCpuMs ?? 0), theirs: secs(curl.cpuMs), ratio: (full.opCpuMs ?? 0) / curl.cpuMs, target: '', met: undefined},
      {figure: 'peak RSS of vmbackup backup', ours: `${rssMiB.toFixed(0)} MiB`, theirs: '', ratio: rssMiB / 300, target: '≤ 300 MiB', met: rssMiB <= 300},
      {figure: 'incremental: bytes read', ours: mib(i.readBytes), theirs: `dirty ${mib(dirty)}`, ratio: i.readBytes / dirty, target: `≤ dirty in ${repo.chunkSize / MiB} MiB chunks`, met: i.readBytes <= dirty},
    ];
    console.log(`\n${renderTable(`run ${run}`, rows, ['vmbackup', 'curl'])}`);
    const so = sourceOnly.readOnly!;
    console.log(`  source alone (imageio reads into a discarded buffer, ${parallel} × 8 MiB in flight, child process): ${(so.bytes / MiB / (so.readMs / 1000)).toFixed(0)} MiB/s (${secs(so.readMs)}), CPU ${secs(sourceOnly.opCpuMs ?? 0)}, peak RSS ${(sourceOnly.peakRssKiB / 1024).toFixed(0)} MiB`);
    console.log(`  curl: ${curl.ranges} extent ranges, ${mib(curl.bytes)} over ${parallel} processes`);
    console.log(`  full: read ${mib(f.readBytes)}, zero ${mib(f.zeroBytes)}, stored ${mib(f.storedBytes)} (plain ${mib(f.newPlainBytes)}), repository on disk ${mib(repoBytes)}; source ${secs(f.sourceMs)}, repository ${secs(f.repositoryMs)} (summed over parallel reads); RSS ${(full.peakRssKiB / 1024).toFixed(0)} MiB`);
    console.log(`  inc:  read ${mib(i.readBytes)}, zero ${mib(i.zeroBytes)}, unchanged ${mib(i.unchangedBytes)}, stored ${mib(i.storedBytes)}; ${secs(i.durationMs)} / ${secs(inc.opMs)}; RSS ${(inc.peakRssKiB / 1024).toFixed(0)} MiB`);
    const mem = (r: ChildRun) => r.memoryPeaks ? `heap ${mib(r.memoryPeaks.heapUsed, 0)}, external ${mib(r.memoryPeaks.external, 0)}, array buffers ${mib(r.memoryPeaks.arrayBuffers, 0)}` : '';
    console.log(`  memory peaks (sampled): full ${mem(full)}; inc ${mem(inc)}`);
    console.log(`  load after run: ${machineLine().split('load ')[1]}`);
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

await main();
