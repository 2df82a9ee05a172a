/**
 * The chunk store: content-addressed chunk files under chunks/<4 hex>/<64 hex>.
 *
 * Contract with garbage collection (gc.ts): a writer that relies on a chunk being present
 * touches it (sets its mtime to now) AFTER registering itself; touching is also how the writer
 * learns that the chunk exists (utimes fails with ENOENT otherwise). A new chunk is written to a
 * temp file, fsynced, and renamed into place; the directories written to are fsynced before
 * the restore point's manifest is written (see writer.ts), so a committed manifest never
 * references a chunk that a power cut could lose.
 */
import {join} from 'node:path';
import {mkdir, readFile, rename, utimes, stat} from 'node:fs/promises';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import {ChunkDecodeError, decodeChunk, encodeChunk} from './chunk-file.js';
import {corrupt, fsyncDir, ioError, writeFileAtomic} from './fsio.js';
import {BAD_MARK, CHUNKS_DIR, chunkPath, chunkPrefix} from './layout.js';

export class ChunkStore {
  readonly dir: string;
  /** Prefix directories known to exist, so a new chunk costs no mkdir. */
  private readonly knownDirs = new Set<string>();

  constructor(readonly root: string) {
    this.dir = join(root, CHUNKS_DIR);
  }

  path(hex: string): string {
    return chunkPath(this.root, hex);
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
   * Writes a chunk durably (temp + fsync + rename). Returns the bytes written and the directory
   * whose entry must be fsynced before a commit; `newDir` when the prefix directory was created.
   */
  async insert(hex: string, plain: Buffer): Promise<{storedBytes: number; dir: string; newDir: boolean; encodeMs: number; writeMs: number}> {
    const p = this.path(hex);
    const dir = join(this.dir, chunkPrefix(hex));
    const t0 = performance.now();
    const {header, payload} = await encodeChunk(plain);
    const t1 = performance.now();
    let newDir = false;
    if (!this.knownDirs.has(dir)) {
      try {
        newDir = (await mkdir(dir, {recursive: true})) !== undefined;
      } catch (err) {
        throw ioError(err, dir, 'creating a chunk directory');
      }
      this.knownDirs.add(dir);
    }
    try {
      await writeFileAtomic(p, [header, payload], `writing chunk ${hex}`);
    } catch (err) {
      // The prefix directory was removed behind our back: create it again next time.
      if (errnoCode(err) === 'ENOENT') this.knownDirs.delete(dir);
      throw err;
    }
    return {storedBytes: header.length + payload.length, dir, newDir, encodeMs: t1 - t0, writeMs: performance.now() - t1};
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
    const raw = await this.loadRaw(hex);
    if (raw === undefined) {
      throw new UserError(`Chunk ${hex} is missing from the repository ${this.root} (needed by ${context}).`, {
        hint: 'Run "vmbackup repo verify <path>" to list every restore point affected; the next backup of the VM stores the chunk again if the data still exists.',
        exitCode: ExitCode.corrupt,
      });
    }
    try {
      return await decodeChunk(raw);
    } catch (err) {
      if (err instanceof ChunkDecodeError) throw corrupt(this.path(hex), `${err.message} (chunk ${hex}, needed by ${context})`);
      throw err;
    }
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
      await fsyncDir(join(this.dir, chunkPrefix(hex)));
      return target;
    }
    return undefined;
  }
}
