/**
 * Repository throughput benchmark (prints figures; not a test).
 *   node --import tsx bench/repository.ts [--dir <scratch dir>] [--gib <size of the mixed disk>] [--sparse-gib <n>] [--format 1|2]
 *
 * Disk A: a synthetic disk (default 2 GiB), per 4 chunks: one random, one text-like, two zero.
 * Disk B: a sparse disk (default 16 GiB): one data chunk in 16, the rest zeros, all put().
 * For each: first ingest, re-ingest of the same data (everything already stored), read-back as
 * a stream, and the peak RSS. Data comes from memory: every chunk is a pooled buffer with a
 * counter stamped in, so chunks are unique (no accidental dedup) yet cost only a memcpy.
 * Targets: ingest ≥ 500 MiB/s, re-ingest ≥ 1 GiB/s, read-back ≥ 800 MiB/s, peak RSS < 300 MiB.
 * --format makes the repository in that format version (default: the newest). The chunk worker
 * pool's size comes from VMBACKUP_CHUNK_WORKERS when set (src/repository/chunk-workers.ts).
 * Under tsx every chunk worker thread loads tsx too (~25 MiB of RSS each); the appliance and
 * the platform benchmarks run compiled JavaScript.
 */
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {createRepository, type Repository} from '../src/repository/index.js';
import {defaultPoolSize} from '../src/repository/chunk-workers.js';

// Measure what ships: the CLI and the daemon run with libuv's default pool (4 threads) and
// MIMALLOC_PURGE_DELAY=3, which keeps lz4-napi's per-thread allocator caches from holding peak
// RSS up (0 purges at once and re-faults every buffer: bench/lz4-faults.ts) (a 16-thread pool measured no faster here and doubled RSS; docs/benchmarks.md).
// The allocator reads the variable at load, so re-run with it set.
if (process.env.MIMALLOC_PURGE_DELAY === undefined) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {stdio: 'inherit', env: {...process.env, MIMALLOC_PURGE_DELAY: '3'}});
  process.exit(r.status ?? 1);
}

const {values} = parseArgs({
  options: {dir: {type: 'string'}, gib: {type: 'string'}, 'sparse-gib': {type: 'string'}, format: {type: 'string'}, 'in-flight': {type: 'string'}, 'put-mib': {type: 'string'}},
});
const MiB = 1 << 20;
const CS = MiB;
const IN_FLIGHT = Number(values['in-flight'] ?? 16);
/** Chunks per put() call: the engine puts runs of up to 8 MiB with 4 in flight. */
const PUT_CHUNKS = Number(values['put-mib'] ?? 1);

function textChunk(seed: number): Buffer {
  // Written straight into a Buffer: building a 1 MiB string first left 60 MiB of heap behind.
  const words = ['backup', 'restore', 'virtual', 'machine', 'kernel', 'the', 'of', 'and', 'qemu', 'disk', 'block', 'page'].map((w) => Buffer.from(`${w} `));
  const b = Buffer.alloc(CS);
  let n = 0;
  let x = seed;
  while (n < CS) {
    x = (x * 1103515245 + 12345) >>> 0;
    n += words[x % words.length]!.copy(b, n);
    if (x % 13 === 0 && n < CS) b[n++] = 10;
    if (x % 97 === 0) n += b.write(String(x), n, 'latin1');
  }
  return b;
}

const randomPool = Array.from({length: 16}, () => randomBytes(CS));
const textPool = Array.from({length: 16}, (_, i) => textChunk(i + 1));

type Kind = 'random' | 'text' | 'zero';
/** Fills `into` with chunk i of a disk; `salt` makes a different disk. */
function makeChunk(kind: Kind, i: number, salt: number, into: Buffer): void {
  if (kind === 'zero') {
    into.fill(0);
    return;
  }
  const pool = kind === 'random' ? randomPool : textPool;
  pool[i % pool.length]!.copy(into);
  into.writeUInt32LE(i, 0);
  into.writeUInt32LE(salt, 4);
}

const mixedKind = (i: number): Kind => (['random', 'text', 'zero', 'zero'] as const)[i % 4]!;
const sparseKind = (i: number): Kind => (i % 32 === 0 ? 'random' : i % 32 === 16 ? 'text' : 'zero');

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);

async function ingest(repo: Repository, name: string, chunks: number, kind: (i: number) => Kind): Promise<{seconds: number; id: string; stored: number}> {
  const start = performance.now();
  const w = await repo.beginRestorePoint({vmId: name, vmName: name, platform: 'bench'});
  const d = await w.addDisk({key: 'vda', name: 'disk', size: chunks * CS});
  // An engine-like loop: a bounded number of puts in flight, each with its own buffer.
  const buffers = Array.from({length: IN_FLIGHT}, () => Buffer.alloc(CS * PUT_CHUNKS));
  const free = [...buffers];
  const running = new Set<Promise<void>>();
  for (let i = 0; i < chunks; i += PUT_CHUNKS) {
    while (free.length === 0) await Promise.race(running);
    const buf = free.pop()!;
    const n = Math.min(PUT_CHUNKS, chunks - i);
    for (let k = 0; k < n; k++) makeChunk(kind(i + k), i + k, 7, buf.subarray(k * CS, (k + 1) * CS));
    const p: Promise<void> = d.put(i * CS, buf.subarray(0, n * CS)).then(() => {
      running.delete(p);
      free.push(buf);
    });
    running.add(p);
  }
  await Promise.all(running);
  await d.finish();
  const sum = await w.commit();
  return {seconds: (performance.now() - start) / 1000, id: sum.id, stored: sum.storedSize};
}

async function readBack(repo: Repository, id: string, chunks: number, kind: (i: number) => Kind): Promise<number> {
  const start = performance.now();
  const disk = await (await repo.openRestorePoint(id)).openDisk('vda');
  let bytes = 0;
  let i = 0;
  const expect = Buffer.alloc(CS);
  for await (const part of disk.stream()) {
    const b = part as Buffer;
    // Spot-check one chunk in 64 so the figure is about the repository, not the check.
    if (b.length === CS && i % 64 === 0) {
      makeChunk(kind(i), i, 7, expect);
      if (!b.equals(expect)) throw new Error(`read-back mismatch in chunk ${i}`);
    }
    bytes += b.length;
    i++;
  }
  if (bytes !== chunks * CS) throw new Error(`read back ${bytes} bytes, expected ${chunks * CS}`);
  return (performance.now() - start) / 1000;
}

/** Restore-like: read() runs of 8 MiB, 4 in flight, as the engine's restore does. */
async function readRuns(repo: Repository, id: string, chunks: number): Promise<number> {
  const start = performance.now();
  const disk = await (await repo.openRestorePoint(id)).openDisk('vda');
  const run = 8 * CS;
  let next = 0;
  const worker = async () => {
    const buf = Buffer.alloc(run); // reused, as a restore with a fixed set of write buffers would
    while (next < chunks * CS) {
      const off = next;
      next += run;
      await disk.read(off, Math.min(run, chunks * CS - off), buf);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return (performance.now() - start) / 1000;
}

const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(0).padStart(6)} MiB/s`;

async function scenario(repo: Repository, label: string, gib: number, kind: (i: number) => Kind): Promise<void> {
  const chunks = gib * 1024;
  const bytes = chunks * CS;
  const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  // CPU seconds (all threads of this process) per GiB: a figure that CPU contention from
  // other processes does not distort the way wall-clock throughput is.
  let cpu = process.cpuUsage();
  const cpuPerGiB = () => {
    const d = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    return `${((d.user + d.system) / 1e6 / (bytes / (1 << 30))).toFixed(2)} CPU-s/GiB`;
  };
  peakRss = 0;
  const first = await ingest(repo, `${label}-1`, chunks, kind);
  console.log(`${label}: first ingest  ${rate(bytes, first.seconds)}  (${first.seconds.toFixed(2)} s, ${cpuPerGiB()}, stored ${mib(first.stored)}, peak RSS ${mib(peakRss)})`);
  peakRss = 0;
  const again = await ingest(repo, `${label}-2`, chunks, kind);
  console.log(`${label}: re-ingest     ${rate(bytes, again.seconds)}  (${again.seconds.toFixed(2)} s, ${cpuPerGiB()}, stored ${mib(again.stored)}, peak RSS ${mib(peakRss)})`);
  peakRss = 0;
  const rs = await readBack(repo, first.id, chunks, kind);
  console.log(`${label}: read-back     ${rate(bytes, rs)}  (${rs.toFixed(2)} s, ${cpuPerGiB()}, peak RSS ${mib(peakRss)})  [stream()]`);
  peakRss = 0;
  const rr = await readRuns(repo, first.id, chunks);
  console.log(`${label}: read-back     ${rate(bytes, rr)}  (${rr.toFixed(2)} s, ${cpuPerGiB()}, peak RSS ${mib(peakRss)})  [read() 8 MiB runs ×4]`);
}

const base = await mkdtemp(join(values.dir ?? tmpdir(), 'vmb-bench-'));
try {
  console.log(`node ${process.version}, chunk size 1 MiB, ${IN_FLIGHT} puts of ${PUT_CHUNKS} MiB in flight, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default'}, MIMALLOC_PURGE_DELAY=${process.env.MIMALLOC_PURGE_DELAY}, scratch ${base}`);
  console.log(`RSS before the first run (runtime, tsx, 32 MiB of data pools): ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB`);
  const repo = await createRepository(join(base, 'repo'), values.format !== undefined ? {formatVersion: Number(values.format)} : {});
  console.log(`repository format ${repo.formatVersion}, chunk worker threads: ${defaultPoolSize()}`);
  await scenario(repo, `mixed ${values.gib ?? 2} GiB`, Number(values.gib ?? 2), mixedKind);
  await scenario(repo, `sparse ${values['sparse-gib'] ?? 16} GiB`, Number(values['sparse-gib'] ?? 16), sparseKind);
  const st = await repo.stats();
  console.log(`repository: ${st.restorePoints} restore points, ${st.chunks} chunks, stored ${(st.storedBytes / MiB).toFixed(0)} MiB, dedup ${st.dedupRatio.toFixed(2)}, compression ${st.compressionRatio.toFixed(2)}`);
  console.log(`max RSS (kernel): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  clearInterval(sampler);
  await rm(base, {recursive: true, force: true});
}
