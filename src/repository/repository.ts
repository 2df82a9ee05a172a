/**
 * Repository: the public face of one open repository. It wires the chunk store, writers,
 * readers, retention, GC, verify and statistics together, each in its own file, over a storage
 * backend (storage/backend.ts): the local directory (openRepository, createRepository) or any
 * other (openRepositoryOn, createRepositoryOn).
 */
import {randomUUID} from 'node:crypto';
import {chmod, mkdir, readdir, stat} from 'node:fs/promises';
import {join, resolve} from 'node:path';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import {ChunkStore} from './chunk-store.js';
import {CONFIG_FILE, DEFAULT_CHUNK_SIZE, ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION, FORMAT_VERSIONS, REPOSITORY_FORMAT, type RepositoryConfig, parseConfig, serializeConfig, validateChunkSize} from './config-file.js';
import type {RepoContext} from './context.js';
import {corrupt, ioError} from './fsio.js';
import {collectGarbage} from './gc.js';
import {describeSettled, settleInterruptedWriters} from './interrupted.js';
import {CHUNKS_DIR, HOLD_PREFIX, LOCKS_DIR, MANIFEST_FILE, POINTS_DIR, POINT_ID, PROTECTED_FILE, RETENTION_LOCK_FILE, WRITERS_DIR, pointKey, vmLockKey} from './layout.js';
import {isAlive, parseOwner, selfOwner} from './lock.js';
import type {StorageBackend} from './storage/backend.js';
import {LocalDirectoryBackend} from './storage/local.js';
import {S3Backend, ensureBucket, explainS3, isS3Url, parseS3Url, s3Url} from './storage/s3.js';
import type {S3Credentials} from './storage/s3-client.js';
import {SshBackend, type SshRepositoryAccess} from './storage/ssh.js';
import {isSshUrl, parseSshUrl} from '../util/ssh-url.js';
import {compareSummaries, MAX_MANIFEST_BYTES, parseManifest, summarize} from './manifest.js';
import {compactTime, isValidName, newPointId} from './names.js';
import {manifestText} from './sealed-files.js';
import {keyedHash, newEncryption, rewrapKeys, unlock, type ChunkKeys} from './crypto.js';
import {RestorePointReaderImpl, loadIndexIds} from './reader.js';
import type {PackedChunk} from './chunk-file.js';
import {planRetention, validatePolicy} from './retention.js';
import {repositoryStats} from './stats.js';
import type {
  BeginOptions,
  DamagedManifest,
  GcOptions,
  GcResult,
  Manifest,
  Progress,
  PruneResult,
  RepositoryStats,
  RestorePointReader,
  RestorePointSummary,
  RestorePointWriter,
  RetentionPolicy,
  VerifyReport,
} from './types.js';
import {verifyPoints} from './verify.js';

/** Numbers the holds of this process (one process may hold a point twice). */
let holdSeq = 0;
import {type BaseInfo, RestorePointWriterImpl} from './writer.js';

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/** A repository configuration is a few hundred bytes; a larger file is refused unread. */
const MAX_CONFIG_BYTES = 64 << 10;

export class Repository {
  readonly path: string;
  readonly id: string;
  readonly chunkSize: number;
  readonly formatVersion: number;
  private readonly ctx: RepoContext;

  readonly backend: StorageBackend;

  private config: RepositoryConfig;

  /** Use openRepository / createRepository (or the ...On forms for another backend). `keys`: an encrypted repository's, unlocked. */
  constructor(backend: StorageBackend, config: RepositoryConfig, keys?: ChunkKeys) {
    if ((config.encryption !== undefined) !== (keys !== undefined)) throw new Error('an encrypted repository is opened with its keys, a plain one without');
    this.backend = backend;
    this.config = config;
    this.path = backend.location;
    this.id = config.id;
    this.chunkSize = config.chunkSize;
    this.formatVersion = config.version;
    this.ctx = {
      root: this.path,
      id: config.id,
      chunkSize: config.chunkSize,
      formatVersion: config.version,
      backend,
      store: new ChunkStore(backend, config.version, config.chunkSize, keys),
      ...(keys ? {keys} : {}),
    };
  }

  /** Whether the repository is encrypted (format 3): its data, indexes and manifests are readable only with its passphrase. */
  get encrypted(): boolean {
    return this.ctx.keys !== undefined;
  }

  /**
   * The key chunk ids are computed with (an encrypted repository's HMAC key), for a data mover
   * that hashes on another machine (a worker on a VM's host, src/worker/): undefined for a plain
   * repository (ids are SHA-256). It lets its holder compute ids, not read or write data.
   */
  chunkIdKey(): Uint8Array | undefined {
    return this.ctx.keys?.mac;
  }

  /**
   * The configuration as a key file to keep apart (export): it holds the wrapped master key, so
   * with it and the passphrase the repository can be read even if its own configuration is lost.
   */
  keyFile(): string {
    if (!this.config.encryption) throw new UserError(`The repository ${this.path} is not encrypted: it has no key.`, {exitCode: ExitCode.invalidInput});
    return serializeConfig(this.config);
  }

  /**
   * Wraps the repository's master key under `next` and writes the configuration (atomically):
   * from then on the repository opens with `next` only — through this configuration. The data is
   * not re-encrypted (crypto.ts rewrapKeys: an old key file still opens with the old passphrase).
   */
  async changePassphrase(next: string): Promise<void> {
    if (!this.config.encryption || !this.ctx.keys) throw new UserError(`The repository ${this.path} is not encrypted: it has no passphrase.`, {exitCode: ExitCode.invalidInput});
    const record = await rewrapKeys(this.ctx.keys, next, this.config.id);
    const changed: RepositoryConfig = {...this.config, encryption: record};
    await this.backend.put(CONFIG_FILE, [Buffer.from(serializeConfig(changed))], {what: 'the repository configuration'});
    await this.backend.sync();
    this.config = changed;
  }

  /**
   * The id a copy of source point `id` (taken at `time`) gets here: the same id, except in an
   * encrypted repository, where ids carry no VM name — a keyed digest of the source's id stands
   * for it, so the next copy finds it again.
   */
  copyIdFor(id: string, time: string): string {
    if (!this.ctx.keys) return id;
    return `vm-${compactTime(new Date(time))}-${keyedHash(this.ctx.keys.mac, `copy ${id}`).toString('hex').slice(0, 6)}`;
  }

  /**
   * Restore point directories whose manifest is there but cannot be used (damaged, hostile, or
   * from a newer version): listed here with the reason, so that verify, list and info can name
   * them instead of skipping them in silence.
   */
  async damagedRestorePoints(): Promise<DamagedManifest[]> {
    const damaged: DamagedManifest[] = [];
    await this.committed(damaged);
    return damaged;
  }

  /** Committed manifests with their protected flag; a manifest that cannot be read goes to `damaged`. */
  private async committed(damaged: DamagedManifest[] = []): Promise<{m: Manifest; protected: boolean}[]> {
    const out: {m: Manifest; protected: boolean}[] = [];
    for (const {name, dir} of await this.backend.list(POINTS_DIR)) {
      // Only directories (the local backend never lists a planted link as one).
      if (!dir || !POINT_ID.test(name)) continue;
      const m = await this.readManifest(name).catch((err: unknown) => {
        if (err instanceof UserError) {
          damaged.push({restorePoint: name, file: this.backend.describe(`${pointKey(name)}/${MANIFEST_FILE}`), detail: err.message});
          return undefined;
        }
        throw err;
      });
      if (m) out.push({m, protected: await this.isProtected(name)});
    }
    return out;
  }

  private async readManifest(id: string): Promise<Manifest | undefined> {
    const key = `${pointKey(id)}/${MANIFEST_FILE}`;
    const raw = await this.backend.get(key, {max: MAX_MANIFEST_BYTES, what: 'manifest'});
    if (raw === undefined) return undefined;
    return parseManifest(manifestText(this.ctx, id, raw, this.backend.describe(key)), this.backend.describe(key), {dirName: id, chunkSize: this.chunkSize});
  }

  private async isProtected(id: string): Promise<boolean> {
    return (await this.backend.stat(`${pointKey(id)}/${PROTECTED_FILE}`)) !== undefined;
  }

  /**
   * The live processes holding restore point `id` (an export serving it, an instant recovery
   * running on it): points/<id>/held-<pid>-<n>.json names each. A hold of a process that is gone
   * does not count (and is removed here).
   */
  async holders(id: string): Promise<string[]> {
    const dir = pointKey(id);
    const out: string[] = [];
    for (const e of await this.backend.list(dir).catch(() => [])) {
      if (e.dir || !e.name.startsWith(HOLD_PREFIX)) continue;
      const raw = await this.backend.get(`${dir}/${e.name}`, {max: 4096, what: 'a hold of a restore point'}).catch(() => undefined);
      const owner = raw && parseOwner(raw.toString('utf8'));
      if (owner && isAlive(owner)) out.push(`${owner.purpose} (pid ${owner.pid})`);
      else await this.backend.delete(`${dir}/${e.name}`).catch(() => undefined);
    }
    return out;
  }

  /**
   * Holds restore point `id` for this process until release(): prune keeps it and forget refuses
   * it meanwhile (what serves its data must not lose it). A process that dies leaves a hold that
   * no longer counts.
   */
  async holdRestorePoint(id: string, purpose = 'an export'): Promise<{release(): Promise<void>}> {
    await this.openRestorePoint(id);
    const key = `${pointKey(id)}/${HOLD_PREFIX}${process.pid}-${++holdSeq}.json`;
    // An encrypted repository names nothing of its VMs in the clear: the purpose stays generic.
    await this.backend.put(key, [Buffer.from(JSON.stringify(selfOwner(this.encrypted ? 'a vmbackup process' : purpose)))], {what: 'a hold of a restore point'});
    await this.backend.sync();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await this.backend.delete(key).catch(() => undefined);
      },
    };
  }

  async listRestorePoints(filter: {vmId?: string} = {}): Promise<RestorePointSummary[]> {
    const all = await this.committed();
    return all
      .filter((x) => filter.vmId === undefined || x.m.vm.id === filter.vmId)
      .map((x) => summarize(x.m, x.protected))
      .sort(compareSummaries);
  }

  private notFound(id: string): UserError {
    return new UserError(`Restore point ${id} does not exist in the repository ${this.path}.`, {
      hint: 'List the restore points with "vmbackup repo list <path>" and use one of those ids.',
      exitCode: ExitCode.notFound,
    });
  }

  async openRestorePoint(id: string): Promise<RestorePointReader> {
    if (!POINT_ID.test(id)) throw this.notFound(id);
    const m = await this.readManifest(id);
    if (!m) throw this.notFound(id);
    return new RestorePointReaderImpl(this.ctx, summarize(m, await this.isProtected(id)), m);
  }

  /**
   * The chunk ids of a disk of a restore point, 32 bytes per chunk in order (the index checked
   * against its manifest): a copy compares them with its base's to skip what did not change.
   */
  async diskChunkIds(id: string, key: string): Promise<Buffer> {
    const reader = await this.openRestorePoint(id);
    const d = reader.manifest.disks.find((x) => x.key === key);
    if (!d) throw new UserError(`Restore point ${id} has no disk ${key}.`, {exitCode: ExitCode.notFound});
    return loadIndexIds(this.ctx, reader.manifest, d);
  }

  /**
   * A chunk as stored (packed, its file's structure checked, not unpacked): a copy to a
   * repository with the same ids and chunk size sends it as it is (the target checks it against
   * its id). `context` names the restore point and disk for the error of a missing or bad chunk.
   */
  readPackedChunk(hex: string, context: string): Promise<PackedChunk> {
    return this.ctx.store.readPacked(hex, context);
  }

  async beginRestorePoint(opts: BeginOptions): Promise<RestorePointWriter> {
    for (const f of ['vmId', 'vmName', 'platform'] as const) {
      if (typeof opts[f] !== 'string' || opts[f].length === 0) {
        throw new UserError(`Cannot begin a restore point: ${f} is empty.`, {exitCode: ExitCode.invalidInput});
      }
    }
    if (!isValidName('objectId', opts.vmId)) {
      throw new UserError(`Cannot begin a restore point: the VM id ${JSON.stringify(opts.vmId)} is not a valid id (letters, digits, ".", "_", ":" and "-").`, {exitCode: ExitCode.invalidInput});
    }
    if (opts.lockDays !== undefined) checkLockDays(opts.lockDays);
    if (opts.copyOf) {
      if (!isValidName('pointId', opts.copyOf.id) || Number.isNaN(Date.parse(opts.copyOf.time))) {
        throw new UserError(`Cannot copy restore point ${JSON.stringify(opts.copyOf.id)}: not a restore point id and time.`, {exitCode: ExitCode.invalidInput});
      }
      if ((await this.backend.stat(`${pointKey(opts.copyOf.id)}/${MANIFEST_FILE}`)) !== undefined) {
        throw new UserError(`The repository already has restore point ${opts.copyOf.id}.`, {exitCode: ExitCode.invalidInput});
      }
    }
    let base: {reader: RestorePointReader} | undefined;
    if (opts.base !== undefined) {
      const reader = await this.openRestorePoint(opts.base);
      if (reader.manifest.vm.id !== opts.vmId) {
        throw new UserError(`Restore point ${opts.base} belongs to VM ${reader.manifest.vm.name}, not to ${opts.vmName}; it cannot be the base.`, {
          exitCode: ExitCode.invalidInput,
        });
      }
      if (reader.manifest.chunkSize !== this.chunkSize) throw new Error(`base ${opts.base} has chunk size ${reader.manifest.chunkSize}`);
      base = {reader};
    }
    let lock = await this.backend.lock(vmLockKey(opts.vmId, this.ctx.keys?.mac), {
      purpose: this.encrypted ? 'a backup' : `backup of VM ${opts.vmName}`,
      timeoutMs: opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      ...(opts.signal ? {signal: opts.signal} : {}),
      what: `backup of VM "${opts.vmName}" in repository ${this.path}`,
      hint: 'Another backup of this VM is writing to the repository. Wait for it to finish, or if its process is gone on another machine, remove the lock file named here.',
    });
    try {
      const startedAt = opts.copyOf ? new Date(opts.copyOf.time) : new Date();
      // In an encrypted repository the id (a directory name) carries no slug of the VM's name.
      const id = opts.copyOf ? opts.copyOf.id : newPointId(this.encrypted ? 'vm' : opts.vmName, startedAt);
      let baseInfo: BaseInfo | undefined;
      // Where touches are expensive (an object store) the base is held instead for the whole
      // write, released with the VM lock (backend.ts expensiveTouch).
      if (base && this.backend.expensiveTouch) {
        const hold = await this.holdRestorePoint(base.reader.summary.id, `the base of backup ${id}`);
        const vmLock = lock;
        lock = {
          path: vmLock.path,
          release: async () => {
            await hold.release();
            await vmLock.release();
          },
          ...(vmLock.held ? {held: () => vmLock.held!()} : {}),
        };
      }
      if (base) {
        const m = base.reader.manifest;
        const ids = new Map<string, Buffer>();
        for (const d of m.disks) {
          // A damaged base index is not fatal: that disk is read in full (and the writer warns).
          const loaded = await loadIndexIds(this.ctx, m, d).catch((err: unknown) => {
            if (err instanceof UserError) return undefined;
            throw err;
          });
          if (loaded) ids.set(d.key, loaded);
        }
        baseInfo = {summary: base.reader.summary, manifest: m, ids};
      }
      // A writer that a crash of the machine stopped may have left chunk files that must be
      // checked before this one reuses them (interrupted.ts); nothing to do in the usual case.
      const settled = describeSettled(await settleInterruptedWriters(this.ctx), `repository ${this.path}`);
      const w = new RestorePointWriterImpl(this.ctx, id, opts, startedAt, baseInfo, lock);
      if (settled) w.warnings.push(settled);
      await w.start();
      return w;
    } catch (err) {
      await lock.release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The retention lock: no restore point younger than `days` can be forgotten or pruned, by any
   * interface (CLI, daemon API, console: they all come here). Undefined when there is none. A lock
   * file that cannot be read is not "no lock": it is an error, and nothing is removed meanwhile.
   */
  async retentionLock(): Promise<{days: number; setAt: string} | undefined> {
    const raw = await this.backend.get(RETENTION_LOCK_FILE, {max: 4096, what: 'the retention lock'});
    if (raw === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(raw.toString('utf8'));
    } catch {
      v = undefined;
    }
    const lock = v as {days?: unknown; setAt?: unknown} | undefined;
    if (!lock || typeof lock.days !== 'number' || !Number.isInteger(lock.days) || lock.days < 1 || lock.days > 36500 || typeof lock.setAt !== 'string') {
      throw corrupt(this.backend.describe(RETENTION_LOCK_FILE), 'the retention lock cannot be read; no restore point is removed until it can');
    }
    return {days: lock.days, setAt: lock.setAt};
  }

  /**
   * What the retention lock holds against, in words, for the administrator: vmbackup itself
   * always (CLI, API, console); the storage only where it is write-once (S3 Object Lock, probed).
   */
  async retentionLockScope(): Promise<{storageEnforced: boolean; note: string}> {
    const ol = this.backend.objectLock ? await this.backend.objectLock() : undefined;
    if (ol?.enabled) return {storageEnforced: true, note: `The lock holds against vmbackup (CLI, API, console); ${ol.detail}, which holds against anyone with the bucket's credentials.`};
    if (ol) return {storageEnforced: false, note: `The lock holds against vmbackup (CLI, API, console) only: ${ol.detail}, so whoever has the bucket's credentials can still delete objects.`};
    return {storageEnforced: false, note: 'The lock holds against vmbackup (CLI, API, console) only: on a local disk root can still delete files.'};
  }

  /**
   * Sets the retention lock to `days` (1–36500). It can be raised, never lowered or removed by
   * vmbackup: whoever can run vmbackup must not be able to shorten what it protects. (On a local
   * disk root can still delete files; only object storage with Object Lock is immutable against that.)
   */
  async setRetentionLock(days: number): Promise<{days: number; setAt: string}> {
    checkLockDays(days);
    const now = await this.retentionLock();
    if (now && days < now.days) {
      throw new UserError(`The repository is locked for ${now.days} days; a lock can be raised, not lowered.`, {hint: `Give ${now.days} days or more.`, exitCode: ExitCode.invalidInput});
    }
    const lock = {days, setAt: new Date().toISOString()};
    await this.backend.put(RETENTION_LOCK_FILE, [Buffer.from(JSON.stringify(lock))], {what: 'the retention lock'});
    await this.backend.sync();
    return lock;
  }

  /** Until when `time` (a restore point's) is locked (ISO, or 'unknown' when its time cannot be read), or undefined when it is not (any more). */
  private lockedUntil(lock: {days: number} | undefined, time: string | undefined, now = Date.now()): string | undefined {
    if (!lock) return undefined;
    const t = time === undefined ? NaN : Date.parse(time);
    // A point whose time cannot be read is kept: the lock must not have a way around it.
    if (Number.isNaN(t)) return 'unknown';
    const until = t + lock.days * 86_400_000;
    return until > now ? new Date(until).toISOString() : undefined;
  }

  /**
   * Applies `policy` to the restore points of `vmId` (all VMs when omitted); with `only`, to just
   * the points it accepts (one job's points): the others are neither counted nor removed.
   */
  async prune(
    policy: RetentionPolicy,
    opts: {vmId?: string; dryRun?: boolean; now?: Date; only?: (p: RestorePointSummary) => boolean} = {},
  ): Promise<PruneResult> {
    const bad = validatePolicy(policy);
    if (bad) throw new UserError(`Invalid retention policy: ${bad}.`, {exitCode: ExitCode.invalidInput});
    const listed = await this.listRestorePoints(opts.vmId === undefined ? {} : {vmId: opts.vmId});
    const points = opts.only ? listed.filter(opts.only) : listed;
    const plan = planRetention(points, policy, opts.now ?? new Date());
    const result: PruneResult = {dryRun: opts.dryRun === true, kept: [], removed: []};
    const lock = await this.retentionLock();
    const lockDays = new Map(points.map((p) => [p.id, p.lockDays]));
    for (const d of plan) {
      if (!d.keep && this.lockedUntil(effectiveLock(lock, lockDays.get(d.id)), d.time) !== undefined) {
        result.kept.push({...d, keep: true, reasons: ['retention lock']});
        continue;
      }
      if (!d.keep && !opts.dryRun && (await this.isProtected(d.id))) {
        // Protected since we listed: keep it.
        result.kept.push({...d, keep: true, reasons: ['protected']});
        continue;
      }
      if (!d.keep && (await this.holders(d.id)).length > 0) {
        // Served right now (an export, an instant recovery): kept until it is released.
        result.kept.push({...d, keep: true, reasons: ['in use']});
        continue;
      }
      (d.keep ? result.kept : result.removed).push(d);
      if (!d.keep && !opts.dryRun) await this.deletePoint(d.id);
    }
    return result;
  }

  /**
   * Removes the manifest first (the un-commit), then the rest; GC frees the chunks later. `id`
   * is a name listed under points/ (the manifest's id was checked to be that name); the backend
   * never removes anything outside the repository (the local one refuses a symbolic link).
   */
  private async deletePoint(id: string): Promise<void> {
    const dir = pointKey(id);
    if (!(await this.isPointDir(id))) throw corrupt(this.backend.describe(dir), 'the restore point directory is not a directory (a symbolic link?); it was left alone');
    await this.backend.delete(`${dir}/${MANIFEST_FILE}`);
    await this.backend.sync();
    await this.backend.deleteTree(dir);
    await this.backend.sync();
  }

  /** Whether points/<id> is a restore point's directory (listed as one: never a link). */
  private async isPointDir(id: string): Promise<boolean> {
    return (await this.backend.list(POINTS_DIR)).some((e) => e.dir && e.name === id);
  }

  /**
   * Removes one restore point, also one whose manifest is damaged (the way out of a damaged
   * point: verify names it, GC keeps its chunks until it is gone). A protected point is kept
   * unless `force`. Every restore point is logically full, so the others stay restorable; GC
   * frees the chunks only it used.
   */
  async forget(id: string, opts: {force?: boolean} = {}): Promise<{id: string; damaged: boolean}> {
    if (!POINT_ID.test(id)) throw this.notFound(id);
    if (!(await this.isPointDir(id))) throw this.notFound(id);
    const manifest = await this.backend.stat(`${pointKey(id)}/${MANIFEST_FILE}`);
    if (!manifest) {
      throw new UserError(`${id} in ${this.path} is not a committed restore point (it has no manifest: a backup that did not finish).`, {
        hint: 'Garbage collection removes unfinished restore points: vmbackup repo gc <path>.',
        exitCode: ExitCode.notFound,
      });
    }
    const repoLock = await this.retentionLock();
    // Read once: for the locks, and to tell a damaged point (forgotten all the same) from an I/O error.
    const settled = await this.readManifest(id).then((m) => ({m}), (err: unknown) => ({err}));
    const read = 'm' in settled ? settled.m : undefined;
    const lock = effectiveLock(repoLock, read?.lockDays);
    if (lock) {
      const time = read?.time;
      const until = this.lockedUntil(lock, time);
      if (until !== undefined) {
        const whose = repoLock && repoLock.days >= (read?.lockDays ?? 0) ? `the repository's retention lock (${lock.days} days)` : `its job's retention lock (${lock.days} days)`;
        throw new UserError(`Restore point ${id} is under ${whose}: it cannot be forgotten${until === 'unknown' ? ' (its time cannot be read, so it is kept)' : ` before ${until}`}.`, {
          hint: 'Nothing removes a locked restore point before its time, --force included; prune keeps it too.',
          exitCode: ExitCode.invalidInput,
        });
      }
    }
    if ((await this.isProtected(id)) && !opts.force) {
      throw new UserError(`Restore point ${id} is protected.`, {hint: 'Remove the protection first (vmbackup repo unprotect), or forget it with --force.', exitCode: ExitCode.invalidInput});
    }
    const holders = await this.holders(id);
    if (holders.length > 0) {
      throw new UserError(`Restore point ${id} is in use by ${holders.join(', ')}.`, {hint: 'Stop the export or instant recovery that serves it, then forget it.', exitCode: ExitCode.locked});
    }
    if ('err' in settled && !(settled.err instanceof UserError)) throw settled.err;
    const damaged = 'err' in settled;
    await this.deletePoint(id);
    return {id, damaged};
  }

  async setProtected(id: string, value: boolean): Promise<void> {
    await this.openRestorePoint(id);
    const marker = `${pointKey(id)}/${PROTECTED_FILE}`;
    if (value) await this.backend.put(marker, [], {what: 'the protection mark of a restore point'});
    else await this.backend.delete(marker);
    await this.backend.sync();
  }

  gc(opts: GcOptions = {}): Promise<GcResult> {
    return collectGarbage(this.ctx, opts);
  }

  async verify(opts: {restorePoints?: string[]; onProgress?: (p: Progress) => void} = {}): Promise<VerifyReport> {
    let manifests: Manifest[];
    const damaged: DamagedManifest[] = [];
    if (opts.restorePoints) {
      manifests = [];
      for (const id of opts.restorePoints) manifests.push((await this.openRestorePoint(id)).manifest);
    } else {
      manifests = (await this.committed(damaged)).map((x) => x.m);
    }
    const report = await verifyPoints(this.ctx, manifests, opts.onProgress);
    report.manifestProblems = damaged;
    for (const d of damaged) report.restorePoints.push({id: d.restorePoint, ok: false, problems: 1});
    if (damaged.length > 0) report.ok = false;
    return report;
  }

  /** Ends what its storage keeps open (an SSH session); it opens again when used. */
  async close(): Promise<void> {
    await this.backend.close?.();
  }

  async stats(): Promise<RepositoryStats> {
    return repositoryStats(this.ctx, (await this.committed()).map((x) => x.m));
  }
}

/** How a repository is made: chunk size, format version, and a passphrase for an encrypted one. */
export interface CreateOptions {
  /** Default: DEFAULT_CHUNK_SIZE on a local disk, S3_CHUNK_SIZE in an S3 bucket. */
  chunkSize?: number;
  /** The credentials of an S3 repository (a path of the form s3://HOST/BUCKET/PREFIX). */
  s3?: S3Credentials;
  /** How to log in to the far appliance of an SSH repository (ssh://USER@HOST[:PORT]/PATH). */
  ssh?: SshRepositoryAccess;
  /** An older format (tests and benchmarks that compare formats; an older vmbackup reads only its own). */
  formatVersion?: number;
  /** Makes an encrypted repository (format 3, crypto.ts) whose key this passphrase unwraps. */
  passphrase?: string;
}

/** How a repository is opened: the passphrase of an encrypted one (ignored by a plain one). */
export interface OpenOptions {
  passphrase?: string;
  /** The credentials of an S3 repository (a path of the form s3://HOST/BUCKET/PREFIX). */
  s3?: S3Credentials;
  /** How to log in to the far appliance of an SSH repository (ssh://USER@HOST[:PORT]/PATH). */
  ssh?: SshRepositoryAccess;
}

/** The SSH backend for an ssh:// path (a UserError when the way to log in is missing). */
function sshBackendFor(path: string, access: SshRepositoryAccess | undefined): SshBackend {
  const where = parseSshUrl(path)!;
  if (!access) {
    throw new UserError(`The repository ${path} is on another machine reached over SSH: the key to log in with is needed.`, {
      hint: "Give --ssh-key FILE and --ssh-known-hosts FILE (the far machine's host key), or set it up in the repository's settings of the appliance.",
      exitCode: ExitCode.usage,
    });
  }
  return new SshBackend(where, access);
}

/**
 * The chunk size of a new repository in an S3 bucket: 4 MiB, so that a TiB of disk is at most
 * 262,144 objects (1 MiB chunks would be a million PUTs per TiB; object stores bill and throttle
 * per request). Proxmox Backup Server uses 4 MiB chunks for VM images for the same reason.
 */
export const S3_CHUNK_SIZE = 4 << 20;

/** The S3 backend for an s3:// path, with its credentials (a UserError when they are missing). */
function s3BackendFor(path: string, creds: S3Credentials | undefined): S3Backend {
  const where = parseS3Url(path)!;
  if (!creds) {
    throw new UserError(`The repository ${s3Url(where)} is in an S3 bucket: its credentials are needed.`, {
      hint: 'Give them with --s3-credentials FILE (access_key_id = …, secret_access_key = …, region = …; mode 0600), or in the repository\'s settings of the appliance.',
      exitCode: ExitCode.usage,
    });
  }
  return new S3Backend(where, creds);
}

async function explained<T>(backend: S3Backend, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainS3(err, backend.location);
  }
}

/**
 * Creates a repository in the newest format (FORMAT_VERSION) in a local directory, or an
 * encrypted one (ENCRYPTED_FORMAT_VERSION) when a passphrase is given.
 */
export async function createRepository(path: string, opts: CreateOptions = {}): Promise<Repository> {
  if (isSshUrl(path)) {
    const backend = sshBackendFor(path, opts.ssh);
    if ((await backend.list('')).some((e) => e.name === CONFIG_FILE)) {
      throw new UserError(`${backend.location} already holds a repository.`, {hint: 'Open it instead of creating it, or choose another path.', exitCode: ExitCode.invalidInput});
    }
    const repo = await createRepositoryOn(backend, opts);
    // As a local repository has them: the far appliance opens it as one of its own.
    for (const d of [CHUNKS_DIR, POINTS_DIR, WRITERS_DIR, LOCKS_DIR]) await backend.makeDir(d);
    return repo;
  }
  if (isS3Url(path)) {
    const backend = s3BackendFor(path, opts.s3);
    return explained(backend, async () => {
      await ensureBucket(backend);
      return createRepositoryOn(backend, {...opts, chunkSize: opts.chunkSize ?? S3_CHUNK_SIZE});
    });
  }
  const root = resolve(path);
  const config = newConfig(opts);
  const keys = await encryptionFor(config, opts);
  let existing: string[] = [];
  try {
    existing = await readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR') {
      throw new UserError(`Cannot create a repository at ${root}: it is a file.`, {hint: 'Choose a directory path.', exitCode: ExitCode.invalidInput});
    }
    if (errnoCode(err) !== 'ENOENT') throw ioError(err, root, 'creating a repository');
  }
  if (existing.includes(CONFIG_FILE)) {
    throw new UserError(`${root} already holds a repository.`, {hint: 'Open it instead of creating it, or choose another path.', exitCode: ExitCode.invalidInput});
  }
  if (existing.length > 0) {
    throw new UserError(`Cannot create a repository at ${root}: the directory is not empty.`, {
      hint: 'Choose a new or empty directory.',
      exitCode: ExitCode.invalidInput,
    });
  }
  try {
    // 0700 whatever the umask: a repository holds the VMs' disk contents (docs/security.md).
    await mkdir(root, {recursive: true, mode: 0o700});
    await chmod(root, 0o700);
    // Empty directories too, so that a copy of a new repository is recognisably complete.
    for (const d of [CHUNKS_DIR, POINTS_DIR, WRITERS_DIR, LOCKS_DIR]) await mkdir(join(root, d), {recursive: true, mode: 0o700});
  } catch (err) {
    throw ioError(err, root, 'creating a repository');
  }
  return writeConfig(new LocalDirectoryBackend(root), config, keys);
}

/** Creates a repository on any storage backend (which must hold nothing yet). */
export async function createRepositoryOn(backend: StorageBackend, opts: CreateOptions = {}): Promise<Repository> {
  const config = newConfig(opts);
  if ((await backend.list('')).length > 0) {
    throw new UserError(`Cannot create a repository at ${backend.location}: it is not empty.`, {hint: 'Choose a new or empty location.', exitCode: ExitCode.invalidInput});
  }
  return writeConfig(backend, config, await encryptionFor(config, opts));
}

function newConfig(opts: CreateOptions): RepositoryConfig {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  validateChunkSize(chunkSize);
  const version = opts.formatVersion ?? (opts.passphrase !== undefined ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION);
  if (!FORMAT_VERSIONS.includes(version)) {
    throw new UserError(`Cannot create a repository in format version ${version}: this vmbackup writes versions ${FORMAT_VERSIONS.join(', ')}.`, {
      hint: 'Leave the format version at its default.',
      exitCode: ExitCode.invalidInput,
    });
  }
  if ((version === ENCRYPTED_FORMAT_VERSION) !== (opts.passphrase !== undefined)) {
    throw new UserError(`Format version ${ENCRYPTED_FORMAT_VERSION} is the encrypted format: it is made with a passphrase, and only it.`, {exitCode: ExitCode.invalidInput});
  }
  const encrypted = version === ENCRYPTED_FORMAT_VERSION;
  return {format: REPOSITORY_FORMAT, version, id: randomUUID(), chunkSize, hash: encrypted ? 'hmac-sha256' : 'sha256', compression: 'lz4', created: new Date().toISOString()};
}

/** For a new encrypted repository: a master key wrapped under the passphrase, recorded in `config`. */
async function encryptionFor(config: RepositoryConfig, opts: CreateOptions): Promise<ChunkKeys | undefined> {
  if (opts.passphrase === undefined) return undefined;
  const {record, keys} = await newEncryption(opts.passphrase, config.id);
  config.encryption = record;
  return keys;
}

async function writeConfig(backend: StorageBackend, config: RepositoryConfig, keys: ChunkKeys | undefined): Promise<Repository> {
  await backend.put(CONFIG_FILE, [Buffer.from(serializeConfig(config))], {what: 'the repository configuration'});
  await backend.sync();
  return new Repository(backend, config, keys);
}

/** Opens the repository in a local directory. */
export async function openRepository(path: string, opts: OpenOptions = {}): Promise<Repository> {
  if (isSshUrl(path)) return openRepositoryOn(sshBackendFor(path, opts.ssh), opts);
  if (isS3Url(path)) {
    const backend = s3BackendFor(path, opts.s3);
    return explained(backend, () => openRepositoryOn(backend, opts));
  }
  const root = resolve(path);
  const repo = await openRepositoryOn(new LocalDirectoryBackend(root), opts);
  // A copied repository may lack empty directories (some copy tools skip them).
  for (const d of [CHUNKS_DIR, POINTS_DIR]) {
    try {
      await stat(join(root, d));
    } catch {
      throw new UserError(`${root} is not a complete vmbackup repository: the ${d}/ directory is missing.`, {
        hint: 'Copy the whole repository directory, including chunks/ and points/.',
        exitCode: ExitCode.notARepository,
      });
    }
  }
  return repo;
}

/** Opens the repository on a storage backend. */
export async function openRepositoryOn(backend: StorageBackend, opts: OpenOptions = {}): Promise<Repository> {
  const root = backend.location;
  let raw: Buffer | undefined;
  try {
    raw = await backend.get(CONFIG_FILE, {max: MAX_CONFIG_BYTES, what: 'repository configuration'});
  } catch (err) {
    if (err instanceof UserError && err.exitCode === ExitCode.corrupt) {
      throw new UserError(`${root} is not a vmbackup repository: ${err.message}`, {
        hint: 'The repository configuration is damaged or not vmbackup\'s. Check the path.',
        exitCode: ExitCode.notARepository,
      });
    }
    const code = errnoCode((err as {cause?: unknown}).cause ?? err);
    if (code === 'EISDIR') raw = undefined;
    else throw err;
  }
  if (raw === undefined) {
    throw new UserError(`${root} is not a vmbackup repository (it has no ${CONFIG_FILE}).`, {
      hint: 'Check the path: a repository is the directory that holds vmbackup-repository.json. Create one with "vmbackup repo create".',
      exitCode: ExitCode.notARepository,
    });
  }
  const config = parseConfig(raw.toString('utf8'), root);
  const keys = config.encryption ? await unlock(config.encryption, opts.passphrase, config.id, root) : undefined;
  return new Repository(backend, config, keys);
}

/** A retention lock's length: whole days from 1 to 36500 (the repository's and a job's alike). */
function checkLockDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw new UserError(`A retention lock is 1 to 36500 days, not ${days}.`, {exitCode: ExitCode.invalidInput});
}

/** The longer of the repository's retention lock and a point's own (its job's), or undefined when neither. */
function effectiveLock(repo: {days: number} | undefined, pointDays: number | undefined): {days: number} | undefined {
  const days = Math.max(repo?.days ?? 0, pointDays ?? 0);
  return days > 0 ? {days} : undefined;
}
