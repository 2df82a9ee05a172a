/**
 * Small measuring helpers shared by the platform benchmarks: wall time of a command, disk usage
 * of a directory, the dirty bytes a set of writes makes once rounded out to whole chunks, another
 * process's CPU and RSS from /proc, and a line describing the machine and its load (the figures
 * mean little without it).
 */
import {readFile} from 'node:fs/promises';
import {cpus, loadavg, totalmem} from 'node:os';
import {execa} from 'execa';

export const MiB = 2 ** 20;

/** Runs a command (argument array, never a shell string) and returns its wall time in ms. */
export async function timed(cmd: string, args: string[], opts: {cwd?: string} = {}): Promise<{ms: number; stdout: string; stderr: string}> {
  const t0 = performance.now();
  const r = await execa(cmd, args, {cwd: opts.cwd, reject: false, stdin: 'ignore'});
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.exitCode}:\n${String(r.stderr).slice(-3000)}`);
  return {ms, stdout: String(r.stdout), stderr: String(r.stderr)};
}

export interface Rusage {
  ms: number;
  /** User + system CPU of the command and its children, ms. */
  cpuMs: number;
  /** Peak RSS of the command, KiB (GNU time %M: forked from `time`, not from us, so its own). */
  maxRssKiB: number;
}

const TIME_MARK = '@@rusage';

/** Like timed(), through GNU time (/usr/bin/time) for the command's CPU seconds and peak RSS. */
export async function timedRusage(cmd: string, args: string[]): Promise<Rusage> {
  const t0 = performance.now();
  const r = await execa('/usr/bin/time', ['-f', `${TIME_MARK} %U %S %M`, '--', cmd, ...args], {reject: false, stdin: 'ignore'});
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.exitCode}:\n${String(r.stderr).slice(-3000)}`);
  const line = String(r.stderr).split('\n').reverse().find((l) => l.startsWith(TIME_MARK));
  const [, user, sys, rss] = line?.split(' ') ?? [];
  return {ms, cpuMs: (Number(user) + Number(sys)) * 1000, maxRssKiB: Number(rss)};
}

/** Bytes a directory occupies on disk (du -s --block-size=1: allocated blocks, what a disk fills with). */
export async function diskUsage(dir: string): Promise<number> {
  const r = await execa('du', ['-s', '--block-size=1', '--', dir]);
  return Number(r.stdout.split('\t')[0]);
}

/** Sum of the file sizes under a directory (du --apparent-size). */
export async function apparentSize(dir: string): Promise<number> {
  const r = await execa('du', ['-s', '--apparent-size', '--block-size=1', '--', dir]);
  return Number(r.stdout.split('\t')[0]);
}

/** The bytes covered by the union of `writes`, each rounded out to whole `chunk`-sized chunks. */
export function dirtyRoundedToChunks(writes: {offset: number; length: number}[], chunk: number): number {
  const chunks = new Set<number>();
  for (const w of writes) {
    if (w.length <= 0) continue;
    for (let c = Math.floor(w.offset / chunk); c <= Math.floor((w.offset + w.length - 1) / chunk); c++) chunks.add(c);
  }
  return chunks.size * chunk;
}

/** User + system CPU of a running process so far, ms (/proc/<pid>/stat, clock ticks of 10 ms). */
export async function processCpuMs(pid: number): Promise<number> {
  // Field 2 (comm) may hold spaces: count the fields after its closing parenthesis.
  const f = (await readFile(`/proc/${pid}/stat`, 'latin1')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The resident set of a running process now, KiB (/proc/<pid>/status VmRSS). */
export async function processRssKiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]);
}

export function machineLine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

export function mib(bytes: number, digits = 1): string {
  return `${(bytes / MiB).toFixed(digits)} MiB`;
}

export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
