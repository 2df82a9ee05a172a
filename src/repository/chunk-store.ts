/**
 * The chunk store: chunk encoding on top of a storage backend. A chunk is stored under
 * chunks/<prefix>/<64 hex> (the prefix: the first 2 hex digits of the id in format 2, 4 in
 * format 1; layout.ts). The encoding (SHA-256 id, LZ4, the chunk file format, chunk-file.ts) runs
 * in the chunk worker threads (chunk-workers.ts); where the bytes live is the backend's
 * (storage/backend.ts). A backend whose objects are files the threads can reach (the local
 * directory) lets them do the chunk file I/O too; for any other the threads encode and decode
 * and this class stores and fetches through the backend.
 *
 * Contract with garbage collection (gc.ts): a writer that relies on a chunk being present
 * touches it (sets its modification time to now) AFTER registering itself; touching is also how
 * the writer learns that the chunk exists. A new chunk is stored atomically; the backend's
 * sync() before the manifest is written makes it durable (writer.ts), so a committed manifest
 * never references a chunk that a power cut could lose. On the local directory the chunk files
 * are not fsynced one by one (deferWorkerSync): a crash of the machine can leave a dead writer's
 * new files empty or short, and interrupted.ts checks them before a writer or GC goes on.
 */
import {parallelFor} from '../util/parallel-for.js';
import {ExitCode, UserError} from '../util/errors.js';
import {ChunkWorkerError, chunkWorkers, FOREIGN_CHUNK_REFUSED, type ChunkWorkerPool, type PutReply, type PutRequest, type ReadReply} from './chunk-workers.js';
import {ChunkDecodeError, chunkId, maxChunkFileSize, openChunkFile, type PackedChunk} from './chunk-file.js';
import {MAX_CHUNK_SIZE} from './config-file.js';
import type {ChunkKeys} from './crypto.js';
import {corrupt, ioError} from './fsio.js';
import {BAD_MARK, CHUNK_NAME, CHUNKS_DIR, chunkKey, isChunkPrefix} from './layout.js';
import type {StorageBackend} from './storage/backend.js';

/** What a put did (see PutReply); the id as a Buffer on this thread. */
export type PutResult = Omit<PutReply, 'kind' | 'id'> & {id: Buffer};

/** A worker's failure as the error the main thread gave before the work moved to threads. */
function rebuilt(err: unknown): unknown {
  if (err instanceof ChunkWorkerError && err.file !== undefined && err.action !== undefined) {
    const e = Object.assign(new Error(err.message), err.code !== undefined ? {code: err.code} : {});
    return ioError(e, err.file, err.action);
  }
  return err;
}

export class ChunkStore {
  /** `formatVersion` is the repository's: it decides the layout and the chunk files written. */
  constructor(
    readonly backend: StorageBackend,
    readonly formatVersion: number,
    /** The repository's chunk size: no chunk file may claim more plain data (chunk-file.ts). */
    readonly chunkSize: number = MAX_CHUNK_SIZE,
    /** An encrypted repository's keys (crypto.ts): keyed ids, chunk format 3. */
    readonly keys?: ChunkKeys,
  ) {}

  key(hex: string): string {
    return chunkKey(hex, this.formatVersion);
  }

  /**
   * The ids of the stored chunks, one prefix directory at a time (temp files, quarantined copies
   * and anything else a directory may hold are left out).
   */
  async *idBatches(): AsyncGenerator<string[]> {
    for (const prefix of await this.backend.list(CHUNKS_DIR)) {
      if (!prefix.dir || !isChunkPrefix(prefix.name, this.formatVersion)) continue;
      yield (await this.backend.list(`${CHUNKS_DIR}/${prefix.name}`)).filter((n) => !n.dir && CHUNK_NAME.test(n.name)).map((n) => n.name);
    }
  }

  /**
   * Which of `wanted` (hex ids) the store holds: one look-up each for a few, else the listing of
   * the prefix directories they fall in (an object store answers a thousand names per request).
   */
  async presentAmong(wanted: Set<string>): Promise<Set<string>> {
    const present = new Set<string>();
    if (wanted.size === 0) return present;
    const list = [...wanted];
    if (list.length <= 512) {
      await parallelFor(list.length, 32, async (i) => {
        if (await this.backend.stat(this.key(list[i]!))) present.add(list[i]!);
      });
      return present;
    }
    const dirs = [...new Set(list.map((hex) => this.key(hex).split('/').slice(0, -1).join('/')))];
    await parallelFor(dirs.length, 16, async (i) => {
      const dir = dirs[i]!;
      for (const e of await this.backend.list(dir)) if (!e.dir && wanted.has(e.name)) present.add(e.name);
    });
    return present;
  }

  /** The chunk as a message names it (the local backend: its file path). */
  path(hex: string): string {
    return this.backend.describe(this.key(hex));
  }

  /** Sets the chunk's modification time to now; false when it does not exist (never stored, swept, or quarantined). */
  touch(hex: string): Promise<boolean> {
    return this.backend.touch(this.key(hex));
  }

  /**
   * Hashes `plain` and makes sure the store has it: touches the chunk when it exists, else
   * stores it in the repository's chunk format. Waits for a free worker slot when the pool is
   * full (back-pressure). With `check`, an existing chunk is first checked against the data and
   * replaced when it does not hold it (BeginOptions.checkReused).
   */
  async put(plain: Uint8Array, opts: {check?: boolean; baseId?: Buffer} = {}): Promise<PutResult> {
    return this.store(plain, opts);
  }

  /**
   * Like put(), for a chunk that a worker on a host hashed and packed (src/worker/): `payload` is
   * untrusted, so a chunk worker thread unpacks it and checks that it hashes to `id` before it is
   * stored as it came (no second compression). A chunk that does not is refused with a UserError
   * that names `from`; nothing is stored.
   */
  async putPacked(chunk: {id: Buffer; flags: number; plainLength: number; payload: Uint8Array}, from: string, hint?: string): Promise<PutResult> {
    const packed = {flags: chunk.flags, plainLength: chunk.plainLength, id: new Uint8Array(chunk.id), maxPlain: this.chunkSize};
    try {
      return await this.store(chunk.payload, {}, packed);
    } catch (err) {
      if (err instanceof ChunkWorkerError && err.code === FOREIGN_CHUNK_REFUSED) {
        throw new UserError(`${from} sent a chunk that was refused: ${err.message}.`, {
          hint: hint ?? 'Nothing of it was stored. Check the host (its memory, its disks, who else can run processes there) and run the backup again; it falls back to the appliance\'s own data mover if the worker cannot be used.',
          exitCode: ExitCode.platformFailed,
        });
      }
      throw err;
    }
  }

  private async store(plain: Uint8Array, opts: {check?: boolean; baseId?: Buffer}, packed?: NonNullable<PutRequest['packed']>): Promise<PutResult> {
    const root = this.backend.workerRoot;
    try {
      if (root !== undefined) {
        const fsync = this.backend.deferWorkerSync !== true;
        const keys = this.keys ? {keys: this.keys} : {};
        const r = packed
          ? await chunkWorkers().putPacked(root, this.formatVersion, plain, packed, {fsync, ...keys})
          : await chunkWorkers().put(root, this.formatVersion, plain, {check: opts.check === true, fsync, ...keys});
        if (r.isNew) this.backend.noteWorkerWrite?.(r.dir, r.newDir);
        return {...r, id: Buffer.from(r.id.buffer, r.id.byteOffset, r.id.byteLength)};
      }
      // The held base's chunk at this place (the writer knows it exists): when the data hashes to
      // it, nothing is compressed, stored or touched (an unchanged chunk of a copy or an active full).
      if (opts.baseId && opts.check !== true) {
        const h0 = performance.now();
        const id = chunkId(plain, this.keys?.mac);
        if (id.equals(opts.baseId)) return {id, isNew: false, storedBytes: 0, dir: '', newDir: false, hashMs: performance.now() - h0, encodeMs: 0, writeMs: 0};
      }
      const r = await chunkWorkers().encode(this.formatVersion, plain, this.keys, packed);
      const id = Buffer.from(r.id.buffer, r.id.byteOffset, r.id.byteLength);
      const hex = id.toString('hex');
      const key = this.key(hex);
      const t0 = performance.now();
      let healed = false;
      if (opts.check === true && (await this.backend.stat(key))) {
        const got = await this.check(hex, {verify: true, want: true});
        const same = got.status === 'ok' && got.plainLength === plain.length && Buffer.from(got.data!, got.offset ?? 0, got.length ?? got.plainLength).equals(plain);
        if (!same) healed = (await this.quarantine(hex)) !== undefined;
      }
      const base = {...r, id, dir: '', newDir: false};
      delete (base as {encoded?: unknown}).encoded;
      // Where a touch rewrites the object, ask first: a new chunk then costs no failed touch.
      const exists = this.backend.expensiveTouch ? (await this.backend.stat(key)) !== undefined : true;
      if (!healed && exists && (await this.backend.touch(key))) {
        return {...base, isNew: false, storedBytes: 0, writeMs: performance.now() - t0};
      }
      // Where the look-up above found it absent, the backend need not look again (a chunk's key is its content).
      const wrote = await this.backend.putIfAbsent(key, [new Uint8Array(r.encoded)], {seenAbsent: this.backend.expensiveTouch === true && !exists});
      return {...base, isNew: wrote, ...(healed ? {healed: true} : {}), storedBytes: wrote ? r.encoded.byteLength : 0, writeMs: performance.now() - t0};
    } catch (err) {
      throw rebuilt(err);
    }
  }

  /**
   * The plain data of a chunk for a reader; `context` names the restore point and disk for the
   * error a missing or damaged chunk raises.
   */
  async read(hex: string, context: string): Promise<Buffer> {
    const r = this.found(await this.check(hex, {want: true}), hex, context);
    return Buffer.from(r.data!, r.offset ?? 0, r.length ?? r.plainLength);
  }

  /**
   * Like read(), but copies the plain bytes from offset `from` into `into` (as many as it holds)
   * without allocating per chunk; returns the chunk's plain length for the caller to check.
   */
  async readInto(hex: string, context: string, into: Uint8Array, from: number): Promise<number> {
    return this.found(await this.check(hex, {want: true, into, from}), hex, context).plainLength;
  }

  /**
   * Reads and checks a chunk in a worker: missing, damaged (with the detail), or ok with its
   * plain length and, with `want`, its data (or, with `into`, the bytes from `from` copied
   * there). `verify` checks the SHA-256 in either format.
   */
  async check(hex: string, opts: Parameters<ChunkWorkerPool['read']>[2] = {}): Promise<ReadReply> {
    try {
      if (this.backend.workerRoot !== undefined) {
        return await chunkWorkers().read(this.path(hex), hex, {maxPlain: this.chunkSize, ...opts, ...(this.keys ? {keys: this.keys} : {})});
      }
      const raw = await this.fetch(hex);
      if (!Buffer.isBuffer(raw)) return raw;
      return await chunkWorkers().read(this.path(hex), hex, {maxPlain: this.chunkSize, ...opts, raw, ...(this.keys ? {keys: this.keys} : {})});
    } catch (err) {
      throw rebuilt(err);
    }
  }

  /**
   * A chunk as it is stored, packed (chunk-file.ts openChunkFile: structure checked, not
   * unpacked), for a copy that hands it to another repository's putPacked, which unpacks it and
   * checks it against its id there. A missing or malformed chunk raises the reader's error.
   */
  async readPacked(hex: string, context: string): Promise<PackedChunk> {
    const raw = await this.fetch(hex);
    if (!Buffer.isBuffer(raw)) throw this.failed(raw, hex, context);
    try {
      return openChunkFile(raw, hex, this.chunkSize, this.keys).packed;
    } catch (err) {
      if (err instanceof ChunkDecodeError) throw this.failed({kind: 'read', status: 'damaged', detail: err.message}, hex, context);
      throw err;
    }
  }

  /** A chunk file's bytes through the backend (bounded by what a chunk can be), or why there are none. */
  private async fetch(hex: string): Promise<Buffer | Extract<ReadReply, {status: 'missing' | 'damaged'}>> {
    try {
      const raw = await this.backend.get(this.key(hex), {max: maxChunkFileSize(this.chunkSize), what: 'chunk'});
      return raw ?? {kind: 'read', status: 'missing'};
    } catch (err) {
      if (err instanceof UserError && err.exitCode === ExitCode.corrupt) return {kind: 'read', status: 'damaged', detail: err.message};
      throw err;
    }
  }

  /** The reply of a chunk that is there and sound, else the error a reader raises. */
  private found(r: ReadReply, hex: string, context: string): Extract<ReadReply, {status: 'ok'}> {
    if (r.status === 'missing' || r.status === 'damaged') throw this.failed(r, hex, context);
    return r;
  }

  /** The error a reader raises for a chunk that is missing or damaged. */
  private failed(r: Extract<ReadReply, {status: 'missing' | 'damaged'}>, hex: string, context: string): Error {
    if (r.status === 'damaged') return corrupt(this.path(hex), `${r.detail} (chunk ${hex}, needed by ${context})`);
    return new UserError(`Chunk ${hex} is missing from the repository ${this.backend.location} (needed by ${context}).`, {
      hint: 'Run "vmbackup repo verify <path>" to list every restore point affected; the next backup of the VM stores the chunk again if the data still exists.',
      exitCode: ExitCode.corrupt,
    });
  }


  /** Moves a damaged chunk aside to <id>.bad[.N] so that the next backup writes it again; where it went. */
  async quarantine(hex: string): Promise<string | undefined> {
    const key = this.key(hex);
    for (let n = 0; n < 100; n++) {
      const target = `${key}${BAD_MARK}${n === 0 ? '' : `.${n}`}`;
      if (await this.backend.stat(target)) continue;
      if (!(await this.backend.rename(key, target))) return undefined;
      await this.backend.sync();
      return this.backend.describe(target);
    }
    return undefined;
  }
}
