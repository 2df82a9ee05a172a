/**
 * The local directory backend: every key is a file under the repository's directory.
 *
 * How it keeps the contract (backend.ts):
 *  - atomic: a file is written to a temp name beside its final one, fsynced, then renamed
 *    (fsio.ts writeFileAtomic); putIfAbsent links the temp file to the final name, which fails
 *    when the name exists, so it never replaces;
 *  - durable: each write, delete and rename notes its directory; sync() fsyncs those (and
 *    waits for syncs other callers started, so no caller returns before what it wrote is safe);
 *  - chunk files (written by the chunk worker threads, workerRoot): not fsynced one by one; the
 *    first sync() after them syncs the whole file system once (syncfs(2), through coreutils'
 *    `sync -f`), which Proxmox Backup Server also does by default ("sync level filesystem").
 *    VMBACKUP_CHUNK_SYNC=file brings back an fsync per chunk file. The writer records the mode
 *    and the boot in its registration, so that the files of a writer that a crash of the machine
 *    stopped are checked before they are trusted (interrupted.ts);
 *  - deleteIfOlder renames the file aside, then judges the mtime of the renamed file (a writer
 *    can no longer change it) and links it back when it was touched meanwhile; a crash in
 *    between leaves the only copy under a temp name, which sweepLeftovers puts back;
 *  - never outside the directory: keys are checked, and a symbolic link is neither followed
 *    nor read (a planted link is listed as neither object nor directory, refused by get, and
 *    deleteTree leaves it alone with an error);
 *  - 0700 directories and 0600 files whatever the umask (docs/security.md);
 *  - locks are lock files owned by a process of this host (lock.ts).
 */
import {execFile} from 'node:child_process';
import {link, lstat, mkdir, open, readdir, rename, rm, statfs, unlink, utimes} from 'node:fs/promises';
import {promisify} from 'node:util';
import {dirname, join, resolve} from 'node:path';
import {ExitCode, UserError, errnoCode} from '../../util/errors.js';
import {corrupt, fsyncDir, ioError, readFileCapped, TEMP_MARK, tempName, writeFileAtomic, writeNewFile} from '../fsio.js';
import {acquireLock, isAlive} from '../lock.js';
import {assertKey, type ListEntry, type Lock, type LockOptions, type ObjectInfo, type Owner, type PutOptions, type Recover, type StorageBackend} from './backend.js';

export class LocalDirectoryBackend implements StorageBackend {
  readonly location: string;
  readonly workerRoot: string;
  /** Directories with entries not yet fsynced. */
  private readonly dirty = new Set<string>();
  /** fsyncs under way: a sync() waits for those others started too. */
  private readonly syncing = new Set<Promise<void>>();
  /** Directories known to exist, so a put costs no mkdir. */
  private readonly known = new Set<string>();
  readonly deferWorkerSync: boolean;
  /** Chunk files were written without fsync since the last sync(). */
  private unsyncedFiles = false;

  constructor(root: string) {
    this.location = resolve(root);
    this.workerRoot = this.location;
    this.deferWorkerSync = process.env.VMBACKUP_CHUNK_SYNC !== 'file';
  }

  path(key: string): string {
    assertKey(key);
    return join(this.location, key);
  }

  describe(key: string): string {
    return this.path(key);
  }

  noteWorkerWrite(dir: string, newDir: boolean): void {
    this.dirty.add(dir);
    if (newDir) this.dirty.add(dirname(dir));
    if (this.deferWorkerSync) this.unsyncedFiles = true;
  }

  async syncWorkerWrites(): Promise<void> {
    try {
      await promisify(execFile)('sync', ['--file-system', '--', this.location], {timeout: 30 * 60_000});
    } catch (err) {
      const detail = String((err as {stderr?: unknown}).stderr ?? '').trim() || (err as Error).message;
      throw new UserError(`The file system holding ${this.location} could not write its data to disk: ${detail}.`, {
        hint: 'The disk or its file system reported an error (see `dmesg`); nothing new was committed, and restore points committed before are unaffected. Fix the disk, then run the backup again.',
        exitCode: /no space/i.test(detail) ? ExitCode.noSpace : ExitCode.ioFailed,
        cause: err,
      });
    }
  }

  async get(key: string, opts: {max: number; what: string}): Promise<Buffer | undefined> {
    const p = this.path(key);
    try {
      return await readFileCapped(p, opts.max, opts.what);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      if (code === undefined) throw err;
      throw ioError(err, p, `reading the ${opts.what}`);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const p = this.path(key);
    try {
      const s = await lstat(p);
      return s.isFile() ? {size: s.size, modifiedMs: s.mtimeMs} : undefined;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw ioError(err, p, 'reading file times');
    }
  }

  async list(dir: string): Promise<ListEntry[]> {
    const p = dir === '' ? this.location : this.path(dir);
    try {
      const out: ListEntry[] = [];
      for (const d of await readdir(p, {withFileTypes: true})) {
        // Temp files are this backend's business (sweepLeftovers); links are never followed.
        if (d.name.includes(TEMP_MARK) || d.name.includes(STALE_MARK)) continue;
        if (d.isDirectory()) out.push({name: d.name, dir: true});
        else if (d.isFile()) out.push({name: d.name, dir: false});
      }
      return out;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw ioError(err, p, 'listing a directory');
    }
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.known.has(dir)) return;
    try {
      const made = await mkdir(dir, {recursive: true, mode: 0o700});
      if (made !== undefined) {
        // Every directory created, and the one that holds the first of them, gets an entry.
        for (let d = dir; d.length >= made.length; d = dirname(d)) this.dirty.add(dirname(d));
      }
    } catch (err) {
      throw ioError(err, dir, 'creating a directory');
    }
    this.known.add(dir);
  }

  /** Creates the directory `dir` (a new repository's chunks/ and points/; made durable by sync()). */
  async makeDir(dir: string): Promise<void> {
    await this.ensureDir(this.path(dir));
  }

  async put(key: string, parts: Uint8Array[], opts: PutOptions = {}): Promise<void> {
    const p = this.path(key);
    await this.ensureDir(dirname(p));
    await writeFileAtomic(p, parts, opts.what !== undefined ? `writing ${opts.what}` : `writing ${key}`, opts.beforeVisible ? {beforeRename: opts.beforeVisible} : {});
    this.dirty.add(dirname(p));
  }

  async putIfAbsent(key: string, parts: Uint8Array[]): Promise<boolean> {
    const p = this.path(key);
    if (await this.stat(key)) return false;
    await this.ensureDir(dirname(p));
    const tmp = tempName(p);
    try {
      await writeNewFile(tmp, parts);
      await link(tmp, p);
      this.dirty.add(dirname(p));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw ioError(err, p, `writing ${key}`);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async append(key: string, text: string): Promise<void> {
    const p = this.path(key);
    await this.ensureDir(dirname(p));
    const fh = await open(p, 'a', 0o600).catch((err: unknown) => {
      throw ioError(err, p, `appending to ${key}`);
    });
    try {
      await fh.appendFile(text);
    } catch (err) {
      throw ioError(err, p, `appending to ${key}`);
    } finally {
      await fh.close();
    }
  }

  async touch(key: string): Promise<boolean> {
    const p = this.path(key);
    const now = new Date();
    try {
      await utimes(p, now, now);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(err, p, `touching ${key}`);
    }
  }

  async delete(key: string): Promise<boolean> {
    const p = this.path(key);
    try {
      await unlink(p);
      this.dirty.add(dirname(p));
      return true;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw ioError(err, p, `removing ${key}`);
    }
  }

  async deleteTree(dir: string): Promise<void> {
    const p = this.path(dir);
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw ioError(err, p, `removing ${dir}`);
    }
    if (!st.isDirectory()) throw corrupt(p, 'it is not a directory (a symbolic link?); it was left alone');
    // rm never follows a symbolic link it meets inside: it removes the link itself.
    await rm(p, {recursive: true, force: true}).catch((err: unknown) => {
      throw ioError(err, p, `removing ${dir}`);
    });
    this.known.delete(p);
    for (const k of this.known) if (k.startsWith(`${p}/`)) this.known.delete(k);
    this.dirty.delete(p);
    this.dirty.add(dirname(p));
  }

  async deleteIfOlder(key: string, cutoffMs: number): Promise<{status: 'deleted' | 'kept'; size: number} | {status: 'absent'}> {
    const p = this.path(key);
    const before = await this.stat(key);
    if (!before) return {status: 'absent'};
    if (before.modifiedMs >= cutoffMs) return {status: 'kept', size: before.size};
    const aside = tempName(p);
    try {
      await rename(p, aside);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return {status: 'absent'};
      throw ioError(err, p, `removing ${key}`);
    }
    let after;
    try {
      after = await lstat(aside);
    } catch {
      return {status: 'absent'};
    }
    if (after.mtimeMs >= cutoffMs) {
      // Touched between our look and the rename: put it back (unless it was written again).
      await link(aside, p).catch((err: unknown) => {
        if (errnoCode(err) !== 'EEXIST') throw ioError(err, p, `keeping ${key}`);
      });
      await unlink(aside);
      return {status: 'kept', size: after.size};
    }
    await unlink(aside).catch(() => undefined);
    this.dirty.add(dirname(p));
    return {status: 'deleted', size: before.size};
  }

  async rename(from: string, to: string): Promise<boolean> {
    const a = this.path(from);
    const b = this.path(to);
    if (await this.stat(to)) throw new Error(`cannot rename ${from}: ${to} exists`);
    await this.ensureDir(dirname(b));
    try {
      await rename(a, b);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(err, a, `moving ${from}`);
    }
    this.dirty.add(dirname(a));
    this.dirty.add(dirname(b));
    return true;
  }

  async sync(): Promise<void> {
    const dirs = [...this.dirty];
    this.dirty.clear();
    const files = this.unsyncedFiles;
    this.unsyncedFiles = false;
    if (dirs.length > 0 || files) {
      // Deepest first: a new directory's own entries before its entry in its parent.
      dirs.sort((a, b) => b.length - a.length);
      const job = (async () => {
        // Everything written before this call, chunk files included, data and names: syncfs
        // makes the directories durable too, but their fsyncs below are then nearly free.
        if (files) {
          await this.syncWorkerWrites().catch((err: unknown) => {
            this.unsyncedFiles = true;
            throw err;
          });
        }
        for (const d of dirs) {
          await fsyncDir(d).catch((err: unknown) => {
            // A directory removed since (a forgotten restore point) has nothing left to sync.
            if (errnoCode((err as {cause?: unknown}).cause) !== 'ENOENT') throw err;
          });
        }
      })();
      this.syncing.add(job);
      void job.finally(() => this.syncing.delete(job)).catch(() => undefined);
    }
    await Promise.all([...this.syncing]);
  }

  async lock(key: string, opts: LockOptions): Promise<Lock> {
    const p = this.path(key);
    await this.ensureDir(dirname(p));
    return acquireLock(p, opts.purpose, opts);
  }

  ownerAlive(owner: Owner): boolean {
    return isAlive(owner);
  }

  async sweepLeftovers(dir: string, olderThanMs: number, recover?: Recover): Promise<{removed: number; recovered: number}> {
    return sweepLeftoversWith(this, dir, olderThanMs, recover);
  }

  /** The set-aside copies and temp files in `dir` (sweepLeftovers' first step; served over SSH too). */
  async leftovers(dir: string): Promise<Leftover[]> {
    const p = dir === '' ? this.location : this.path(dir);
    let names: string[];
    try {
      names = await readdir(p);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
      throw ioError(err, p, 'listing a directory');
    }
    const out: Leftover[] = [];
    for (const name of names) {
      const at = name.indexOf(TEMP_MARK);
      if (at <= 0) continue;
      const s = await lstat(join(p, name)).catch(() => undefined);
      if (!s) continue;
      out.push({name, finalName: name.slice(0, at), size: s.size, modifiedMs: s.mtimeMs, file: s.isFile()});
    }
    return out;
  }

  private leftoverPath(dir: string, name: string): string {
    const at = name.indexOf(TEMP_MARK);
    const finalName = name.slice(0, Math.max(0, at));
    if (at <= 0 || finalName === '.' || finalName === '..' || name.includes('/') || name.includes('\0')) throw new Error(`invalid leftover name ${JSON.stringify(name)}`);
    return join(dir === '' ? this.location : this.path(dir), name);
  }

  /** A leftover's bytes (at most `max`), undefined when it is gone or larger. */
  async readLeftover(dir: string, name: string, max: number): Promise<Buffer | undefined> {
    return readFileCapped(this.leftoverPath(dir, name), max, 'leftover').catch(() => undefined);
  }

  /** Puts a set-aside copy back under its final name (unless one is there). */
  async restoreLeftover(dir: string, name: string): Promise<void> {
    const file = this.leftoverPath(dir, name);
    await link(file, join(dirname(file), name.slice(0, name.indexOf(TEMP_MARK)))).catch(() => undefined);
    await unlink(file).catch(() => undefined);
    this.dirty.add(dirname(file));
  }

  async removeLeftover(dir: string, name: string): Promise<void> {
    await rm(this.leftoverPath(dir, name), {force: true, recursive: true}).catch(() => undefined);
  }

  async space(): Promise<{freeBytes: number; totalBytes: number} | undefined> {
    const fs = await statfs(this.location);
    return {freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize};
  }
}

/** A temp file or set-aside copy in a directory of the repository (LocalDirectoryBackend.leftovers). */
export interface Leftover {
  name: string;
  /** The object it would be: its name without the temp mark. */
  finalName: string;
  size: number;
  modifiedMs: number;
  /** A file (a temp directory of a crashed rename is not). */
  file: boolean;
}

/** What sweepLeftoversWith needs: the local backend's leftover steps, or the same served over SSH. */
export interface LeftoverSteps {
  leftovers(dir: string): Promise<Leftover[]>;
  readLeftover(dir: string, name: string, max: number): Promise<Buffer | undefined>;
  restoreLeftover(dir: string, name: string): Promise<void>;
  removeLeftover(dir: string, name: string): Promise<void>;
  stat(key: string): Promise<ObjectInfo | undefined>;
}

/**
 * sweepLeftovers from its steps: a set-aside copy that `recover` wants and that holds its object
 * goes back under its name (the only copy an interrupted deleteIfOlder left); other leftovers
 * older than `olderThanMs` are removed.
 */
export async function sweepLeftoversWith(s: LeftoverSteps, dir: string, olderThanMs: number, recover?: Recover): Promise<{removed: number; recovered: number}> {
  const out = {removed: 0, recovered: 0};
  for (const l of await s.leftovers(dir)) {
    const finalKey = dir === '' ? l.finalName : `${dir}/${l.finalName}`;
    if (recover && l.file && l.size <= recover.maxBytes && recover.wants(finalKey) && !(await s.stat(finalKey))) {
      const bytes = await s.readLeftover(dir, l.name, l.size);
      if (bytes && recover.holds(finalKey, bytes)) {
        await s.restoreLeftover(dir, l.name);
        out.recovered++;
        continue;
      }
    }
    if (l.modifiedMs < olderThanMs) {
      await s.removeLeftover(dir, l.name);
      out.removed++;
    }
  }
  return out;
}

/** Lock files set aside while being judged stale (lock.ts). */
const STALE_MARK = '.stale-';
