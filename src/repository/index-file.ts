/**
 * Disk index encoding (pure). One index per disk per restore point:
 *
 *   0  magic "VBIDX\0\0\0" (8) · 8 u32 LE format version (1) · 12 u32 LE flags (0)
 *   16 u64 LE disk size · 24 u32 LE chunk size · 28 u32 LE chunk count
 *   32 SHA-256 over bytes 0..32 of the header followed by the id array (32)
 *   64 chunk count × 32-byte chunk ids; all zero bytes = a zero chunk (not stored)
 *
 * chunk count = ceil(size / chunk size); the last chunk may be shorter. The checksum covers the
 * geometry as well as the ids, so a header edited by accident is caught too.
 */
import {createHash} from 'node:crypto';

export const INDEX_MAGIC = Buffer.from('VBIDX\0\0\0', 'latin1');
export const INDEX_HEADER_SIZE = 64;
export const INDEX_FORMAT_VERSION = 1;

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

function checksum(header32: Uint8Array, ids: Uint8Array): Buffer {
  return createHash('sha256').update(header32).update(ids).digest();
}

export function encodeIndexHeader(size: number, chunkSize: number, ids: Buffer): Buffer {
  const count = chunkCount(size, chunkSize);
  if (ids.length !== count * 32) throw new Error(`index id array is ${ids.length} bytes, expected ${count * 32}`);
  const h = Buffer.alloc(INDEX_HEADER_SIZE);
  INDEX_MAGIC.copy(h, 0);
  h.writeUInt32LE(INDEX_FORMAT_VERSION, 8);
  h.writeUInt32LE(0, 12);
  h.writeBigUInt64LE(BigInt(size), 16);
  h.writeUInt32LE(chunkSize, 24);
  h.writeUInt32LE(count, 28);
  checksum(h.subarray(0, 32), ids).copy(h, 32);
  return h;
}

export interface DecodedIndex {
  size: number;
  chunkSize: number;
  ids: Buffer;
}

/** Returns the index or a description of what is wrong with it. */
export function decodeIndex(file: Buffer): DecodedIndex | {error: string} {
  if (file.length < INDEX_HEADER_SIZE) return {error: `truncated: ${file.length} bytes, shorter than the ${INDEX_HEADER_SIZE}-byte header`};
  if (!file.subarray(0, 8).equals(INDEX_MAGIC)) return {error: 'bad magic (not an index file)'};
  const version = file.readUInt32LE(8);
  if (version !== INDEX_FORMAT_VERSION) return {error: `unknown index format version ${version}`};
  const size = Number(file.readBigUInt64LE(16));
  const chunkSize = file.readUInt32LE(24);
  const count = file.readUInt32LE(28);
  if (chunkSize === 0 || count !== chunkCount(size, chunkSize)) return {error: `inconsistent header (size ${size}, chunk size ${chunkSize}, count ${count})`};
  const ids = file.subarray(INDEX_HEADER_SIZE);
  if (ids.length !== count * 32) return {error: `truncated: ${ids.length} bytes of chunk ids, expected ${count * 32}`};
  if (!checksum(file.subarray(0, 32), ids).equals(file.subarray(32, 64))) return {error: 'checksum mismatch'};
  return {size, chunkSize, ids};
}
