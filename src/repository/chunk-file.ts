/**
 * Chunk file encoding (pure, synchronous: it runs inside the chunk worker threads, see
 * chunk-workers.ts). Two versions; the repository's format version decides which one is written
 * (docs/repository-format.md), a reader accepts both.
 *
 * Version 1 (repository format 1): a 16-byte header and a payload:
 *   0  magic "VBCK" · 4 u8 chunk format version (1) · 5 u8 flags (bit 0 = LZ4) · 6 u16 reserved (0)
 *   8  u32 LE plain length · 12 u32 LE CRC-32 (zlib) of the payload · 16 payload
 * Reads check the CRC; the SHA-256 (= the chunk id) is checked by verify.
 *
 * Version 2 (repository format 2): a 12-byte header and a payload:
 *   0  magic "VBCK" · 4 u8 chunk format version (2) · 5 u8 flags (bit 0 = LZ4) · 6 u16 reserved (0)
 *   8  u32 LE plain length · 12 payload
 * No CRC: every read checks the SHA-256 of the decoded plain data against the chunk id, so a
 * restore verifies each chunk end to end.
 *
 * Version 3 (repository format 3, encrypted; crypto.ts): a 20-byte header, the encrypted body
 * and the AES-256-GCM tag:
 *   0  magic "VBCK" · 4 u8 chunk format version (3) · 5 u8 0 · 6 u16 reserved (0) · 8 nonce (12)
 *   20 ciphertext of: u8 flags (bit 0 = LZ4) · 3 bytes 0 · u32 LE plain length · payload
 *   end − 16: tag. Associated data: the 20 header bytes and the 32-byte chunk id.
 * The id is the HMAC-SHA-256 of the plain data under the repository's id key, so ids reveal
 * nothing; a read authenticates the file (which binds it to its id), verify also checks the HMAC.
 *
 * The LZ4 payload is lz4-napi's block output: a u32 LE plain length, then one raw LZ4 block.
 * A chunk is stored raw (flags 0) when LZ4 does not make it smaller.
 */
import {createCipheriv, createDecipheriv, createHash, randomBytes} from 'node:crypto';
import {crc32} from 'node:zlib';
import {uncompressSync} from 'lz4-napi';
import {PACKED_LZ4, packData} from '../util/lz4-pack.js';
import {MAX_CHUNK_SIZE} from './config-file.js';
import {keyedHash, type ChunkKeys} from './crypto.js';

export const CHUNK_MAGIC = Buffer.from('VBCK', 'latin1');
/** Header size of a version 1 chunk file. */
export const CHUNK_HEADER_SIZE = 16;
export const CHUNK_HEADER_SIZE_V2 = 12;
export const CHUNK_HEADER_SIZE_V3 = 20;
export const CHUNK_FORMAT_V1 = 1;
export const CHUNK_FORMAT_V2 = 2;
export const CHUNK_FORMAT_V3 = 3;
/** What a format 3 file adds to the payload: header, the inner flags and length, the GCM tag. */
const V3_OVERHEAD = CHUNK_HEADER_SIZE_V3 + 8 + 16;
export const FLAG_LZ4 = PACKED_LZ4;

/** The id an index uses for an all-zero chunk; such chunks are never stored. */
export const ZERO_ID = Buffer.alloc(32);

/** The id of a chunk: SHA-256 of its data, or with `mac` (an encrypted repository) the HMAC-SHA-256. */
export function chunkId(data: Uint8Array, mac?: Uint8Array): Buffer {
  return mac ? keyedHash(mac, data) : createHash('sha256').update(data).digest();
}

export function isZeroId(id: Uint8Array): boolean {
  return ZERO_ID.equals(id);
}

/**
 * A chunk's data as it goes into a chunk file, packed: LZ4 (flags FLAG_LZ4) or raw (flags 0).
 * encodeChunk packs here; a worker on a host packs there (src/worker/) and the appliance only
 * checks and wraps what it sent (unpackChunk, encodePacked).
 */
export interface PackedChunk {
  flags: number;
  plainLength: number;
  payload: Buffer;
}

/** Packs plain data: LZ4 when that pays off (the payload is then smaller), else raw (util/lz4-pack.ts). */
export function packChunk(plain: Buffer): PackedChunk {
  return {...packData(plain), plainLength: plain.length};
}

/**
 * Compresses when that pays off and returns the header and payload to write, in the chunk
 * format `version` (1, 2, or 3 with `enc`: the keys and the chunk's id, see the module comment).
 */
export function encodeChunk(plain: Buffer, version: number = CHUNK_FORMAT_V2, enc?: {keys: ChunkKeys; id: Uint8Array}): EncodedChunk {
  checkVersion(version, enc);
  return encodePacked(packChunk(plain), version, enc);
}

function checkVersion(version: number, enc: unknown): void {
  if (version !== CHUNK_FORMAT_V1 && version !== CHUNK_FORMAT_V2 && version !== CHUNK_FORMAT_V3) throw new Error(`cannot write chunk format version ${version}`);
  if ((version === CHUNK_FORMAT_V3) !== (enc !== undefined)) throw new Error('chunk format 3 and only it is written with keys');
}

/** The chunk file of a packed chunk (see encodeChunk); the payload is used as it is. */
export function encodePacked(packed: PackedChunk, version: number = CHUNK_FORMAT_V2, enc?: {keys: ChunkKeys; id: Uint8Array}): EncodedChunk {
  checkVersion(version, enc);
  const {flags, plainLength, payload} = packed;
  if (enc) return encrypt(plainLength, flags, payload, enc.keys, enc.id);
  const header = Buffer.alloc(version === CHUNK_FORMAT_V1 ? CHUNK_HEADER_SIZE : CHUNK_HEADER_SIZE_V2);
  CHUNK_MAGIC.copy(header, 0);
  header.writeUInt8(version, 4);
  header.writeUInt8(flags, 5);
  header.writeUInt32LE(plainLength, 8);
  if (version === CHUNK_FORMAT_V1) header.writeUInt32LE(crc32(payload), 12);
  return {header, payload};
}

/** The parts of a chunk file, written one after the other (writev), not joined. */
export interface EncodedChunk {
  header: Buffer;
  /** The payload; format 3: its ciphertext. */
  payload: Buffer;
  /** Format 3: the GCM tag (16 bytes). */
  tail?: Buffer;
}

/** All parts of an encoded chunk in file order. */
export function chunkParts(e: EncodedChunk): Buffer[] {
  return e.tail ? [e.header, e.payload, e.tail] : [e.header, e.payload];
}

function encrypt(plainLength: number, flags: number, payload: Buffer, keys: ChunkKeys, id: Uint8Array): EncodedChunk {
  const head = Buffer.alloc(CHUNK_HEADER_SIZE_V3);
  CHUNK_MAGIC.copy(head, 0);
  head.writeUInt8(CHUNK_FORMAT_V3, 4);
  randomBytes(12).copy(head, 8);
  const inner = Buffer.alloc(8);
  inner.writeUInt8(flags, 0);
  inner.writeUInt32LE(plainLength, 4);
  const c = createCipheriv('aes-256-gcm', keys.enc, head.subarray(8, 20));
  c.setAAD(Buffer.concat([head, id]));
  // The 8 encrypted bytes of flags and length go with the header (a small copy); the payload's
  // ciphertext is its own part; GCM's final() is empty, the tag the last part.
  // The parts are written with writev, never joined (a copy of the chunk less). One update() for
  // the payload: measured on the bench disk, pieces of 16–64 KiB made more page faults, not fewer
  // (the chunk worker collects these buffers early instead, chunk-worker.ts ENCRYPTED_GC_BYTES).
  const header = Buffer.concat([head, c.update(inner)]);
  const body = c.update(payload);
  c.final();
  return {header, payload: body, tail: c.getAuthTag()};
}

export class ChunkDecodeError extends Error {}

/** The largest chunk file that can hold `maxPlain` bytes of plain data (raw payload, the largest overhead: v3). */
export function maxChunkFileSize(maxPlain: number): number {
  return V3_OVERHEAD + maxPlain;
}

/** A format 3 file decrypted: its inner flags, plain length and payload (throws on damage). */
function decrypt(file: Buffer, id: Uint8Array | string | undefined, keys: ChunkKeys | undefined): {flags: number; plainLength: number; payload: Buffer} {
  if (!keys || id === undefined) throw new ChunkDecodeError('an encrypted chunk cannot be read without the repository key and its id');
  if (file.length < V3_OVERHEAD) throw new ChunkDecodeError(`file is ${file.length} bytes, shorter than an encrypted chunk can be`);
  let inner: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', keys.enc, file.subarray(8, 20));
    d.setAAD(Buffer.concat([file.subarray(0, CHUNK_HEADER_SIZE_V3), typeof id === 'string' ? Buffer.from(id, 'hex') : id]));
    d.setAuthTag(file.subarray(file.length - 16));
    inner = d.update(file.subarray(CHUNK_HEADER_SIZE_V3, file.length - 16));
    d.final(); // GCM: checks the tag, adds no bytes
  } catch {
    throw new ChunkDecodeError('the encrypted chunk does not authenticate (damaged, or not the chunk of this id)');
  }
  return {flags: inner.readUInt8(0), plainLength: inner.readUInt32LE(4), payload: inner.subarray(8)};
}

/**
 * Checks a chunk file and returns its plain data. Throws ChunkDecodeError on damage. Version 1
 * files are checked by their CRC; version 2 files by the SHA-256 of the plain data against
 * `id` (the chunk id, 32 bytes or 64 hex digits), which every reader passes. Without `id` a
 * version 2 file is only checked for its structure (the caller hashes, as verify does).
 *
 * `maxPlain` is the repository's chunk size: a chunk file is untrusted input, so a header or an
 * LZ4 size prefix that claims more (an "LZ4 bomb": 20 bytes that claim 4 GiB) is refused before
 * anything is allocated for it, and so is a file larger than such a chunk can be.
 */
export function decodeChunk(file: Buffer, id?: Uint8Array | string, maxPlain: number = MAX_CHUNK_SIZE, keys?: ChunkKeys): Buffer {
  const {version, packed} = openChunkFile(file, id, maxPlain, keys);
  const plain = unpackChunk(packed, maxPlain);
  if (version === CHUNK_FORMAT_V2 && id !== undefined) {
    const want = typeof id === 'string' ? Buffer.from(id, 'hex') : id;
    if (!chunkId(plain).equals(want)) throw new ChunkDecodeError('content checksum mismatch: the SHA-256 of the data differs from the chunk id');
  }
  return plain;
}

/**
 * A chunk file's packed data (flags, plain length, payload) with its structure checked — magic,
 * version, sizes, a version 1 file's CRC, a version 3 file's authentication — but not unpacked:
 * for decodeChunk, and for a copy that hands the packed chunk to another repository, which
 * unpacks it and checks it against its id there (DiskWriter.putPacked). Throws ChunkDecodeError.
 */
export function openChunkFile(file: Buffer, id?: Uint8Array | string, maxPlain: number = MAX_CHUNK_SIZE, keys?: ChunkKeys): {version: number; packed: PackedChunk} {
  if (file.length < CHUNK_HEADER_SIZE_V2) throw new ChunkDecodeError(`file is ${file.length} bytes, shorter than a chunk header`);
  if (file.length > maxChunkFileSize(maxPlain)) throw new ChunkDecodeError(`file is ${file.length} bytes, larger than a chunk of ${maxPlain} bytes can be`);
  if (!file.subarray(0, 4).equals(CHUNK_MAGIC)) throw new ChunkDecodeError('bad magic (not a chunk file)');
  const version = file.readUInt8(4);
  if (version !== CHUNK_FORMAT_V1 && version !== CHUNK_FORMAT_V2 && version !== CHUNK_FORMAT_V3) throw new ChunkDecodeError(`unknown chunk format version ${version}`);
  // A repository reads only its own kind: plain chunks in an encrypted one (or the reverse) are not its chunks.
  if ((version === CHUNK_FORMAT_V3) !== (keys !== undefined)) throw new ChunkDecodeError(`a chunk of format ${version} in ${keys ? 'an encrypted' : 'a plain'} repository`);
  if (version === CHUNK_FORMAT_V3) return {version, packed: decrypt(file, id, keys)};
  const flags = file.readUInt8(5);
  const plainLength = file.readUInt32LE(8);
  if (version === CHUNK_FORMAT_V1) {
    if (file.length < CHUNK_HEADER_SIZE) throw new ChunkDecodeError(`file is ${file.length} bytes, shorter than a chunk header`);
    const payload = file.subarray(CHUNK_HEADER_SIZE);
    if (crc32(payload) !== file.readUInt32LE(12)) throw new ChunkDecodeError('payload checksum mismatch');
    return {version, packed: {flags, plainLength, payload}};
  }
  return {version, packed: {flags, plainLength, payload: file.subarray(CHUNK_HEADER_SIZE_V2)}};
}

/**
 * The plain data of a packed chunk, which is untrusted input (a chunk file, or what a worker on a
 * host sent): unknown flags, a length above `maxPlain` and an LZ4 size prefix that disagrees are
 * refused before anything is allocated for them. Throws ChunkDecodeError.
 */
export function unpackChunk(packed: PackedChunk, maxPlain: number = MAX_CHUNK_SIZE): Buffer {
  const {flags, plainLength, payload} = packed;
  if ((flags & ~FLAG_LZ4) !== 0) throw new ChunkDecodeError(`unknown flags 0x${flags.toString(16)}`);
  if (plainLength > maxPlain) throw new ChunkDecodeError(`header claims ${plainLength} bytes of data, more than the chunk size ${maxPlain}`);
  let plain: Buffer;
  if (flags & FLAG_LZ4) {
    // lz4-napi allocates what the payload's u32 size prefix says before it decodes a byte.
    if (payload.length < 4) throw new ChunkDecodeError('LZ4 payload is shorter than its size prefix');
    const declared = payload.readUInt32LE(0);
    if (declared !== plainLength) throw new ChunkDecodeError(`LZ4 payload claims ${declared} bytes, the header ${plainLength}`);
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

/** The chunk format version of a chunk file's header, or undefined when it is not one. */
export function chunkFileVersion(file: Uint8Array): number | undefined {
  if (file.length < 5 || !CHUNK_MAGIC.equals(file.subarray(0, 4))) return undefined;
  return file[4];
}
