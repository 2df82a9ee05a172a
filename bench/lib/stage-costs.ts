/**
 * What one chunk costs on this machine, stage by stage (prints figures; a diagnostic for the
 * platform benchmarks, not a test):
 *   node --import tsx bench/lib/stage-costs.ts [image=/var/tmp/vmbackup-bench/ext4-3072M-800M.raw] [MiB=256]
 *
 * Takes the first non-zero 1 MiB pieces of the image (real file data when it is the libvirt
 * benchmark's ext4 fixture) and times, on one thread, each thing the repository does per chunk:
 * the zero check, SHA-256, LZ4 (lz4-napi: sync, async on the pool with the peak-RSS growth it
 * causes, and decompression; liblz4 through python3-lz4 as the reference), CRC-32, and writing the chunk as a file
 * with and without fsync (temp + rename, as the chunk store does) in a scratch directory on the
 * same file system as the benchmarks' repositories. CPU seconds are given beside wall time:
 * the machine is shared, so CPU per GiB is the steadier figure.
 *
 * Last, the repository's own chunk worker pool (src/repository/chunk-workers.ts) with 1 to 4
 * threads: a put (SHA-256, LZ4, write + fsync + rename, all in the threads) and a read back
 * (read, decompress, SHA-256 = id check in format 2 / CRC in format 1) of every chunk; CPU of
 * all threads. This is how the pool size was chosen.
 */
import {createHash} from 'node:crypto';
import {existsSync} from 'node:fs';
import {mkdir, open, readFile, rename, rm} from 'node:fs/promises';
import {execa} from 'execa';
import {join} from 'node:path';
import {crc32} from 'node:zlib';
import {compress, compressSync, uncompressSync} from 'lz4-napi';
import {MiB, machineLine} from './measure.js';
import {ChunkWorkerPool} from '../../src/repository/chunk-workers.js';
import {chunkPath} from '../../src/repository/layout.js';

const image = process.argv[2] ?? '/var/tmp/vmbackup-bench/ext4-3072M-800M.raw';
const want = Number(process.argv[3] ?? 256);
const SCRATCH = '/var/tmp/vmbackup-bench/stage-costs';

async function loadChunks(): Promise<Buffer[]> {
  const fh = await open(image, 'r');
  const zero = Buffer.alloc(MiB);
  const out: Buffer[] = [];
  try {
    for (let off = 0; out.length < want; off += MiB) {
      const buf = Buffer.allocUnsafe(MiB);
      const {bytesRead} = await fh.read(buf, 0, MiB, off);
      if (bytesRead < MiB) break;
      if (!buf.equals(zero)) out.push(buf);
    }
  } finally {
    await fh.close();
  }
  return out;
}

async function stage(name: string, chunks: Buffer[], fn: (c: Buffer, i: number) => unknown | Promise<unknown>): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < chunks.length; i++) await fn(chunks[i]!, i);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const gib = (chunks.length * MiB) / 2 ** 30;
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(`${name.padEnd(34)} ${(chunks.length / wall).toFixed(0).padStart(6)} MiB/s wall   ${(cpuS / gib).toFixed(2).padStart(6)} CPU s/GiB`);
}

async function vmHwmMiB(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * The same chunks through liblz4 (python3-lz4, what virtnbdbackup -z uses), when Debian's
 * python3 has it: the reference cost of LZ4 itself on this data.
 */
const PY_LZ4 = `
import sys, time, lz4.frame
path, want = sys.argv[1], int(sys.argv[2])
z = bytes(1 << 20); chunks = []
with open(path, 'rb') as f:
    while len(chunks) < want:
        b = f.read(1 << 20)
        if len(b) < (1 << 20): break
        if b != z: chunks.append(b)
for name, level in (('liblz4 frame, level 2 (virtnbdbackup -z)', 2), ('liblz4 frame, default level', 0)):
    t = time.process_time(); n = 0
    for c in chunks: n += len(lz4.frame.compress(c, compression_level=level))
    cpu = time.process_time() - t
    print(f"{name:34} {cpu / (len(chunks) / 1024):6.2f} CPU s/GiB   ratio {n / (len(chunks) << 20):.3f}")
`;

async function liblz4Reference(): Promise<void> {
  if (!existsSync('/usr/bin/python3')) return;
  const r = await execa('/usr/bin/python3', ['-c', PY_LZ4, image, String(want)], {reject: false});
  console.log(r.exitCode === 0 ? r.stdout : `(liblz4 reference skipped: ${r.stderr.split('\n').at(-2) ?? r.exitCode})`);
}

async function stageParallel(name: string, chunks: Buffer[], inFlight: number, fn: (c: Buffer) => Promise<unknown>): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({length: inFlight}, async () => {
    while (next < chunks.length) await fn(chunks[next++]!);
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const gib = (chunks.length * MiB) / 2 ** 30;
  console.log(`${name.padEnd(34)} ${(chunks.length / wall).toFixed(0).padStart(6)} MiB/s wall   ${((cpu.user + cpu.system) / 1e6 / gib).toFixed(2).padStart(6)} CPU s/GiB`);
}

async function writeChunk(dir: string, c: Buffer, i: number, sync: boolean): Promise<void> {
  const tmp = join(dir, `${i}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.write(c, 0, c.length, 0);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, String(i)));
}

async function main(): Promise<void> {
  const chunks = await loadChunks();
  console.log(`${new Date().toISOString()}  ${machineLine()}`);
  console.log(`${chunks.length} non-zero 1 MiB chunks of ${image}`);
  const zeros = Buffer.alloc(MiB);
  let packed = 0;
  // First, before any other stage has grown the heaps, so the RSS growth is this stage's alone.
  // As the writer runs it: async on the libuv pool, 4 in flight (both cores can work). lz4-napi
  // allocates with mimalloc, whose per-thread heaps on the pool threads keep freed pages: the
  // growth of the peak RSS over this stage is that memory (UV_THREADPOOL_SIZE raises it).
  const before = await vmHwmMiB();
  for (let round = 0; round < 3; round++) await stageParallel(`LZ4 compress (async, 4 in flight) #${round + 1}`, chunks, 4, (c) => compress(c));
  console.log(`  peak RSS ${before.toFixed(0)} → ${(await vmHwmMiB()).toFixed(0)} MiB over these rounds (UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default 4'}, MIMALLOC_PURGE_DELAY=${process.env.MIMALLOC_PURGE_DELAY ?? 'unset'})`);

  await stage('zero check (Buffer.equals)', chunks, (c) => c.equals(zeros));
  await stage('SHA-256 (node:crypto)', chunks, (c) => createHash('sha256').update(c).digest());
  await stage('LZ4 compress (lz4-napi, sync)', chunks, (c) => (packed += compressSync(c).length));
  console.log(`  LZ4 ratio on these chunks: ${(packed / (chunks.length * MiB)).toFixed(3)}`);
  const packedChunks = chunks.map((c) => compressSync(c) as Buffer);
  await stage('LZ4 decompress (lz4-napi, sync)', packedChunks, (c) => uncompressSync(c));
  await liblz4Reference();

  await stage('CRC-32 (node:zlib)', chunks, (c) => crc32(c));
  await rm(SCRATCH, {recursive: true, force: true});
  await mkdir(SCRATCH, {recursive: true});
  try {
    await stage('write + rename, no fsync', chunks, (c, i) => writeChunk(SCRATCH, c, i, false));
    await rm(SCRATCH, {recursive: true, force: true});
    await mkdir(SCRATCH, {recursive: true});
    await stage('write + fsync + rename (one at a time)', chunks, (c, i) => writeChunk(SCRATCH, c, i, true));
  } finally {
    await rm(SCRATCH, {recursive: true, force: true});
  }
  await workerPool(chunks);
}

/** The chunk worker pool: put and read back every chunk, per pool size and format. */
async function workerPool(chunks: Buffer[]): Promise<void> {
  const cpuCores = (await import('node:os')).availableParallelism();
  console.log(`chunk worker pool (${cpuCores} cores; as many requests in flight as the pool takes):`);
  for (const [threads, version] of [[1, 2], [2, 2], [3, 2], [4, 2], [3, 1]] as const) {
    const root = join(SCRATCH, `pool-${threads}-v${version}`);
    await mkdir(root, {recursive: true});
    const pool = new ChunkWorkerPool(threads);
    try {
      // Start every thread first (loading a thread costs ~0.1 CPU s compiled, more under tsx):
      // the rows are the steady state.
      await Promise.all(Array.from({length: pool.maxInFlight}, () => pool.read(join(root, 'none'), 'none')));
      const ids: string[] = [];
      await stageParallel(`pool put, ${threads} thread(s), format ${version}`, chunks, pool.maxInFlight, async (c) => {
        const r = await pool.put(root, version, c);
        ids.push(Buffer.from(r.id).toString('hex'));
      });
      const files = ids.map((hex) => ({hex, path: chunkPath(root, hex, version)}));
      let i = 0;
      await stageParallel(`pool read, ${threads} thread(s), format ${version}`, chunks, pool.maxInFlight, async () => {
        const f = files[i++]!;
        const r = await pool.read(f.path, f.hex);
        if (r.status !== 'ok') throw new Error(`chunk ${f.hex}: ${r.status}`);
      });
    } finally {
      await pool.close();
      await rm(root, {recursive: true, force: true});
    }
  }
}

await main();
