/**
 * vmbackup vs Debian's virtnbdbackup on the same libvirt VM in the same run (prints figures;
 * not a test).
 *   node --import tsx bench/libvirt.ts [runs=2] [--tsx]
 *
 * The VM runs no OS; its one disk (vda, qcow2, 3 GiB) holds an ext4 filesystem with ~800 MiB of
 * real files from /usr (bench/lib/ext4-image.ts, cached in /var/tmp/vmbackup-bench).
 *
 * Twin VMs: virtnbdbackup 1.9.15 (Debian 12) refuses to back up a VM that has any checkpoint it
 * did not create ("Foreign checkpoint found", checkForeign), and vmbackup's checkpoints are
 * foreign to it. So each tool gets its own VM, both made in the same run from the same image and
 * given the same writes (same random data at the same offsets): the same disk content, running
 * side by side on the same host. Per run, on fresh twins:
 *   0. source alone: our VM's backup opened by the adapter, its data read 4 × 8 MiB in flight
 *      into a discarded buffer, then aborted (splits source from repository cost); then the
 *      same done by nbdcopy (defaults, to null:) on a second backup of the VM: the read limit;
 *   1. full backup: vmbackup (engine in a child process, fresh repository, default chunk size)
 *      and `virtnbdbackup -l full -z`; which tool goes first alternates between runs;
 *   2. repository size (du) vs virtnbdbackup's output size (du), both after the full;
 *   3. 64 MiB of guest writes: 16 MiB of random data at 4 offsets (HMP qemu-io, mirrored);
 *   4. incremental: vmbackup vs `virtnbdbackup -l inc -z`; vmbackup's bytes read from NBD vs the
 *      dirty bytes rounded out to whole repository chunks; the platform's commands by start time;
 *   5. restore of the newest point to qcow2: vmbackup (engine, disks-to-files) vs
 *      `virtnbdrestore -i <dir> -o <outdir>`; both results checked with `qemu-img compare`
 *      against the raw mirror (what the disk holds);
 *   6. peak RSS of the vmbackup backup child processes (VmHWM) and virtnbdbackup's (GNU time).
 * Wall times are spawn-to-exit of each process (Node start-up included for vmbackup, compiled
 * JavaScript unless --tsx; Python start-up for virtnbdbackup); the engine's own time and both
 * sides' CPU seconds are printed beside them. The images are read once before the first backup
 * so both tools start from the page cache.
 */
import {mkdir, readdir, rm, writeFile} from 'node:fs/promises';
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import {execa} from 'execa';
import {createRepository} from '../src/repository/index.js';
import {destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, type TestVm} from '../test/lib/libvirt.js';
import {childRuntime, prepareChildRuntime, runChild, type ChildPlatform, type ChildRun} from './lib/child-protocol.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {createBenchVm} from './lib/libvirt-vm.js';
import {MiB, apparentSize, diskUsage, dirtyRoundedToChunks, machineLine, mib, secs, timedRusage, type Rusage} from './lib/measure.js';
import {renderTable, type Row} from './lib/report.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
// --tsx: run the vmbackup children through tsx instead of compiled JavaScript (see child-protocol.ts).
const runtimeKind = args.includes('--tsx') ? 'tsx' : 'compiled';
const CACHE = '/var/tmp/vmbackup-bench';
const WORK = join(CACHE, 'libvirt-work');
const SCRATCH = '/var/tmp/vmbackup-bench/scratch';
const WRITES = [256, 1024, 1792, 2560].map((m) => ({offset: m * MiB, length: 16 * MiB}));

interface RunFigures {
  order: string;
  sourceOnly: ChildRun;
  ourFull: ChildRun;
  theirFull: Rusage;
  ourInc: ChildRun;
  theirInc: Rusage;
  ourRestore: ChildRun;
  theirRestore: Rusage;
  repoBytes: number;
  repoApparent: number;
  theirBytes: number;
  theirApparent: number;
  dirtyChunkBytes: number;
  chunkSize: number;
  ourSame: boolean;
  theirSame: boolean;
  compareNote: string;
}

function virtnbd(args: string[]): Promise<Rusage> {
  return timedRusage('virtnbdbackup', ['-n', ...args]);
}

/** Runs both sides one after the other, ours first or theirs first; results in (ours, theirs) order. */
async function inOrder<A, B>(ourFirst: boolean, ours: () => Promise<A>, theirs: () => Promise<B>): Promise<[A, B]> {
  if (ourFirst) {
    const a = await ours();
    return [a, await theirs()];
  }
  const b = await theirs();
  return [await ours(), b];
}

async function oneRun(run: number, image: string, sizeBytes: number): Promise<RunFigures> {
  const dir = join(WORK, `run-${run}`);
  await rm(dir, {recursive: true, force: true});
  await mkdir(dir, {recursive: true});
  const repoPath = join(dir, 'repo');
  const theirs = join(dir, 'virtnbdbackup');
  const repo = await createRepository(repoPath);
  const platform: ChildPlatform = {kind: 'libvirt', scratchDir: SCRATCH};
  let vm: TestVm | undefined;
  let twin: TestVm | undefined;
  try {
    vm = await createBenchVm(`vmbackup-bench-${process.pid}-${run}`, image, sizeBytes);
    twin = await createBenchVm(`virtnbdbackup-bench-${process.pid}-${run}`, image, sizeBytes);
    // Page cache: both tools read an image that is already in memory.
    for (const v of [vm, twin]) await execa('cat', [v.disks[0]!.path], {stdout: 'ignore'});
    // And the 2 × 3 GiB of images just written are on disk: their writeback would otherwise run
    // during whatever comes first (measured: the first read pass at a third of its rate).
    await execa('sync');

    // The source alone (NBD reads, nothing stored), as the engine reads: 4 in flight, 8 MiB each.
    // And nbdcopy on the same kind of export in the same child: the read limit (issue #16).
    const sourceOnly = await runChild({op: 'read-only', platform, vmId: vm.uuid, parallel: 4, readSize: 8 * MiB, nbdcopy: true});
    const ourFirst = run % 2 === 1;
    const ours = () => runChild({op: 'backup', platform, repository: repoPath, vmId: vm!.uuid, vmName: vm!.name});
    const [ourFull, theirFull] = await inOrder(ourFirst, ours, () => virtnbd(['-d', twin!.name, '-l', 'full', '-z', '-o', theirs]));
    const repoBytes = await diskUsage(repoPath);
    const repoApparent = await apparentSize(repoPath);
    const theirBytes = await diskUsage(theirs);
    const theirApparent = await apparentSize(theirs);

    for (const [i, w] of WRITES.entries()) {
      const src = join(dir, `random-${i}.bin`);
      await writeFile(src, randomBytes(w.length));
      for (const v of [vm, twin]) await guestWrite(v, 'vda', `write -s ${src} ${w.offset} ${w.length}`);
    }

    const [ourInc, theirInc] = await inOrder(ourFirst, ours, () => virtnbd(['-d', twin!.name, '-l', 'inc', '-z', '-o', theirs]));
    if (!ourInc.incremental) throw new Error('the second vmbackup backup was not incremental');

    // Restores of the newest point; the VM stays as it was after the incremental (no more writes).
    const ourOut = join(dir, 'restore-vmbackup');
    const theirOut = join(dir, 'restore-virtnbd');
    const ourRestore = await runChild({op: 'restore', platform, repository: repoPath, restorePointId: ourInc.restorePointId!, directory: ourOut, format: 'qcow2'});
    await mkdir(theirOut, {recursive: true});
    const theirRestore = await timedRusage('virtnbdrestore', ['-n', '-i', theirs, '-o', theirOut, '-L', join(dir, 'virtnbdrestore.log')]);

    const ourFile = ourRestore.files?.[0];
    const theirFile = (await readdir(theirOut)).find((f) => f.startsWith('vda'));
    const ourCmp = ourFile ? await imagesIdentical(ourFile, vm.disks[0]!.mirror, 'qcow2', 'raw') : {same: false, output: 'no file restored'};
    const theirCmp = theirFile ? await imagesIdentical(join(theirOut, theirFile), twin.disks[0]!.mirror, 'qcow2', 'raw') : {same: false, output: `no vda* file in ${theirOut}`};
    return {
      order: ourFirst ? 'vmbackup first' : 'virtnbdbackup first',
      sourceOnly,
      ourFull, theirFull, ourInc, theirInc, ourRestore, theirRestore,
      repoBytes, repoApparent, theirBytes, theirApparent,
      dirtyChunkBytes: dirtyRoundedToChunks(WRITES, repo.chunkSize),
      chunkSize: repo.chunkSize,
      ourSame: ourCmp.same,
      theirSame: theirCmp.same,
      compareNote: [ourCmp.same ? '' : `vmbackup: ${ourCmp.output.trim()}`, theirCmp.same ? '' : `virtnbdrestore: ${theirCmp.output.trim()}`].filter(Boolean).join('; '),
    };
  } finally {
    await destroyTestVm(vm);
    await destroyTestVm(twin);
    await rm(dir, {recursive: true, force: true});
  }
}

/** "virsh -q -c qemu:///system backup-begin …" → "virsh backup-begin": enough to see where time goes. */
function shortCommand(line: string): string {
  const words = line.replace(/^\$ /, '').replace(/^virsh -q -c \S+ /, 'virsh ').split(' ');
  return words.slice(0, 2).join(' ').slice(0, 32);
}

function table(run: number, f: RunFigures): string {
  const full = f.ourFull.disks!.vda!;
  const inc = f.ourInc.disks!.vda!;
  const rssMiB = Math.max(f.ourFull.peakRssKiB, f.ourInc.peakRssKiB) / 1024;
  const cpu = (ms: number | undefined) => `${((ms ?? 0) / 1000).toFixed(2)} s`;
  const wall = (figure: string, ours: ChildRun, theirs: Rusage, limit: number, label: string): Row[] => [
    {figure: `${figure}, process wall`, ours: secs(ours.processMs), theirs: secs(theirs.ms), ratio: ours.processMs / theirs.ms, target: label, met: ours.processMs <= theirs.ms * limit},
    {figure: `${figure}, engine only`, ours: secs(ours.opMs), theirs: '', ratio: ours.opMs / theirs.ms, target: `(${label})`, met: ours.opMs <= theirs.ms * limit},
    {figure: `${figure}, CPU user+sys`, ours: cpu(ours.cpuMs), theirs: cpu(theirs.cpuMs), ratio: (ours.cpuMs ?? 0) / theirs.cpuMs, target: '', met: undefined},
  ];
  const so = f.sourceOnly.readOnly!;
  const nc = f.sourceOnly.nbdcopy!;
  const soRate = so.bytes / MiB / (so.readMs / 1000);
  // nbdcopy reads the same data extents (it skips zeros and holes by block status).
  const ncRate = so.bytes / MiB / (nc.ms / 1000);
  const rows: Row[] = [
    {figure: 'NBD reads alone: rate (peer: nbdcopy)', ours: `${soRate.toFixed(0)} MiB/s`, theirs: `${ncRate.toFixed(0)} MiB/s`, ratio: soRate / ncRate, target: '≥ 0.8', met: soRate >= 0.8 * ncRate},
    ...wall('full backup', f.ourFull, f.theirFull, 0.4, '≤ 0.40'),
    {figure: 'full backup / nbdcopy read limit', ours: secs(f.ourFull.processMs), theirs: `nbdcopy ${secs(nc.ms)}`, ratio: f.ourFull.processMs / nc.ms, target: '≤ 3 (goal 2)', met: f.ourFull.processMs <= 3 * nc.ms},
    ...wall('incremental', f.ourInc, f.theirInc, 1 / 2, '≤ 0.5'),
    ...wall('restore to qcow2', f.ourRestore, f.theirRestore, 0.4, '≤ 0.4'),
    {figure: 'restored image = disk (qemu-img compare)', ours: f.ourSame ? 'identical' : 'DIFFERS', theirs: f.theirSame ? 'identical' : 'DIFFERS', target: 'identical', met: f.ourSame},
    {figure: 'size after full (du)', ours: mib(f.repoBytes), theirs: mib(f.theirBytes), ratio: f.repoBytes / f.theirBytes, target: '≤ 1', met: f.repoBytes <= f.theirBytes},
    {figure: 'size after full (apparent)', ours: mib(f.repoApparent), theirs: mib(f.theirApparent), ratio: f.repoApparent / f.theirApparent, target: '', met: undefined},
    {figure: 'incremental: bytes read from NBD', ours: mib(inc.readBytes), theirs: `dirty ${mib(f.dirtyChunkBytes)}`, ratio: inc.readBytes / f.dirtyChunkBytes, target: `≤ dirty in ${f.chunkSize / MiB} MiB chunks`, met: inc.readBytes <= f.dirtyChunkBytes},
    {figure: 'peak RSS of the backup process', ours: `${rssMiB.toFixed(0)} MiB`, theirs: `${(Math.max(f.theirFull.maxRssKiB, f.theirInc.maxRssKiB) / 1024).toFixed(0)} MiB`, ratio: rssMiB / 300, target: '≤ 300 MiB', met: rssMiB <= 300},
  ];
  const detail = [
    `  source alone (NBD reads into a discarded buffer, 4 × 8 MiB in flight): ${mib(so.bytes)} in ${secs(so.readMs)} = ${(so.bytes / MiB / (so.readMs / 1000)).toFixed(0)} MiB/s; child ${secs(f.sourceOnly.processMs)}, CPU of the reads ${cpu(f.sourceOnly.opCpuMs)}, peak RSS ${(f.sourceOnly.peakRssKiB / 1024).toFixed(0)} MiB`,
    `  nbdcopy of the same kind of export to null: (its defaults): ${secs(nc.ms)} wall (process), CPU ${cpu(nc.cpuMs)}, peak RSS ${(nc.maxRssKiB / 1024).toFixed(0)} MiB`,
    `  full: read ${mib(full.readBytes)}, zero ${mib(full.zeroBytes)}, stored ${mib(full.storedBytes)} (plain ${mib(full.newPlainBytes)}), chunks new ${full.newChunks} / reused ${full.reusedChunks}; engine ${secs(full.durationMs)}: source ${secs(full.sourceMs)}, repository ${secs(full.repositoryMs)} (summed over parallel reads); child set-up ${secs(f.ourFull.setupMs ?? 0)}, RSS ${(f.ourFull.peakRssKiB / 1024).toFixed(0)} MiB`,
    `  inc:  read ${mib(inc.readBytes)}, zero ${mib(inc.zeroBytes)}, unchanged ${mib(inc.unchangedBytes)}, stored ${mib(inc.storedBytes)}; engine ${secs(inc.durationMs)}: source ${secs(inc.sourceMs)}, repository ${secs(inc.repositoryMs)}; RSS ${(f.ourInc.peakRssKiB / 1024).toFixed(0)} MiB`,
    `  restore: written ${mib(f.ourRestore.restoreDisks?.vda?.writtenBytes ?? 0)}, zero ${mib(f.ourRestore.restoreDisks?.vda?.zeroBytes ?? 0)}; RSS ${(f.ourRestore.peakRssKiB / 1024).toFixed(0)} MiB`,
  ];
  const mem = (r: ChildRun) => r.memoryPeaks ? `heap ${mib(r.memoryPeaks.heapUsed, 0)}, external ${mib(r.memoryPeaks.external, 0)}, array buffers ${mib(r.memoryPeaks.arrayBuffers, 0)}` : '';
  detail.push(`  memory peaks (sampled): full ${mem(f.ourFull)}; inc ${mem(f.ourInc)}; restore ${mem(f.ourRestore)}`);
  if (f.compareNote) detail.push(`  compare: ${f.compareNote}`);
  // Where the incremental's fixed time goes: each command the platform ran, by start time.
  const cmds = f.ourInc.commands ?? [];
  detail.push(`  incremental: ${cmds.length} commands; starts (ms after backupVm began): ${cmds.map((c) => `${c.atMs.toFixed(0)} ${shortCommand(c.line)}`).join(' | ')}`);
  detail.push(`  CPU of the operation alone (without Node/tsx start-up): full ${cpu(f.ourFull.opCpuMs)}, inc ${cpu(f.ourInc.opCpuMs)}, restore ${cpu(f.ourRestore.opCpuMs)}`);
  return `${renderTable(`run ${run} (${f.order})`, rows, ['vmbackup', 'virtnbdbackup'])}\n${detail.join('\n')}`;
}

async function main(): Promise<void> {
  await ensureLibvirt();
  await prepareChildRuntime(runtimeKind);
  const version = (await execa('virtnbdbackup', ['--version'])).stdout.trim();
  const image = await ensureExt4Image(CACHE, {sizeMiB: 3072, dataMiB: 800});
  console.log(`${new Date().toISOString()}  ${machineLine()}`);
  console.log(`vmbackup children: ${childRuntime() === 'tsx' ? 'TypeScript through tsx' : 'JavaScript compiled by tsc'}`);
  console.log(`virtnbdbackup ${version}; disk vda qcow2 ${mib(image.sizeBytes, 0)} with ext4 holding ${image.dataMiB} MiB of ${image.picked.map((p) => p.dir).join(', ')}`);
  for (let run = 1; run <= runs; run++) {
    const f = await oneRun(run, image.path, image.sizeBytes);
    console.log(`\n${table(run, f)}\n  load after run: ${machineLine().split('load ')[1]}`);
  }
}

await main();
