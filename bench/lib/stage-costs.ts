/**
 * What one chunk costs on this machine, stage by stage (prints figures; a diagnostic for the
 * platform benchmarks, not a test):
 *   node --import tsx bench/lib/stage-costs.ts [image=/var/tmp/vmbackup-bench/ext4-3072M-800M.raw] [MiB=256]
 *
 * Takes the first non-zero 1 MiB pieces of the image (real file data when it is the libvirt
 * benchmark's ext4 fixture) and times, on one thread, each thing the repository does per chunk:
 * the zero check, SHA-256, LZ4 (lz4-napi: sync, async on the pool, and decompression), CRC-32, and writing the chunk as a file
 * with and without fsync (temp + rename, as the chunk store does) in a scratch directory on the
 * same file system as the benchmarks' repositories. CPU seconds are given beside wall time:
 * the machine is shared, so CPU per GiB is the steadier figure.
 */
import {createHash} from 'node:crypto';
import {mkdir, open, rename, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {crc32} from 'node:zlib';
import {compress, compressSync, uncompressSync} from 'lz4-napi';
import {MiB, machineLine} from './measure.js';

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
  await stage('zero check (Buffer.equals)', chunks, (c) => c.equals(zeros));
  await stage('SHA-256 (node:crypto)', chunks, (c) => createHash('sha256').update(c).digest());
  await stage('LZ4 compress (lz4-napi, sync)', chunks, (c) => (packed += compressSync(c).length));
  console.log(`  LZ4 ratio on these chunks: ${(packed / (chunks.length * MiB)).toFixed(3)}`);
  const packedChunks = chunks.map((c) => compressSync(c) as Buffer);
  await stage('LZ4 decompress (lz4-napi, sync)', packedChunks, (c) => uncompressSync(c));
  // As the writer runs it: async on the libuv pool, 4 in flight (both cores can work).
  await stageParallel('LZ4 compress (async, 4 in flight)', chunks, 4, (c) => compress(c));
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
}

await main();
