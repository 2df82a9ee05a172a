/**
 * The in-memory backend: objects in a Map, for tests that want a repository in milliseconds
 * and as the proof that the StorageBackend interface is enough — the repository's own tests of
 * backup, restore, prune, forget, GC and verify run on it as well as on the local directory
 * (test/repository/memory-backend.test.ts), and both pass the conformance suite.
 *
 * Everything is atomic and durable at once (a process's memory has no power cut to survive);
 * locks are held by this process until released. `now` lets a test move the clock that
 * modifiedMs and GC's cut-off read.
 */
import {ExitCode, UserError} from '../../util/errors.js';
import {corrupt} from '../fsio.js';
import {isAlive, selfOwner} from '../lock.js';
import {assertKey, type ListEntry, type Lock, type LockOptions, type ObjectInfo, type Owner, type PutOptions, type StorageBackend} from './backend.js';

interface Entry {
  data: Buffer;
  modifiedMs: number;
}

let instances = 0;

export class MemoryBackend implements StorageBackend {
  readonly location: string;
  readonly objects = new Map<string, Entry>();
  private readonly locks = new Map<string, {owner: Owner; released: Promise<void>; release: () => void}>();
  private readonly now: () => number;

  constructor(opts: {now?: () => number; name?: string} = {}) {
    this.now = opts.now ?? Date.now;
    this.location = `memory:${opts.name ?? String(++instances)}`;
  }

  describe(key: string): string {
    return `${this.location}/${key}`;
  }

  async get(key: string, opts: {max: number; what: string}): Promise<Buffer | undefined> {
    assertKey(key);
    const e = this.objects.get(key);
    if (!e) return undefined;
    if (e.data.length > opts.max) throw corrupt(this.describe(key), `the ${opts.what} is ${e.data.length} bytes, more than the ${opts.max} bytes such a file can have`);
    return Buffer.from(e.data);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertKey(key);
    const e = this.objects.get(key);
    return e ? {size: e.data.length, modifiedMs: e.modifiedMs} : undefined;
  }

  async list(dir: string): Promise<ListEntry[]> {
    if (dir !== '') assertKey(dir);
    const prefix = dir === '' ? '' : `${dir}/`;
    const seen = new Map<string, boolean>();
    for (const k of this.objects.keys()) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) seen.set(rest, seen.get(rest) ?? false);
      else seen.set(rest.slice(0, slash), true);
    }
    return [...seen].map(([name, isDir]) => ({name, dir: isDir}));
  }

  async put(key: string, parts: Uint8Array[], opts: PutOptions = {}): Promise<void> {
    assertKey(key);
    const data = Buffer.concat(parts);
    await opts.beforeVisible?.();
    this.objects.set(key, {data, modifiedMs: this.now()});
  }

  async putIfAbsent(key: string, parts: Uint8Array[]): Promise<boolean> {
    assertKey(key);
    if (this.objects.has(key)) return false;
    this.objects.set(key, {data: Buffer.concat(parts), modifiedMs: this.now()});
    return true;
  }

  async append(key: string, text: string): Promise<void> {
    assertKey(key);
    const e = this.objects.get(key);
    const add = Buffer.from(text);
    this.objects.set(key, {data: e ? Buffer.concat([e.data, add]) : add, modifiedMs: this.now()});
  }

  async touch(key: string): Promise<boolean> {
    assertKey(key);
    const e = this.objects.get(key);
    if (!e) return false;
    e.modifiedMs = this.now();
    return true;
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    return this.objects.delete(key);
  }

  async deleteTree(dir: string): Promise<void> {
    assertKey(dir);
    for (const k of [...this.objects.keys()]) if (k.startsWith(`${dir}/`)) this.objects.delete(k);
  }

  async deleteIfOlder(key: string, cutoffMs: number): Promise<{status: 'deleted' | 'kept'; size: number} | {status: 'absent'}> {
    assertKey(key);
    const e = this.objects.get(key);
    if (!e) return {status: 'absent'};
    if (e.modifiedMs >= cutoffMs) return {status: 'kept', size: e.data.length};
    this.objects.delete(key);
    return {status: 'deleted', size: e.data.length};
  }

  async rename(from: string, to: string): Promise<boolean> {
    assertKey(from);
    assertKey(to);
    if (this.objects.has(to)) throw new Error(`cannot rename ${from}: ${to} exists`);
    const e = this.objects.get(from);
    if (!e) return false;
    this.objects.set(to, e);
    this.objects.delete(from);
    return true;
  }

  async sync(): Promise<void> {}

  async lock(key: string, opts: LockOptions): Promise<Lock> {
    assertKey(key);
    const deadline = this.now() + opts.timeoutMs;
    for (;;) {
      if (opts.signal?.aborted) throw new UserError(`Stopped while waiting for the ${opts.what}.`, {hint: 'Nothing was written.', exitCode: ExitCode.cancelled});
      const held = this.locks.get(key);
      if (!held) break;
      const left = deadline - this.now();
      if (left <= 0) {
        throw new UserError(`The ${opts.what} is locked by process ${held.owner.pid} (${held.owner.purpose}) since ${new Date(held.owner.since).toISOString()} (${this.describe(key)}).`, {
          hint: opts.hint,
          exitCode: ExitCode.locked,
        });
      }
      await Promise.race([held.released, new Promise((r) => setTimeout(r, Math.min(left, 50)))]);
    }
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const entry = {owner: selfOwner(opts.purpose), released, release};
    this.locks.set(key, entry);
    return {
      path: this.describe(key),
      release: async () => {
        if (this.locks.get(key) === entry) {
          this.locks.delete(key);
          entry.release();
        }
      },
    };
  }

  ownerAlive(owner: Owner): boolean {
    return isAlive(owner);
  }

  async sweepLeftovers(): Promise<{removed: number; recovered: number}> {
    // Nothing is ever left half-done in memory.
    return {removed: 0, recovered: 0};
  }

  async space(): Promise<undefined> {
    return undefined;
  }
}
