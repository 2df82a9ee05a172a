/**
 * The chunk store: content-addressed chunk files under chunks/<prefix>/<64 hex>, the prefix
 * being the first 2 hex digits of the id in format 2 and the first 4 in format 1 (layout.ts).
 * The chunk work itself (hashing, LZ4, checks, the chunk file writes and reads) runs in the
 * chunk worker threads (chunk-workers.ts); this class turns their replies into results and
 * into the same errors as before.
 *
 * Contract with garbage collection (gc.ts): a writer that relies on a chunk being present
 * touches it (sets its mtime to now) AFTER registering itself; touching is also how the writer
 * learns that the chunk exists (utimes fails with ENOENT otherwise). A new chunk is written to a
 * temp file, fsynced, and renamed into place; the directories written to are fsynced before
 * the restore point's manifest is written (see writer.ts), so a committed manifest never
 * references a chunk that a power cut could lose.
 */
import {join} from 'node:path';
import {readFile, rename, utimes, stat} from 'node:fs/promises';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import {ChunkWorkerError, chunkWorkers, type ChunkWorkerPool, type PutReply, type ReadReply} from './chunk-workers.js';
import {MAX_CHUNK_SIZE} from './config-file.js';
import {corrupt, fsyncDir, ioError} from './fsio.js';
import {BAD_MARK, CHUNKS_DIR, chunkPath, chunkPrefix} from './layout.js';

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
  readonly dir: string;

  /** `formatVersion` is the repository's: it decides the layout and the chunk files written. */
  constructor(
    readonly root: string,
    readonly formatVersion: number,
    /** The repository's chunk size: no chunk file may claim more plain data (chunk-file.ts). */
    readonly chunkSize: number = MAX_CHUNK_SIZE,
  ) {
    this.dir = join(root, CHUNKS_DIR);
  }

  path(hex: string): string {
    return chunkPath(this.root, hex, this.formatVersion);
  }

  /** Sets the chunk's mtime to now; false when it does not exist (never stored, swept, or quarantined). */
  async touch(hex: string): Promise<boolean> {
    const p = this.path(hex);
    const now = new Date();
    try {
      await utimes(p, now, now);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(err, p, 'touching a chunk');
    }
  }

  /**
   * Hashes `plain` and makes sure the store has it: touches the chunk when it exists, else
   * writes it durably (temp + fsync + rename) in the repository's chunk format. Runs in a
   * chunk worker; waits for a free slot when the pool is full (back-pressure).
   */
  async put(plain: Uint8Array, opts: {check?: boolean} = {}): Promise<PutResult> {
    try {
      const r = await chunkWorkers().put(this.root, this.formatVersion, plain, opts.check === true);
      return {...r, id: Buffer.from(r.id.buffer, r.id.byteOffset, r.id.byteLength)};
    } catch (err) {
      throw rebuilt(err);
    }
  }

  async syncDirs(dirs: Iterable<string>): Promise<void> {
    for (const d of dirs) await fsyncDir(d);
  }

  /** The raw chunk file, or undefined when it does not exist. */
  async loadRaw(hex: string): Promise<Buffer | undefined> {
    const p = this.path(hex);
    try {
      return await readFile(p);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw ioError(err, p, `reading chunk ${hex}`);
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
      return await chunkWorkers().read(this.path(hex), hex, {maxPlain: this.chunkSize, ...opts});
    } catch (err) {
      throw rebuilt(err);
    }
  }

  /** The reply of a chunk that is there and sound, else the error a reader raises. */
  private found(r: ReadReply, hex: string, context: string): Extract<ReadReply, {status: 'ok'}> {
    if (r.status === 'missing') {
      throw new UserError(`Chunk ${hex} is missing from the repository ${this.root} (needed by ${context}).`, {
        hint: 'Run "vmbackup repo verify <path>" to list every restore point affected; the next backup of the VM stores the chunk again if the data still exists.',
        exitCode: ExitCode.corrupt,
      });
    }
    if (r.status === 'damaged') throw corrupt(this.path(hex), `${r.detail} (chunk ${hex}, needed by ${context})`);
    return r;
  }

  /** Moves a damaged chunk aside to <id>.bad[.N] so that the next backup writes it again. */
  async quarantine(hex: string): Promise<string | undefined> {
    const p = this.path(hex);
    for (let n = 0; n < 100; n++) {
      const target = `${p}${BAD_MARK}${n === 0 ? '' : `.${n}`}`;
      try {
        await stat(target);
        continue;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError(err, target, 'quarantining a chunk');
      }
      try {
        await rename(p, target);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw ioError(err, p, `quarantining chunk ${hex}`);
      }
      await fsyncDir(join(this.dir, chunkPrefix(hex, this.formatVersion)));
      return target;
    }
    return undefined;
  }
}
