/**
 * kill -9 torture of CLI and daemon backups against real libvirt + QEMU (issue #12; figures in
 * docs/reliability.md). Not part of the timed suite.
 *
 *   node --import tsx bench/torture.ts [runs=16] [--seed N]
 *
 * Each run picks a VM (running or shut off), a kind (full or incremental) and a way (the CLI, or a
 * daemon job), writes new data into the VM, starts the backup and kills the process with
 * SIGKILL after a random delay (0 to ~1.5 times a backup's duration, so some runs die while
 * setting up, some while reading, some while committing, some after). Then "the next start": for
 * the CLI the next `vmbackup backup` of the same VM, for the daemon a restarted daemon and the
 * job run again. It prints, per run:
 *   leftovers  after the next start: libvirt backup jobs, qemu-nbd processes on the VM's image,
 *              session directories in the scratch root (must be 0)
 *   lost       committed restore points that existed before the kill and are gone or no longer
 *              verify (must be 0)
 *   next       whether the next backup succeeded
 */
import {execa} from 'execa';
import {mkdir, mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {createRepository, openRepository} from '../src/repository/index.js';
import {startDaemon, waitForSession, type RunningDaemon} from '../test/daemon/helpers.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, offlineWrite, virsh, type TestVm} from '../test/lib/libvirt.js';
import {machineLine} from './lib/measure.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const RUNS = Number(args.find((a) => /^\d+$/.test(a)) ?? 16);
const seedAt = args.indexOf('--seed');
let seed = seedAt >= 0 ? Number(args[seedAt + 1]) : 20261206;
const rand = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  run: number;
  way: 'cli' | 'daemon';
  vm: 'running' | 'shut off';
  kind: 'full' | 'incremental';
  delayMs: number;
  leftovers: number;
  lost: number;
  next: boolean;
}

async function main(): Promise<void> {
  await ensureLibvirt();
  const dir = await mkdtemp(join(tmpdir(), 'vmb-torture-'));
  const scratch = `/var/tmp/vmbackup-torture-${process.pid}`;
  await mkdir(scratch, {recursive: true, mode: 0o700});
  const repoPath = join(dir, 'repo');
  await createRepository(repoPath);
  const running = await createTestVm(`torture on ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 256}], {start: true});
  const off = await createTestVm(`torture off ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 256}]);
  const cli = (argv: string[]) =>
    execa(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...argv], {cwd: ROOT, reject: false, env: {FORCE_COLOR: '0', VMBACKUP_HOST_SCRATCH: scratch, MIMALLOC_PURGE_DELAY: '3'}});
  const state = join(dir, 'state');
  const socket = join(dir, 'api.sock');
  let daemon: RunningDaemon | undefined;
  const rows: Row[] = [];
  try {
    daemon = await startDaemon(state, socket);
    await daemon.client.setSettings({hostScratchDir: scratch});
    await daemon.client.create('repositories', {id: 'r', name: 'R', path: repoPath});
    await daemon.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    for (const vm of [running, off]) {
      await daemon.client.create('jobs', {id: `j-${vm === running ? 'on' : 'off'}`, name: vm.name, source: {connection: 'kvm', vms: [{id: vm.uuid, name: vm.name}]}, repository: 'r', guestConsistency: false, retries: {count: 0}, retention: {restorePoints: 1000}});
    }
    // A first backup of each (a base for incrementals), and how long one takes.
    let typicalMs = 0;
    for (const vm of [running, off]) {
      await write(vm === running, vm, 0);
      const t0 = Date.now();
      const r = await cli(['backup', '--host', 'local', '--vm', vm.name, '--repo', repoPath]);
      if (r.exitCode !== 0) throw new Error(`first backup failed: ${r.stderr}`);
      typicalMs = Math.max(typicalMs, Date.now() - t0);
    }
    await daemon.stop();
    daemon = undefined;

    for (let run = 1; run <= RUNS; run++) {
      const way: Row['way'] = rand() < 0.5 ? 'cli' : 'daemon';
      const isRunning = rand() < 0.5;
      const vm = isRunning ? running : off;
      const kind: Row['kind'] = rand() < 0.3 ? 'full' : 'incremental';
      const delayMs = Math.round(rand() * typicalMs * 1.5);
      await write(isRunning, vm, run);
      const repo = await openRepository(repoPath);
      const before = (await repo.listRestorePoints()).map((p) => p.id);
      let next = false;
      if (way === 'cli') {
        const child = cli(['backup', '--host', 'local', '--vm', vm.name, '--repo', repoPath, ...(kind === 'full' ? ['--full'] : [])]);
        await sleep(delayMs);
        child.kill('SIGKILL');
        await child;
        next = (await cli(['backup', '--host', 'local', '--vm', vm.name, '--repo', repoPath])).exitCode === 0;
      } else {
        daemon = await startDaemon(state, socket);
        const job = `j-${isRunning ? 'on' : 'off'}`;
        // An active full on every weekday for a full run, none for an incremental one.
        const j = await daemon.client.get<Record<string, unknown>>('jobs', job);
        await daemon.client.update('jobs', job, {...j, activeFullDays: kind === 'full' ? ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] : []});
        await daemon.client.startJob(job);
        await sleep(delayMs);
        await daemon.kill();
        daemon = await startDaemon(state, socket);
        const s = await waitForSession(daemon.client, (await daemon.client.startJob(job)).id);
        next = s.state === 'success' || s.state === 'warning';
        await daemon.stop();
        daemon = undefined;
      }
      const leftovers = await countLeftovers(vm, scratch);
      const after = await openRepository(repoPath);
      const now = new Set((await after.listRestorePoints()).map((p) => p.id));
      const verify = await after.verify({restorePoints: before.filter((id) => now.has(id))});
      const lost = before.filter((id) => !now.has(id)).length + verify.restorePoints.filter((p) => !p.ok).length;
      const row: Row = {run, way, vm: isRunning ? 'running' : 'shut off', kind, delayMs, leftovers, lost, next};
      rows.push(row);
      console.log(`run ${String(run).padStart(2)}  ${way.padEnd(6)} ${row.vm.padEnd(8)} ${kind.padEnd(11)} kill after ${String(delayMs).padStart(5)} ms   leftovers ${leftovers}   lost ${lost}   next backup ${next ? 'ok' : 'FAILED'}`);
    }
  } finally {
    await daemon?.stop().catch(() => undefined);
    await destroyTestVm(running);
    await destroyTestVm(off);
    await rm(scratch, {recursive: true, force: true});
    await rm(dir, {recursive: true, force: true});
  }
  const sum = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
  console.log('');
  console.log(machineLine());
  console.log(`${rows.length} runs (${rows.filter((r) => r.way === 'cli').length} CLI, ${rows.filter((r) => r.way === 'daemon').length} daemon; ${rows.filter((r) => r.kind === 'full').length} full): leftovers ${sum((r) => r.leftovers)} (must be 0), points lost ${sum((r) => r.lost)} (must be 0), next backup ok ${rows.filter((r) => r.next).length}/${rows.length}`);
  if (sum((r) => r.leftovers) + sum((r) => r.lost) > 0 || rows.some((r) => !r.next)) process.exitCode = 1;
}

/** New data for the run, so a backup has something to read. */
async function write(isRunning: boolean, vm: TestVm, run: number): Promise<void> {
  const cmd = `write -P ${(0x20 + (run % 200)).toString()} ${(run % 4) * 48}M 48M`;
  await (isRunning ? guestWrite(vm, 'vda', cmd) : offlineWrite(vm, 'vda', cmd));
}

/** What a killed backup may leave on the host, after the next start cleaned up. */
async function countLeftovers(vm: TestVm, scratch: string): Promise<number> {
  const job = /Job type:\s+Unbounded/.test(await virsh('domjobinfo', vm.uuid).catch(() => '')) ? 1 : 0;
  const nbd = (await execa('pgrep', ['-f', `qemu-nbd.*${vm.disks[0]!.path}`], {reject: false})).stdout.split('\n').filter(Boolean).length;
  const dirs = (await readdir(scratch)).length;
  return job + nbd + dirs;
}

await main();
