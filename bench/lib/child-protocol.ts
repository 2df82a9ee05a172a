/**
 * The job and result shapes exchanged between a benchmark driver and bench/lib/child.ts, and
 * the driver side: spawn the child, time it from spawn to exit, and parse its one result line.
 *
 * Runtime: 'compiled' (default) runs the child as JavaScript compiled by tsc into
 * /var/tmp/vmbackup-bench/dist, the way the installed CLI runs (dist/cli/main.js); 'tsx' runs
 * the TypeScript through tsx, as `npm run vmbackup` does, which adds ~0.5 s of start-up and
 * ~30 MiB of RSS (esbuild's loader) to every process.
 */
import {mkdir, symlink, writeFile, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import type {DiskFigures} from '../../src/engine/events.js';

export const RESULT_MARK = '@@bench-result ';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD_TS = fileURLToPath(new URL('./child.ts', import.meta.url));
const COMPILED = '/var/tmp/vmbackup-bench/dist';

export type ChildRuntime = 'compiled' | 'tsx';
let runtime: ChildRuntime = 'tsx';

/** Chooses how children run; 'compiled' compiles src/, test/ and bench/ with tsc first (~15 s). */
export async function prepareChildRuntime(kind: ChildRuntime): Promise<void> {
  runtime = kind;
  if (kind === 'tsx') return;
  await rm(COMPILED, {recursive: true, force: true});
  await mkdir(COMPILED, {recursive: true});
  // Type errors elsewhere in the tree must not stop the emit: the child only needs what it imports.
  await execa(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'test/tsconfig.json'), '--noEmit', 'false', '--sourceMap', 'false', '--outDir', COMPILED], {reject: false});
  await writeFile(join(COMPILED, 'package.json'), '{"type":"module"}\n');
  // ESM resolves bare imports by walking up from the importing file: give it our node_modules.
  await symlink(join(ROOT, 'node_modules'), join(COMPILED, 'node_modules'));
}

export function childRuntime(): ChildRuntime {
  return runtime;
}

export type ChildPlatform =
  | {kind: 'libvirt'; scratchDir: string}
  | {kind: 'ovirt'; url: string; user: string; password: string; caPem: string};

export type ChildJob =
  | {op: 'backup'; platform: ChildPlatform; repository: string; vmId: string; vmName: string}
  /** Opens a full backup and reads every data extent into a discarded buffer, like a disk task without the repository. */
  | {op: 'read-only'; platform: ChildPlatform; vmId: string; parallel: number; readSize: number; nbdcopy?: boolean}
  | {op: 'restore'; platform: ChildPlatform; repository: string; restorePointId: string; directory: string; format: 'qcow2' | 'raw'};

export interface ChildResult {
  /** backupVm / restoreVm alone, from call to return. */
  opMs: number;
  /** CPU (user + system, all threads) of the whole child, ms: start-up and tsx included. */
  cpuMs?: number;
  /** CPU of the operation alone, ms. */
  opCpuMs?: number;
  /** Platform + repository opening before the operation. */
  setupMs?: number;
  /** getrusage ru_maxrss, KiB: on Linux it includes the parent's RSS at fork (kept across exec). */
  maxRssKiB: number;
  /** Peak resident set of the child's own process image, KiB (/proc/self/status VmHWM). */
  peakRssKiB: number;
  /** Peaks of process.memoryUsage() sampled every 100 ms (bytes): what the RSS is made of. */
  memoryPeaks?: {heapUsed: number; external: number; arrayBuffers: number; rss: number};
  incremental?: boolean;
  disks?: Record<string, DiskFigures>;
  restorePointId?: string;
  files?: string[];
  restoreDisks?: Record<string, {size: number; writtenBytes: number; zeroBytes: number; durationMs: number}>;
  /** libvirt: every command the platform ran, ms after the operation started (redacted lines). */
  commands?: {atMs: number; line: string}[];
  /** read-only: bytes read and the time of the reads alone. */
  readOnly?: {bytes: number; readMs: number};
  /**
   * read-only with nbdcopy (libvirt): the same backup's export copied to null: by nbdcopy with its
   * defaults, the read limit of the source; CPU and RSS from GNU time.
   */
  nbdcopy?: {ms: number; cpuMs: number; maxRssKiB: number; exports: number};
  error?: string;
}

export interface ChildRun extends ChildResult {
  /** Spawn to exit: Node start-up (and tsx transpiling, in that runtime), the operation, exit. */
  processMs: number;
}

export async function runChild(job: ChildJob): Promise<ChildRun> {
  const t0 = performance.now();
  const argv = runtime === 'tsx' ? ['--import', 'tsx', CHILD_TS] : [join(COMPILED, 'bench/lib/child.js')];
  // BENCH_CHILD_NODE: another Node binary for the children only (to compare Node versions with
  // the same driver and simulator); the default is the driver's own Node.
  const node = process.env.BENCH_CHILD_NODE || process.execPath;
  const r = await execa(node, argv, {cwd: ROOT, input: JSON.stringify(job), reject: false, env: {FORCE_COLOR: '0', MIMALLOC_PURGE_DELAY: process.env.MIMALLOC_PURGE_DELAY ?? '3'}});
  // ↑ the environment the CLI wrapper and the systemd unit give vmbackup (README, Performance).
  const processMs = performance.now() - t0;
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (!line) throw new Error(`benchmark child (${job.op}) gave no result; exit ${r.exitCode}\n${r.stderr.slice(-2000)}`);
  const res = JSON.parse(line.slice(RESULT_MARK.length)) as ChildResult;
  if (res.error) throw new Error(`benchmark child (${job.op}) failed: ${res.error}`);
  return {...res, processMs};
}
