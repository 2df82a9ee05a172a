/**
 * Writing one restore point: RestorePointWriter and its DiskWriters.
 *
 * Order of events, each step durable before the next (docs/repository-format.md):
 *   1. take the VM's writer lock (locks/vm-<hash>.lock); register in writers/<id>.json
 *      with our start time — from here on GC will not sweep chunks we touch or write;
 *   2. addDisk: start from the base's chunk ids when the base has the same disk key and size,
 *      touching every base chunk (GC protection) and noting the missing/quarantined ones;
 *   3. put/zero: all-zero chunks get the zero id and are never stored (checked here, on the
 *      main thread); every other chunk goes to a chunk worker (chunk-workers.ts) that hashes
 *      it, touches it when the store has it, else stores it (an atomic put of the backend);
 *   4. finish: put the index;
 *   5. commit: the backend's sync() makes the chunks and indexes durable, then the manifest is
 *      put and synced: that put IS the commit; then drop the registration and the lock.
 *      An abort syncs too before it drops the registration: with deferred chunk syncs
 *      (storage/backend.ts deferWorkerSync) the registration is what tells a later writer to
 *      check this one's files after a crash of the machine (interrupted.ts).
 * A crash anywhere before 5 leaves a restore point without a manifest: invisible, removed by GC.
 * Every step goes through the storage backend (storage/backend.ts); on the local directory a
 * put is temp + fsync + rename (chunk files: temp + rename, made durable by one file-system
 * sync in sync()) and sync() fsyncs the directories written to.
 */
import {createHash} from 'node:crypto';
import {ExitCode, UserError} from '../util/errors.js';
import {parallelFor} from '../util/parallel-for.js';
import {ZERO_ID} from './chunk-file.js';
import type {PutResult} from './chunk-store.js';
import type {RepoContext} from './context.js';
import {isValidName} from './names.js';
import {chunkCount, encodeIndexHeader} from './index-file.js';
import {MANIFEST_FILE, PROTECTED_FILE, indexFileName, pointKey, writerJournalKey, writerKey} from './layout.js';
import {BOOT_ID, type RegistrationSync} from './interrupted.js';
import {type Lock, selfOwner} from './lock.js';
import {MANIFEST_FORMAT, MANIFEST_VERSION, serializeManifest, summarize} from './manifest.js';
import {storedIndex, storedManifest} from './sealed-files.js';
import type {
  BeginOptions,
  ByteRange,
  CheckpointInfo,
  DiskSpec,
  DiskWriteStats,
  DiskWriter,
  Manifest,
  ManifestDisk,
  RestorePointStats,
  RestorePointSummary,
  RestorePointWriter,
} from './types.js';

/** How many chunk touches run at once when a base is taken over. */
const TOUCH_PARALLEL = 32;
/** New chunk ids remembered to count a chunk that two overlapping puts both wrote once. */
const RECENT_NEW = 4096;

/**
 * The base restore point as the writer needs it: its manifest and the chunk ids of each disk,
 * read when the writer begins, so that a prune of the base during the backup cannot pull the
 * index away (its chunks are protected by the touches in addDisk, or reported missing).
 * A disk whose base index cannot be read is absent from `ids`: it is read in full.
 */
export interface BaseInfo {
  summary: RestorePointSummary;
  manifest: Manifest;
  ids: Map<string, Buffer>;
}

export function emptyStats(key: string, logical: number): DiskWriteStats {
  return {key, logical, dataBytes: 0, zeroBytes: 0, baseBytes: 0, newChunks: 0, newPlainBytes: 0, newStoredBytes: 0, reusedChunks: 0, hashedBytes: 0};
}

export function totalStats(disks: DiskWriteStats[]): RestorePointStats {
  const sum = (f: keyof Omit<DiskWriteStats, 'key'>) => disks.reduce((a, d) => a + (d[f] ?? 0), 0);
  const t = {
    logical: sum('logical'),
    dataBytes: sum('dataBytes'),
    zeroBytes: sum('zeroBytes'),
    baseBytes: sum('baseBytes'),
    newChunks: sum('newChunks'),
    newPlainBytes: sum('newPlainBytes'),
    newStoredBytes: sum('newStoredBytes'),
    reusedChunks: sum('reusedChunks'),
    hashedBytes: sum('hashedBytes'),
  };
  const hashed = sum('hashedBytes');
  return {
    ...t,
    // A re-ingest of data the repository already has stores nothing: report the hashed bytes.
    dedupRatio: t.newPlainBytes > 0 ? hashed / t.newPlainBytes : hashed > 0 ? hashed : 1,
    compressionRatio: t.newStoredBytes > 0 ? t.newPlainBytes / t.newStoredBytes : 1,
  };
}


export class RestorePointWriterImpl implements RestorePointWriter {
  readonly chunkSize: number;
  readonly base?: RestorePointSummary;
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private readonly disks: DiskWriterImpl[] = [];
  /** Chunk puts running now; abort() lets them settle before it cleans up. */
  readonly inflight = new Set<Promise<unknown>>();
  /**
   * The chunks this restore point wrote most recently. Two puts of the same new data can run
   * in workers at once (the id is known only after hashing there); both may write it —
   * harmlessly, the same bytes under the same name — but it must count once as new. Such puts
   * overlap in time, so remembering the last RECENT_NEW ids (far more than can be in flight)
   * is enough and keeps memory flat for any disk size.
   */
  readonly recentNew = new Set<string>();
  /** The key under which this restore point's files go (points/<id>). */
  readonly dir: string;
  /** Re-check chunks before reusing them (BeginOptions.checkReused: an active full). */
  readonly checkReused: boolean;
  /** Problems the writer worked around; added to the manifest's warnings at commit. */
  readonly warnings: string[] = [];
  /** One chunk of zeros to compare against. */
  readonly zeros: Buffer;
  private nextDiskNumber = 0;
  private readonly addingKeys = new Set<string>();

  constructor(
    readonly ctx: RepoContext,
    readonly id: string,
    private readonly opts: BeginOptions,
    private readonly startedAt: Date,
    private readonly baseInfo: BaseInfo | undefined,
    private readonly vmLock: Lock,
  ) {
    this.chunkSize = ctx.chunkSize;
    this.checkReused = opts.checkReused === true;
    this.zeros = Buffer.alloc(ctx.chunkSize);
    if (baseInfo) this.base = baseInfo.summary;
    this.dir = pointKey(id);
  }

  /** The VM's id in the registration (for an administrator's eyes); an encrypted repository names no VM in the clear. */
  private vmIdField(): {vmId?: string} {
    return this.ctx.keys ? {} : {vmId: this.opts.vmId};
  }

  /** Registers the writer (durably, before any chunk is touched); called once by Repository.beginRestorePoint. */
  async start(): Promise<void> {
    const backend = this.ctx.backend;
    await backend.put(writerKey(this.id), [Buffer.from(JSON.stringify({...selfOwner(`backup ${this.id}`, this.startedAt.getTime()), ...this.vmIdField(), ...this.registrationSync()}))]);
    await backend.sync();
  }

  /** With deferred chunk syncs the registration says so, and in which boot (interrupted.ts). */
  private registrationSync(): RegistrationSync {
    return this.ctx.backend.deferWorkerSync === true ? {chunkSync: 'deferred', bootId: BOOT_ID} : {};
  }

  assertOpen(): void {
    if (this.state !== 'open') throw new Error(`restore point ${this.id} is already ${this.state}`);
  }

  async addDisk(d: DiskSpec): Promise<DiskWriter> {
    this.assertOpen();
    if (!Number.isSafeInteger(d.size) || d.size < 0) {
      throw new UserError(`Disk ${d.key} has an invalid size ${d.size}.`, {exitCode: ExitCode.invalidInput});
    }
    if (!isValidName('diskKey', d.key) || (d.format !== undefined && !isValidName('diskFormat', d.format))) {
      // Readers refuse such names (manifest.ts), so a writer never records one.
      throw new UserError(`Disk ${JSON.stringify(d.key)} (format ${JSON.stringify(d.format)}) cannot be stored: disk keys are letters, digits, "_" and "-", formats lowercase letters and digits.`, {
        exitCode: ExitCode.invalidInput,
      });
    }
    if (this.disks.some((x) => x.key === d.key) || this.addingKeys.has(d.key)) throw new Error(`disk ${d.key} was already added to restore point ${this.id}`);
    // Reserve the key and the index file number before the first await: the engine adds disks
    // from parallel tasks, and two disks must never share an index file.
    this.addingKeys.add(d.key);
    const n = this.nextDiskNumber++;
    const baseDisk = this.baseInfo?.manifest.disks.find((x) => x.key === d.key && x.size === d.size);
    const baseIds = baseDisk ? this.baseInfo!.ids.get(d.key) : undefined;
    const ids = baseIds ? Buffer.from(baseIds) : Buffer.alloc(chunkCount(d.size, this.chunkSize) * 32);
    const w = new DiskWriterImpl(this, d, n, ids, baseIds !== undefined);
    if (baseDisk && !baseIds) {
      this.warnings.push(`Disk ${d.key}: the index of the base restore point ${this.baseInfo!.summary.id} could not be read; the disk was read in full.`);
    }
    try {
      if (baseIds) await w.touchBase();
    } finally {
      this.addingKeys.delete(d.key);
    }
    this.disks.push(w);
    return w;
  }

  async commit(extra: {checkpoint?: CheckpointInfo; warnings?: string[]; protected?: boolean} = {}): Promise<RestorePointSummary> {
    if (extra.checkpoint !== undefined && !isValidName('objectId', extra.checkpoint.id)) {
      throw new UserError(`Checkpoint id ${JSON.stringify(extra.checkpoint.id)} cannot be recorded: ids are letters, digits, ".", "_", ":" and "-".`, {exitCode: ExitCode.invalidInput});
    }
    this.assertOpen();
    try {
      const disks: ManifestDisk[] = [];
      for (const w of this.disks) disks.push(await w.finishedRecord());
      if (extra.protected) await this.ctx.backend.put(`${this.dir}/${PROTECTED_FILE}`, []);
      // The chunks and indexes durable before the manifest that names them.
      await this.ctx.backend.sync();
      const stats = totalStats(disks.map((x) => x.stats));
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        version: MANIFEST_VERSION,
        id: this.id,
        repositoryId: this.ctx.id,
        vm: {id: this.opts.vmId, name: this.opts.vmName},
        platform: this.opts.platform,
        time: this.startedAt.toISOString(),
        committedAt: new Date().toISOString(),
        type: this.baseInfo ? 'incremental' : 'full',
        ...(this.baseInfo ? {base: this.baseInfo.summary.id} : {}),
        ...(this.opts.sessionId !== undefined ? {sessionId: this.opts.sessionId} : {}),
        ...(this.opts.jobId !== undefined ? {jobId: this.opts.jobId} : {}),
        ...(this.opts.configuration !== undefined ? {configuration: this.opts.configuration} : {}),
        ...(extra.checkpoint !== undefined ? {checkpoint: extra.checkpoint} : {}),
        warnings: [...(extra.warnings ?? []), ...this.warnings],
        ...(this.opts.lockDays !== undefined ? {lockDays: this.opts.lockDays} : {}),
        chunkSize: this.chunkSize,
        disks,
        stats,
      };
      await this.writeManifest(manifest);
      this.state = 'committed';
      await this.release();
      return summarize(manifest, extra.protected === true);
    } catch (err) {
      await this.abort().catch(() => undefined);
      throw err;
    }
  }

  private async writeManifest(m: Manifest): Promise<void> {
    if (this.vmLock.held?.() === false) {
      throw new UserError(`The lock of this backup (${this.vmLock.path}) was lost: the storage could not be reached or its connection ended (an S3 lease that expired, an SSH session to another appliance that broke), so another process may hold it now. Nothing was committed.`, {
        hint: 'Run the backup again; check the connection to the storage.',
        exitCode: ExitCode.locked,
      });
    }
    const hook = this.opts.hooks?.beforeManifestRename;
    await this.ctx.backend.put(`${this.dir}/${MANIFEST_FILE}`, [storedManifest(this.ctx, this.id, serializeManifest(m))], {what: 'the restore point manifest', ...(hook ? {beforeVisible: hook} : {})});
    await this.ctx.backend.sync();
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    // Let chunk writes in flight settle so no temp file is created after we clean up.
    await Promise.allSettled([...this.inflight]);
    await this.ctx.backend.deleteTree(this.dir).catch(() => undefined);
    // The journal stays: GC frees the chunks this failed backup stored, once nothing needs them.
    await this.flushJournal().catch(() => undefined);
    // Chunk files written without fsync are durable before the registration that vouches for
    // them goes. If this sync fails the registration stays, marked as no longer this process's
    // (a start time no process has), so that the next writer or GC settles it (interrupted.ts)
    // and GC's cut-off is not held back by a writer that is gone.
    if (!(await this.ctx.backend.sync().then(() => true, () => false))) {
      const reg = {...selfOwner(`backup ${this.id}`, this.startedAt.getTime()), pidStart: 'abandoned', ...this.vmIdField(), ...this.registrationSync()};
      await this.ctx.backend.put(writerKey(this.id), [Buffer.from(JSON.stringify(reg))]).catch(() => undefined);
      await this.vmLock.release().catch(() => undefined);
      return;
    }
    await this.release({keepJournal: true});
  }

  private readonly journal: string[] = [];
  private journalWrite: Promise<void> = Promise.resolve();

  /** Notes a chunk this writer stored new (see writerJournalPath). */
  noteNewChunk(hex: string): void {
    this.journal.push(hex);
  }

  /** Appends the noted ids to the journal (no fsync: a lost line only means GC waits its margin). */
  flushJournal(): Promise<void> {
    if (this.journal.length === 0) return this.journalWrite;
    const lines = `${this.journal.splice(0).join('\n')}\n`;
    this.journalWrite = this.journalWrite.then(() => this.ctx.backend.append(writerJournalKey(this.id), lines));
    return this.journalWrite;
  }

  private async release(opts: {keepJournal?: boolean} = {}): Promise<void> {
    await this.ctx.backend.delete(writerKey(this.id)).catch(() => undefined);
    if (!opts.keepJournal) {
      await this.journalWrite.catch(() => undefined);
      await this.ctx.backend.delete(writerJournalKey(this.id)).catch(() => undefined);
    }
    await this.vmLock.release();
  }
}

class DiskWriterImpl implements DiskWriter {
  readonly key: string;
  readonly size: number;
  private readonly count: number;
  /** Per chunk: 1 once put or zeroed in this restore point. */
  private readonly written: Uint8Array;
  private readonly missing = new Set<number>();
  /** The base is held for this write and its present chunks known (expensiveTouch): a chunk equal to the base's at its place needs no touch. */
  private baseHeld = false;
  private readonly stats: DiskWriteStats;
  private pending = 0;
  private record: ManifestDisk | undefined;

  constructor(
    private readonly rp: RestorePointWriterImpl,
    private readonly spec: DiskSpec,
    private readonly n: number,
    private readonly ids: Buffer,
    readonly hasBase: boolean,
  ) {
    this.key = spec.key;
    this.size = spec.size;
    this.count = chunkCount(spec.size, rp.chunkSize);
    this.written = new Uint8Array(this.count);
    this.stats = emptyStats(spec.key, spec.size);
  }

  private chunkLen(i: number): number {
    return Math.min(this.rp.chunkSize, this.size - i * this.rp.chunkSize);
  }

  /**
   * Touches every base chunk (so GC keeps it) and notes those that are gone. Where touches are
   * expensive the base is held instead (Repository.beginRestorePoint), and only which base
   * chunks exist is asked, at once (ChunkStore.presentAmong).
   */
  async touchBase(): Promise<void> {
    if (this.rp.ctx.backend.expensiveTouch) {
      const wanted = new Set<string>();
      for (let i = 0; i < this.count; i++) {
        const id = this.ids.subarray(i * 32, i * 32 + 32);
        if (!ZERO_ID.equals(id)) wanted.add(id.toString('hex'));
      }
      const present = await this.rp.ctx.store.presentAmong(wanted);
      for (let i = 0; i < this.count; i++) {
        const id = this.ids.subarray(i * 32, i * 32 + 32);
        if (!ZERO_ID.equals(id) && !present.has(id.toString('hex'))) this.missing.add(i);
      }
      this.baseHeld = true;
      return;
    }
    await parallelFor(this.count, TOUCH_PARALLEL, async (i) => {
      const id = this.ids.subarray(i * 32, i * 32 + 32);
      if (ZERO_ID.equals(id)) return;
      if (!(await this.rp.ctx.store.touch(id.toString('hex')))) this.missing.add(i);
    });
  }

  async missingBaseRanges(): Promise<ByteRange[]> {
    const out: ByteRange[] = [];
    const sorted = [...this.missing].sort((a, b) => a - b);
    for (const i of sorted) {
      const offset = i * this.rp.chunkSize;
      const length = this.chunkLen(i);
      const last = out[out.length - 1];
      if (last && last.offset + last.length === offset) last.length += length;
      else out.push({offset, length});
    }
    return out;
  }

  private checkRange(offset: number, length: number, what: string): void {
    this.rp.assertOpen();
    if (this.record) throw new Error(`disk ${this.key} of restore point ${this.rp.id} is already finished`);
    const cs = this.rp.chunkSize;
    const end = offset + length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % cs !== 0 || end > this.size || (end % cs !== 0 && end !== this.size)) {
      throw new Error(`${what}(${offset}, ${length}) on disk ${this.key}: ranges must be aligned to the chunk size ${cs} and end inside the disk (size ${this.size})`);
    }
  }

  async put(offset: number, data: Buffer): Promise<void> {
    this.checkRange(offset, data.length, 'put');
    const cs = this.rp.chunkSize;
    this.pending++;
    try {
      const stores: Promise<void>[] = [];
      for (let pos = 0; pos < data.length; pos += cs) {
        const i = (offset + pos) / cs;
        const plain = data.subarray(pos, Math.min(pos + cs, data.length));
        this.stats.dataBytes += plain.length;
        this.written[i] = 1;
        const wasMissing = this.missing.delete(i);
        // A memcmp against zeros is ~50× cheaper than hashing; most disks are mostly zeros.
        if (plain.equals(this.rp.zeros.subarray(0, plain.length))) {
          ZERO_ID.copy(this.ids, i * 32);
          this.stats.zeroBytes += plain.length;
          continue;
        }
        this.stats.hashedBytes += plain.length;
        // The base's id at this place, when the held base has that chunk (read before this put overwrites it).
        const baseId = this.baseHeld && this.hasBase && !wasMissing ? Buffer.from(this.ids.subarray(i * 32, i * 32 + 32)) : undefined;
        const job = this.rp.ctx.store.put(plain, {check: this.rp.checkReused, ...(baseId ? {baseId} : {})});
        this.rp.inflight.add(job);
        stores.push(
          job.then(
            (r) => {
              this.rp.inflight.delete(job);
              this.account(i, plain.length, r);
            },
            (err: unknown) => {
              this.rp.inflight.delete(job);
              throw err;
            },
          ),
        );
      }
      const results = await Promise.allSettled(stores);
      await this.rp.flushJournal().catch(() => undefined);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } finally {
      this.pending--;
    }
  }

  /** Chunks offer() asked to be sent (by index), not yet stored by putPacked(). */
  private readonly awaiting = new Set<number>();

  /**
   * For a data mover that hashes elsewhere (a worker on the VM's host, src/worker/): the ids of
   * the chunks of [offset, offset + length) as that mover computed them (ZERO_ID for an all-zero
   * chunk). Zero chunks are recorded; a chunk the repository has is reused (touched, or the held
   * base's at its place, as put() would); the indexes (0 = the chunk at `offset`) of the chunks
   * it lacks come back, and each must then arrive through putPacked() before finish(). The ids
   * are untrusted: their number is checked here, and every chunk sent is checked against its id.
   * With checkReused (an active full) every chunk that is not zero is asked for.
   */
  async offer(offset: number, length: number, ids: Buffer): Promise<number[]> {
    this.checkRange(offset, length, 'offer');
    const cs = this.rp.chunkSize;
    const first = offset / cs;
    const n = Math.ceil(length / cs);
    if (ids.length !== n * 32) throw new Error(`disk ${this.key}: ${ids.length / 32} chunk ids offered for ${n} chunks at offset ${offset}`);
    this.pending++;
    try {
      const ask: number[] = [];
      const look: number[] = [];
      for (let j = 0; j < n; j++) {
        const i = first + j;
        const len = this.chunkLen(i);
        const id = ids.subarray(j * 32, j * 32 + 32);
        const wasMissing = this.missing.delete(i);
        this.written[i] = 1;
        this.stats.dataBytes += len;
        if (ZERO_ID.equals(id)) {
          ZERO_ID.copy(this.ids, i * 32);
          this.stats.zeroBytes += len;
          continue;
        }
        this.stats.hashedBytes += len;
        if (this.rp.checkReused) ask.push(j);
        else if (this.baseHeld && this.hasBase && !wasMissing && id.equals(this.ids.subarray(i * 32, i * 32 + 32))) this.stats.reusedChunks++;
        else look.push(j);
      }
      await parallelFor(look.length, TOUCH_PARALLEL, async (k) => {
        const j = look[k]!;
        const id = ids.subarray(j * 32, j * 32 + 32);
        if (await this.rp.ctx.store.touch(id.toString('hex'))) {
          id.copy(this.ids, (first + j) * 32);
          this.stats.reusedChunks++;
        } else {
          ask.push(j);
        }
      });
      ask.sort((a, b) => a - b);
      for (const j of ask) this.awaiting.add(first + j);
      return ask;
    } finally {
      this.pending--;
    }
  }

  /**
   * Stores a chunk that offer() asked for, packed by the mover that hashed it (`from` names it for
   * errors): checked against its id in a chunk worker thread and stored as it came.
   */
  async putPacked(offset: number, chunk: {id: Buffer; flags: number; plainLength: number; payload: Buffer}, from: string, hint?: string): Promise<void> {
    this.rp.assertOpen();
    const cs = this.rp.chunkSize;
    const i = offset / cs;
    if (!Number.isSafeInteger(i) || !this.awaiting.has(i)) throw new Error(`disk ${this.key}: ${from} sent the chunk at offset ${offset}, which was not asked for`);
    if (chunk.plainLength !== this.chunkLen(i)) throw new Error(`disk ${this.key}: ${from} sent ${chunk.plainLength} bytes for the chunk at offset ${offset}, which has ${this.chunkLen(i)}`);
    this.awaiting.delete(i);
    this.pending++;
    try {
      const job = this.rp.ctx.store.putPacked(chunk, from, hint);
      this.rp.inflight.add(job);
      try {
        this.account(i, chunk.plainLength, await job);
      } finally {
        this.rp.inflight.delete(job);
      }
      await this.rp.flushJournal().catch(() => undefined);
    } catch (err) {
      this.awaiting.add(i);
      throw err;
    } finally {
      this.pending--;
    }
  }

  private account(i: number, length: number, r: PutResult): void {
    r.id.copy(this.ids, i * 32);
    this.stats.processMs = (this.stats.processMs ?? 0) + r.hashMs + r.encodeMs;
    this.stats.writeMs = (this.stats.writeMs ?? 0) + r.writeMs;
    const hex = r.id.toString('hex');
    if (r.healed) this.stats.healedChunks = (this.stats.healedChunks ?? 0) + 1;
    if (!r.isNew || this.rp.recentNew.has(hex)) {
      this.stats.reusedChunks++;
      return;
    }
    this.rp.recentNew.add(hex);
    if (this.rp.recentNew.size > RECENT_NEW) this.rp.recentNew.delete(this.rp.recentNew.values().next().value as string);
    this.rp.noteNewChunk(hex);
    this.stats.newChunks++;
    this.stats.newPlainBytes += length;
    this.stats.newStoredBytes += r.storedBytes;
  }

  async zero(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length, 'zero');
    const cs = this.rp.chunkSize;
    for (let pos = offset; pos < offset + length; pos += cs) {
      const i = pos / cs;
      ZERO_ID.copy(this.ids, i * 32);
      this.written[i] = 1;
      this.missing.delete(i);
      this.stats.zeroBytes += this.chunkLen(i);
    }
  }

  async finish(): Promise<DiskWriteStats> {
    return (await this.finishedRecord()).stats;
  }

  async finishedRecord(): Promise<ManifestDisk> {
    if (this.record) return this.record;
    if (this.pending > 0) throw new Error(`disk ${this.key}: finish() called while ${this.pending} put() calls are still running`);
    if (this.awaiting.size > 0) throw new Error(`disk ${this.key}: ${this.awaiting.size} chunk(s) asked for by offer() never arrived (first at offset ${[...this.awaiting][0]! * this.rp.chunkSize})`);
    if (this.missing.size > 0) {
      const first = [...this.missing][0]! * this.rp.chunkSize;
      throw new UserError(
        `Disk ${this.key}: ${this.missing.size} chunk(s) of the base restore point ${this.rp.base?.id} are missing or damaged in the repository (first at offset ${first}) and were not read again.`,
        {hint: 'Read the ranges that missingBaseRanges() returns in full, or run a full backup of this VM.', exitCode: ExitCode.corrupt},
      );
    }
    for (let i = 0; i < this.count; i++) if (!this.written[i]) this.stats.baseBytes += this.hasBase ? this.chunkLen(i) : 0;
    // Chunks never written and without a base are zero (the ids buffer started as zeros).
    if (!this.hasBase) for (let i = 0; i < this.count; i++) if (!this.written[i]) this.stats.zeroBytes += this.chunkLen(i);
    const header = encodeIndexHeader(this.size, this.rp.chunkSize, this.ids);
    const name = indexFileName(this.n);
    const stored = storedIndex(this.rp.ctx, this.rp.id, name, header, this.ids);
    await this.rp.ctx.backend.put(`${this.rp.dir}/${name}`, stored, {what: `the index of disk ${this.key}`});
    this.record = {
      key: this.spec.key,
      name: this.spec.name,
      size: this.size,
      ...(this.spec.format !== undefined ? {format: this.spec.format} : {}),
      ...(this.spec.details !== undefined ? {details: this.spec.details} : {}),
      index: name,
      indexSha256: stored.reduce((h, part) => h.update(part), createHash('sha256')).digest('hex'),
      indexBytes: stored.reduce((n, part) => n + part.length, 0),
      stats: {...this.stats},
    };
    return this.record;
  }
}
