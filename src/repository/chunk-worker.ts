/**
 * The entry of a chunk worker thread (see chunk-workers.ts): per request, the CPU and file work
 * on one chunk, synchronously, so that the main thread is left to I/O and coordination.
 *
 *   put:  SHA-256 of the plain data (HMAC-SHA-256 with the keys of an encrypted repository); touch the chunk file (utimes: it exists → reused, and GC
 *         keeps it); else decide compressibility, LZ4, write temp (+ fsync unless the backend
 *         syncs the file system at commit, storage/local.ts) + rename.
 *   read: read the chunk file, check it (CRC for format 1, SHA-256 = id for format 2, or always
 *         the SHA-256 with `verify`), decompress; the plain data goes back transferred.
 * Failures go back as data (code, message, file, action); the pool turns them into the same
 * errors the main thread raised before (ENOSPC → UserError noSpace, and so on).
 */
import {closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, utimesSync, writevSync} from 'node:fs';
import {dirname} from 'node:path';
import {parentPort, workerData} from 'node:worker_threads';
import {ChunkDecodeError, chunkId, chunkParts, decodeChunk, encodeChunk, encodePacked, maxChunkFileSize, unpackChunk, type PackedChunk} from './chunk-file.js';
import type {ChunkKeys} from './crypto.js';
import {FOREIGN_CHUNK_REFUSED, type WorkerFailure, type WorkerInit, type WorkerReply, type WorkerRequest} from './chunk-workers.js';
import {exposeGc} from '../util/expose-gc.js';
import {tempName} from './fsio.js';
import {chunkPath} from './layout.js';

const init = workerData as WorkerInit;

/** Chunk directories this thread knows to exist, so a new chunk costs no mkdir. */
const knownDirs = new Set<string>();

class IoFailure extends Error {
  constructor(
    readonly err: unknown,
    readonly file: string,
    readonly action: string,
  ) {
    super((err as Error)?.message ?? String(err));
  }
}

function code(err: unknown): string | undefined {
  const c = (err as {code?: unknown} | undefined)?.code;
  return typeof c === 'string' ? c : undefined;
}

/**
 * Chunk files are read into this buffer, reused, so a read allocates only what it sends back
 * (a worker's garbage would otherwise pile up until its next GC, in every thread).
 */
let scratch = Buffer.allocUnsafeSlow(init.slotSize + 64);

function readChunkFile(path: string, maxPlain: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > maxChunkFileSize(maxPlain)) throw new ChunkDecodeError(`file is ${size} bytes, larger than a chunk of ${maxPlain} bytes can be`);
    if (size > scratch.length) scratch = Buffer.allocUnsafeSlow(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, scratch, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return scratch.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * The plain data in an ArrayBuffer of its own, allocated by V8, to transfer. Always a copy: a
 * view of `scratch` must not leave, and lz4-napi's output is memory whose finalizer belongs to
 * this thread (it is freed here, by the GC below, not by the thread that ends up holding it).
 */
function ownBuffer(b: Buffer): {data: ArrayBuffer; offset: number; length: number} {
  const copy = new ArrayBuffer(b.length);
  new Uint8Array(copy).set(b);
  return {data: copy, offset: 0, length: b.length};
}

/** Hash and encode only: the chunk file's bytes go back for the main thread to store. */
function encodeOnly(version: number, plain: Buffer, keys: ChunkKeys | undefined, packed?: PackedChunk): {reply: WorkerReply; transfer: ArrayBuffer[]} {
  const t0 = performance.now();
  const id = chunkId(plain, keys?.mac);
  const t1 = performance.now();
  const parts = chunkParts(encode(plain, version, keys, id, packed));
  const encoded = new ArrayBuffer(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    new Uint8Array(encoded).set(p, at);
    at += p.length;
  }
  const t2 = performance.now();
  return {
    reply: {kind: 'put', id: new Uint8Array(id), isNew: true, storedBytes: encoded.byteLength, dir: '', newDir: false, hashMs: t1 - t0, encodeMs: t2 - t1, writeMs: 0, encoded},
    transfer: [encoded],
  };
}

/** The chunk file's parts: from the plain data, or around a payload packed elsewhere (already checked). */
function encode(plain: Buffer, version: number, keys: ChunkKeys | undefined, id: Buffer, packed: PackedChunk | undefined) {
  const enc = keys ? {keys, id} : undefined;
  return packed ? encodePacked(packed, version, enc) : encodeChunk(plain, version, enc);
}

function put(root: string, version: number, plain: Buffer, check: boolean, fsync: boolean, keys: ChunkKeys | undefined, packed?: PackedChunk): WorkerReply {
  const t0 = performance.now();
  const id = chunkId(plain, keys?.mac);
  const hex = id.toString('hex');
  const t1 = performance.now();
  const path = chunkPath(root, hex, version);
  const now = new Date();
  let healed = false;
  if (check && existsSync(path) && !holds(path, hex, plain, keys)) {
    // Known bad: set it aside (verify's quarantine name) and write it again from the data in hand.
    quarantineSync(path);
    healed = true;
  }
  try {
    if (!healed) {
      utimesSync(path, now, now);
      return {kind: 'put', id: new Uint8Array(id), isNew: false, storedBytes: 0, dir: dirname(path), newDir: false, hashMs: t1 - t0, encodeMs: 0, writeMs: performance.now() - t1};
    }
  } catch (err) {
    if (code(err) !== 'ENOENT') throw new IoFailure(err, path, 'touching a chunk');
  }
  const t2 = performance.now();
  const parts = chunkParts(encode(plain, version, keys, id, packed));
  const t3 = performance.now();
  const dir = dirname(path);
  let newDir = false;
  if (!knownDirs.has(dir)) {
    try {
      newDir = mkdirSync(dir, {recursive: true, mode: 0o700}) !== undefined;
    } catch (err) {
      throw new IoFailure(err, dir, 'creating a chunk directory');
    }
    knownDirs.add(dir);
  }
  const tmp = tempName(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    writevSync(fd, parts);
    if (fsync) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* not created */
    }
    // The chunk directory was removed behind our back: create it again next time.
    if (code(err) === 'ENOENT') knownDirs.delete(dir);
    throw new IoFailure(err, path, `writing chunk ${hex}`);
  }
  return {
    kind: 'put',
    id: new Uint8Array(id),
    isNew: true,
    ...(healed ? {healed: true} : {}),
    storedBytes: parts.reduce((n, p) => n + p.length, 0),
    dir,
    newDir,
    hashMs: t1 - t0,
    encodeMs: t3 - t2,
    writeMs: t2 - t1 + (performance.now() - t3),
  };
}

/** Whether the chunk file at `path` decodes to exactly `plain` (an unreadable file does not). */
function holds(path: string, hex: string, plain: Buffer, keys: ChunkKeys | undefined): boolean {
  try {
    return decodeChunk(readChunkFile(path, plain.length), hex, plain.length, keys).equals(plain);
  } catch (err) {
    if (err instanceof ChunkDecodeError || code(err) === 'EIO' || code(err) === 'ENOENT') return false;
    throw new IoFailure(err, path, `checking chunk ${hex}`);
  }
}

/** Renames a damaged chunk file to <id>.bad[.N] (the first free name), as verify does. */
function quarantineSync(path: string): void {
  for (let n = 0; n < 100; n++) {
    const target = `${path}.bad${n === 0 ? '' : `.${n}`}`;
    if (existsSync(target)) continue;
    try {
      renameSync(path, target);
    } catch (err) {
      if (code(err) !== 'ENOENT') throw new IoFailure(err, path, 'quarantining a damaged chunk');
    }
    return;
  }
}

function read(path: string, hex: string, verify: boolean, want: boolean, slot: number | undefined, maxPlain: number, keys: ChunkKeys | undefined, fetched?: ArrayBuffer): {reply: WorkerReply; transfer: ArrayBuffer[]} {
  let raw: Buffer;
  try {
    if (fetched !== undefined && fetched.byteLength > maxChunkFileSize(maxPlain)) {
      throw new ChunkDecodeError(`file is ${fetched.byteLength} bytes, larger than a chunk of ${maxPlain} bytes can be`);
    }
    raw = fetched !== undefined ? Buffer.from(fetched) : readChunkFile(path, maxPlain);
  } catch (err) {
    if (code(err) === 'ENOENT') return {reply: {kind: 'read', status: 'missing'}, transfer: []};
    if (err instanceof ChunkDecodeError) return {reply: {kind: 'read', status: 'damaged', detail: err.message}, transfer: []};
    throw new IoFailure(err, path, `reading chunk ${hex}`);
  }
  let plain: Buffer;
  try {
    plain = decodeChunk(raw, hex, maxPlain, keys);
    if (verify && chunkId(plain, keys?.mac).toString('hex') !== hex) throw new ChunkDecodeError(`content does not match its ${keys ? 'HMAC-SHA-256' : 'SHA-256'} id`);
  } catch (err) {
    if (err instanceof ChunkDecodeError) return {reply: {kind: 'read', status: 'damaged', detail: err.message}, transfer: []};
    throw err;
  }
  if (!want) return {reply: {kind: 'read', status: 'ok', plainLength: plain.length}, transfer: []};
  if (slot !== undefined && plain.length <= init.slotSize) {
    // The caller's slot: the pool copies it out to the caller's buffer, nothing is allocated.
    new Uint8Array(init.slots, slot * init.slotSize, plain.length).set(plain);
    return {reply: {kind: 'read', status: 'ok', plainLength: plain.length, inSlot: true}, transfer: []};
  }
  const own = ownBuffer(plain);
  return {reply: {kind: 'read', status: 'ok', plainLength: plain.length, ...own}, transfer: [own.data]};
}

/** A chunk packed by a worker on a host: untrusted until its data hashes to the id it claims. */
class ForeignChunkError extends Error {}

function unpackClaimed(packed: PackedChunk, claimed: Uint8Array, maxPlain: number, keys: ChunkKeys | undefined): Buffer {
  let plain: Buffer;
  try {
    plain = unpackChunk(packed, maxPlain);
  } catch (err) {
    throw new ForeignChunkError(`it does not unpack: ${(err as Error).message}`);
  }
  if (!chunkId(plain, keys?.mac).equals(claimed)) throw new ForeignChunkError(`its data does not hash to the id it was sent with (${Buffer.from(claimed).toString('hex')})`);
  return plain;
}

function failure(err: unknown): WorkerFailure {
  if (err instanceof ForeignChunkError) return {kind: 'failure', message: err.message, code: FOREIGN_CHUNK_REFUSED};
  if (err instanceof IoFailure) {
    const c = code(err.err);
    return {kind: 'failure', message: err.message, file: err.file, action: err.action, ...(c !== undefined ? {code: c} : {})};
  }
  return {kind: 'failure', message: err instanceof Error ? (err.stack ?? err.message) : String(err)};
}

/**
 * lz4-napi's output buffers are freed by finalizers that run only when this thread's event loop
 * turns, and only after a GC that V8 does not start on its own (it does not see that memory):
 * a thread that compressed chunk after chunk, with the next request always waiting, grew the
 * process by hundreds of MiB. So requests are queued and handled one per loop turn (the
 * MessagePort would otherwise deliver hundreds in one go), and a minor GC runs after every
 * LZ4_GC_BYTES of LZ4 output (a scavenge of this small heap costs well under a millisecond).
 */
const LZ4_GC_BYTES = 8 << 20;
/**
 * An encrypted repository's chunks allocate their ciphertext besides LZ4's output (chunk-file.ts
 * encrypt()): collected after every 256 KiB of chunk data, that memory is reused instead of going
 * back to the kernel and being faulted in again. Measured on the bench disk (compiled, 830 MiB of
 * data): every 8 MiB 190k page faults and +50 % CPU over a plain repository, every 1 MiB 75k,
 * every 256 KiB 67k and +15 % (scrypt included) — the page faults had cost more than AES-GCM.
 */
const ENCRYPTED_GC_BYTES = 256 << 10;
const gcWeight = (encrypted: boolean) => (encrypted ? LZ4_GC_BYTES / ENCRYPTED_GC_BYTES : 1);
let lz4Bytes = 0;
const collect = exposeGc();

const queue: WorkerRequest[] = [];
let scheduled = false;

function handle(msg: WorkerRequest): void {
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    if (msg.op === 'put') {
      const given = msg.slot !== undefined ? Buffer.from(init.slots, msg.slot * init.slotSize, msg.length) : Buffer.from(msg.data!, 0, msg.length);
      let packed: PackedChunk | undefined = msg.packed ? {flags: msg.packed.flags, plainLength: msg.packed.plainLength, payload: given} : undefined;
      const plain = packed ? unpackClaimed(packed, msg.packed!.id, msg.packed!.maxPlain, msg.keys) : given;
      // LZ4 that did not make it smaller is stored raw: a chunk file is never larger than raw data (chunk-file.ts maxChunkFileSize).
      if (packed && packed.payload.length >= plain.length) packed = {flags: 0, plainLength: plain.length, payload: plain};
      if (msg.encodeOnly) ({reply, transfer} = encodeOnly(msg.version, plain, msg.keys, packed));
      else reply = put(msg.root, msg.version, plain, msg.check === true, msg.fsync !== false, msg.keys, packed);
      if (reply.kind === 'put' && reply.isNew) lz4Bytes += plain.length * gcWeight(msg.keys !== undefined);
    } else if (msg.op === 'read') {
      ({reply, transfer} = read(msg.path, msg.hex, msg.verify, msg.want, msg.slot, msg.maxPlain, msg.keys, msg.raw));
      lz4Bytes += init.slotSize * gcWeight(msg.keys !== undefined);
    } else {
      // Tests only: a worker that dies while requests are queued on it.
      process.exit(msg.code);
    }
  } catch (err) {
    reply = failure(err);
  }
  parentPort!.postMessage({seq: msg.seq, reply}, transfer);
  if (collect && lz4Bytes >= LZ4_GC_BYTES) {
    lz4Bytes = 0;
    collect({type: 'minor'});
  }
}

function drain(): void {
  const msg = queue.shift();
  if (msg) handle(msg);
  if (queue.length > 0) setImmediate(drain);
  else scheduled = false;
}

parentPort!.on('message', (msg: WorkerRequest) => {
  queue.push(msg);
  if (!scheduled) {
    scheduled = true;
    setImmediate(drain);
  }
});
