/**
 * How a chunk's data is packed for a chunk file: LZ4 when that makes it smaller, else raw. Shared
 * by the repository's chunk files (repository/chunk-file.ts) and the worker on a host
 * (worker/main.ts), which packs what it sends the same way (the appliance checks, not trusts, it).
 */
import {compressSync} from 'lz4-napi';

/** The flag of an LZ4 payload (chunk-file.ts FLAG_LZ4). */
export const PACKED_LZ4 = 1;

const SAMPLE = 8192;
const SAMPLES = 4;

/**
 * Whether LZ4 is worth trying on a large chunk: compress a few small slices and give up when
 * they do not shrink. LZ4 on random data is slow (~300 MB/s a core) and its output is thrown
 * away, so encrypted or already-compressed guest data would otherwise cost CPU and memory churn.
 */
export function looksCompressible(plain: Buffer): boolean {
  if (plain.length < SAMPLE * SAMPLES * 4) return true;
  const step = Math.floor((plain.length - SAMPLE) / (SAMPLES - 1));
  let packed = 0;
  for (let i = 0; i < SAMPLES; i++) packed += compressSync(plain.subarray(i * step, i * step + SAMPLE)).length;
  return packed < SAMPLE * SAMPLES * 0.97;
}

/** Packs plain data: LZ4 (lz4-napi's block output) when that pays off (the payload is then smaller), else raw (flags 0). */
export function packData(plain: Buffer): {flags: number; payload: Buffer} {
  if (looksCompressible(plain)) {
    // Sync on purpose: lz4-napi's async calls grew RSS by hundreds of MiB.
    const packed = compressSync(plain) as Buffer;
    if (packed.length < plain.length) return {flags: PACKED_LZ4, payload: packed};
  }
  return {flags: 0, payload: plain};
}
