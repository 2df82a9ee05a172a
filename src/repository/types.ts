/**
 * The public shapes of the repository: what the engine, the daemon and the CLI code against.
 *
 * Everything here is plain data or an interface; the implementations live in writer.ts,
 * reader.ts, repository.ts. Field names are part of the contract: add, never rename.
 */
import type {Readable} from 'node:stream';

export interface CheckpointInfo {
  id: string;
  data?: Record<string, unknown>;
}

export interface RestorePointSummary {
  id: string;
  vmId: string;
  vmName: string;
  platform: string;
  /** ISO 8601 UTC time the restore point was begun. */
  time: string;
  type: 'full' | 'incremental';
  protected: boolean;
  disks: {key: string; name: string; size: number}[];
  /** Sum of the virtual sizes of the disks. */
  logicalSize: number;
  /** Bytes of chunk files this restore point added to the repository (after dedup and compression). */
  storedSize: number;
  checkpoint?: CheckpointInfo;
  sessionId?: string;
  /** The backup job that wrote it (daemon sessions): its retention is the one that prunes it. */
  jobId?: string;
  /** The restore point this one was based on (incrementals). */
  base?: string;
  /** Its own retention lock (the job's): it cannot be forgotten or pruned before time + lockDays. */
  lockDays?: number;
}

export interface RetentionPolicy {
  keepLast?: number;
  keepWithinDays?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
}

export interface DiskWriteStats {
  key: string;
  /** Virtual size of the disk. */
  logical: number;
  /** Bytes handed to put(), zeros included. */
  dataBytes: number;
  /** Bytes recorded as zero (zero() calls plus all-zero chunks found in put()). */
  zeroBytes: number;
  /** Bytes kept from the base restore point without being put again. */
  baseBytes: number;
  /** Chunks written to the chunk store by this disk. */
  newChunks: number;
  /** Plain (uncompressed) bytes of those new chunks. */
  newPlainBytes: number;
  /** Bytes of chunk files written (headers included, after compression). */
  newStoredBytes: number;
  /** Non-zero chunks put() that the repository already had. */
  reusedChunks: number;
  /** Chunks the repository had damaged (checkReused): quarantined and written again. */
  healedChunks?: number;
  /** Bytes put() that were not all-zero chunks, so were hashed. */
  hashedBytes: number;
  /** Milliseconds spent hashing and compressing chunks (summed over concurrent chunks). */
  processMs?: number;
  /** Milliseconds spent writing chunk files (write, fsync, rename; summed likewise). */
  writeMs?: number;
}

/** The disks' figures added up (timings are per disk only), with the restore point's ratios. */
export interface RestorePointStats extends Omit<DiskWriteStats, 'key' | 'processMs' | 'writeMs'> {
  /** Non-zero bytes put / plain bytes that had to be stored (1 = nothing deduplicated). */
  dedupRatio: number;
  /** Plain bytes of new chunks / bytes stored for them (1 = incompressible). */
  compressionRatio: number;
}

export interface ManifestDisk {
  key: string;
  name: string;
  size: number;
  format?: string;
  details?: Record<string, unknown>;
  /** File name of the disk's index inside the restore point directory. */
  index: string;
  /** SHA-256 (hex) of the whole index file. */
  indexSha256: string;
  indexBytes: number;
  stats: DiskWriteStats;
}

/** The JSON committed as points/<id>/manifest.json (docs/repository-format.md). */
export interface Manifest {
  format: 'vmbackup-restore-point';
  version: number;
  id: string;
  repositoryId: string;
  vm: {id: string; name: string};
  platform: string;
  time: string;
  committedAt: string;
  type: 'full' | 'incremental';
  base?: string;
  sessionId?: string;
  jobId?: string;
  configuration?: {kind: string; text: string};
  checkpoint?: CheckpointInfo;
  warnings: string[];
  /** The point's own retention lock in days (the job's retentionLockDays); honoured from format 3 readers of this vmbackup on. */
  lockDays?: number;
  chunkSize: number;
  disks: ManifestDisk[];
  stats: RestorePointStats;
}

export interface BeginOptions {
  vmId: string;
  vmName: string;
  platform: string;
  /** Restore point id to build on: unchanged ranges keep its chunks. */
  base?: string;
  sessionId?: string;
  /** The backup job writing it; recorded so that each job's retention prunes only its own points. */
  jobId?: string;
  /** The job's retention lock: the point cannot be forgotten or pruned for this many days (1–36500). */
  lockDays?: number;
  configuration?: {kind: string; text: string};
  /** How long to wait for another writer of the same VM (default 30 s). */
  lockTimeoutMs?: number;
  /** Stops the wait for that writer (a stopped backup does not wait 30 s to clean up). */
  signal?: AbortSignal;
  /**
   * Re-check every chunk this backup would reuse (an active full): a damaged one is quarantined
   * and written again from the data in hand, so the new restore point is good whatever silent
   * damage the repository holds (counted as healedChunks).
   */
  checkReused?: boolean;
  /**
   * A copy of another repository's restore point (repository/copy.ts): it keeps that point's id
   * and begin time, so that the copies of a point are one point in both places.
   */
  copyOf?: {id: string; time: string};
  /** @internal Test hooks for crash tests. */
  hooks?: WriterHooks;
}

/** @internal Points where a crash test can stop a writer. */
export interface WriterHooks {
  beforeManifestRename?: () => Promise<void>;
}

export interface DiskSpec {
  key: string;
  name: string;
  size: number;
  format?: string;
  details?: Record<string, unknown>;
}

export interface RestorePointWriter {
  readonly id: string;
  readonly base?: RestorePointSummary;
  readonly chunkSize: number;
  /** Problems the writer worked around (e.g. an unreadable base index); also go into the manifest. */
  readonly warnings: readonly string[];
  addDisk(d: DiskSpec): Promise<DiskWriter>;
  commit(extra?: {checkpoint?: CheckpointInfo; warnings?: string[]; protected?: boolean}): Promise<RestorePointSummary>;
  /** Idempotent; a no-op after commit, so it is safe in a finally. */
  abort(): Promise<void>;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface DiskWriter {
  readonly key: string;
  readonly size: number;
  /** The base has a disk with the same key and size: ranges never written keep its chunks. */
  readonly hasBase: boolean;
  /** Chunk-aligned ranges of the base whose chunks are missing or quarantined: read them in full. */
  missingBaseRanges(): Promise<ByteRange[]>;
  /**
   * offset a multiple of chunkSize; data.length a multiple of chunkSize or ending exactly at size.
   * Several chunks per call allowed; safe to call concurrently for different offsets. Once the
   * promise settles (resolved or rejected) the repository holds no reference to `data`: the
   * caller may reuse the buffer.
   */
  put(offset: number, data: Buffer): Promise<void>;
  /** Aligned range (end may be size) recorded as zeros. */
  zero(offset: number, length: number): Promise<void>;
  /**
   * For a data mover that hashes and packs elsewhere (a worker on the VM's host): records the
   * chunk ids of an aligned range, reuses what the repository has, and returns the indexes
   * (0 = the chunk at `offset`) of the chunks it lacks; each must then come through putPacked().
   */
  offer(offset: number, length: number, ids: Buffer): Promise<number[]>;
  /**
   * A chunk offer() asked for, packed (chunk-file.ts PackedChunk): checked against its id, then
   * stored as it is. `from` names the sender in the error of a refused chunk, `hint` says what to do.
   */
  putPacked(offset: number, chunk: {id: Buffer; flags: number; plainLength: number; payload: Buffer}, from: string, hint?: string): Promise<void>;
  finish(): Promise<DiskWriteStats>;
}

export interface RestorePointReader {
  readonly summary: RestorePointSummary;
  readonly manifest: Manifest;
  openDisk(key: string): Promise<DiskReader>;
}

export interface ChunkMapEntry {
  offset: number;
  length: number;
  zero: boolean;
}

export interface DiskReader {
  readonly size: number;
  readonly chunkSize: number;
  /**
   * Random access; any offset and length inside the disk. With `into` (at least `length` bytes)
   * the data lands there and a view of it is returned: reusing buffers saves page faults.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Sequential, bounded memory. `end` is exclusive. The buffers are read-only: zero chunks come
   * from one shared zero buffer, so a sparse disk streams without allocating.
   */
  stream(opts?: {start?: number; end?: number}): Readable;
  /** Per chunk: zero or data, so a restore can skip zeros on sparse targets. */
  chunkMap(): AsyncIterable<ChunkMapEntry>;
  /** Data and zero runs covering [offset, offset + length), merged, from the index (no I/O). */
  extents(offset: number, length: number): {length: number; zero: boolean}[];
  /** Starts reading the chunks of [offset, offset + length) into the cache (sequential read-ahead). */
  prefetch(offset: number, length: number): void;
}

export interface PruneDecision {
  id: string;
  vmId: string;
  vmName: string;
  time: string;
  keep: boolean;
  /** Why it is kept: 'protected', 'keep-last', 'keep-within', 'daily', 'weekly', 'monthly', 'yearly', 'no-policy'. */
  reasons: string[];
}

export interface PruneResult {
  dryRun: boolean;
  kept: PruneDecision[];
  removed: PruneDecision[];
}

export interface Progress {
  phase: string;
  done: number;
  total: number;
}

export interface GcOptions {
  onProgress?: (p: Progress) => void;
  /**
   * Chunks newer than min(GC start, oldest running writer's start) minus this margin are never
   * removed. Default 5 minutes; it covers clock granularity and writers on other machines' clocks.
   */
  safetyMarginMs?: number;
}

export interface GcResult {
  referencedChunks: number;
  removedChunks: number;
  removedBytes: number;
  /** Unreferenced chunks kept because they are newer than the cut-off (a writer may need them). */
  pendingChunks: number;
  pendingBytes: number;
  removedTempFiles: number;
  /** Referenced chunks found only under a temp name (a GC killed mid-sweep) and put back. */
  recoveredChunks: number;
  /** Restore point directories of dead or aborted writers that were removed. */
  removedPartialRestorePoints: string[];
  /** Chunks that committed indexes reference but that are missing (run verify). */
  missingChunks: number;
  cutoff: string;
  /**
   * Restore points whose manifest or index is damaged. Their chunks are kept (read from their
   * intact index files); when an index cannot be read at all, nothing is swept this time
   * (`sweepSkipped`): "vmbackup repo forget" removes such a point, and GC frees space again.
   */
  damaged: {restorePoint: string; detail: string}[];
  /** Why the sweep did not run (a restore point's chunks could not be known), if it did not. */
  sweepSkipped?: string;
  /** Backups a restart of the machine interrupted, whose chunk files were checked first (interrupted.ts). */
  interrupted?: string;
}

export interface ChunkReference {
  restorePoint: string;
  vmName: string;
  disk: string;
  /** Byte offsets in the disk where the chunk is used. */
  offsets: number[];
}

export interface VerifyProblem {
  chunk: string;
  problem: 'missing' | 'damaged';
  detail: string;
  /** Where the damaged chunk was moved (so a later backup writes it again). */
  quarantinedTo?: string;
  references: ChunkReference[];
}

export interface VerifyReport {
  ok: boolean;
  restorePoints: {id: string; ok: boolean; problems: number}[];
  checkedChunks: number;
  checkedBytes: number;
  problems: VerifyProblem[];
  /** Index files that failed their own checks (truncated, bad checksum, not as in the manifest). */
  indexProblems: {restorePoint: string; disk: string; file: string; detail: string}[];
  /** Restore points whose manifest cannot be used (damaged, refused as hostile, newer version). */
  manifestProblems: DamagedManifest[];
}

export interface DamagedManifest {
  /** The directory name under points/. */
  restorePoint: string;
  file: string;
  detail: string;
}

export interface RepositoryStats {
  restorePoints: number;
  chunks: number;
  /** Bytes of all chunk files. */
  storedBytes: number;
  /** Sum of disk sizes over all restore points. */
  logicalBytes: number;
  /** Non-zero bytes referenced over all restore points. */
  referencedBytes: number;
  /** Plain bytes of the distinct chunks referenced. */
  uniqueBytes: number;
  /** referencedBytes / uniqueBytes. */
  dedupRatio: number;
  /** uniqueBytes / stored bytes of the referenced chunks. */
  compressionRatio: number;
  freeBytes: number;
  totalBytes: number;
}
