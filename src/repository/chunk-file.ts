/**
 * Chunk file encoding (pure). A chunk file is a 16-byte header and a payload:
 *
 *   0  magic "VBCK" · 4 u8 format version (1) · 5 u8 flags (bit 0 = LZ4) · 6 u16 reserved (0)
 *   8  u32 LE plain length · 12 u32 LE CRC-32 (zlib) of the payload · 16 payload
 *
 * The LZ4 payload is lz4-napi's block output: a u32 LE plain length, then one raw LZ4 block.
 * A chunk is stored raw (flags 0) when LZ4 does not make it smaller. The chunk id is the
 * SHA-256 of the plain data and is checked by verify, not by every read (CRC covers reads).
 */
import {createHash} from 'node:crypto';
import {crc32} from 'node:zlib';
import {compress, compressSync, uncompressSync} from 'lz4-napi';

export const CHUNK_MAGIC = Buffer.from('VBCK', 'latin1');
export const CHUNK_HEADER_SIZE = 16;
export const CHUNK_FORMAT_VERSION = 1;
export const FLAG_LZ4 = 1;

/** The id an index uses for an all-zero chunk; such chunks are never stored. */
export const ZERO_ID = Buffer.alloc(32);

export function chunkId(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function isZeroId(id: Uint8Array): boolean {
  return ZERO_ID.equals(id);
}

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

/** Compresses when that pays off and returns the header and payload to write. */
export async function encodeChunk(plain: Buffer): Promise<{header: Buffer; payload: Buffer}> {
  let payload = plain;
  let flags = 0;
  if (looksCompressible(plain)) {
    // Runs on the libuv pool, so compression of one chunk overlaps hashing of the next.
    const packed = await compress(plain);
    if (packed.length < plain.length) {
      payload = packed;
      flags = FLAG_LZ4;
    }
  }
  const header = Buffer.alloc(CHUNK_HEADER_SIZE);
  CHUNK_MAGIC.copy(header, 0);
  header.writeUInt8(CHUNK_FORMAT_VERSION, 4);
  header.writeUInt8(flags, 5);
  header.writeUInt32LE(plain.length, 8);
  header.writeUInt32LE(crc32(payload), 12);
  return {header, payload};
}

export class ChunkDecodeError extends Error {}

/** Checks the header and CRC and returns the plain data. Throws ChunkDecodeError on damage. */
export async function decodeChunk(file: Buffer): Promise<Buffer> {
  if (file.length < CHUNK_HEADER_SIZE) throw new ChunkDecodeError(`file is ${file.length} bytes, shorter than a chunk header`);
  if (!file.subarray(0, 4).equals(CHUNK_MAGIC)) throw new ChunkDecodeError('bad magic (not a chunk file)');
  const version = file.readUInt8(4);
  if (version !== CHUNK_FORMAT_VERSION) throw new ChunkDecodeError(`unknown chunk format version ${version}`);
  const flags = file.readUInt8(5);
  if ((flags & ~FLAG_LZ4) !== 0) throw new ChunkDecodeError(`unknown flags 0x${flags.toString(16)}`);
  const plainLength = file.readUInt32LE(8);
  const payload = file.subarray(CHUNK_HEADER_SIZE);
  if (crc32(payload) !== file.readUInt32LE(12)) throw new ChunkDecodeError('payload checksum mismatch');
  let plain: Buffer;
  if (flags & FLAG_LZ4) {
    try {
      // Sync on purpose: lz4-napi's async uncompress returns buffers whose memory V8 does not
      // see, so a restore stream grew to 600 MiB RSS; sync decoding (~1.5 GB/s) stays flat.
      plain = uncompressSync(payload) as Buffer;
    } catch (err) {
      throw new ChunkDecodeError(`LZ4 payload does not decompress: ${(err as Error).message}`);
    }
  } else {
    plain = payload;
  }
  if (plain.length !== plainLength) throw new ChunkDecodeError(`plain length ${plain.length} differs from header ${plainLength}`);
  return plain;
}
