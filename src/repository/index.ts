/**
 * The native repository: deduplicated, LZ4-compressed restore points of VM disks in one
 * self-describing directory. It knows nothing of hypervisors. The byte layout of every file is
 * in docs/repository-format.md; this comment is the map of the code and of the rules that keep
 * the data safe.
 *
 * Layout (layout.ts)
 *   vmbackup-repository.json   format, version, chunk size, repository id (config-file.ts).
 *   chunks/<2 hex>/<64 hex>    chunk files (format 1: chunks/<4 hex>/). points/<id>/ restore
 *                              points. writers/, locks/.
 *   A copy of the directory is a complete repository: nothing lives outside it.
 *
 * Chunk store (chunk-store.ts, chunk-file.ts)
 *   A disk is cut into fixed-size chunks aligned to disk offsets (a power of two, 1 MiB by
 *   default, fixed at creation). A chunk's id is the SHA-256 of its plain data; its file holds a
 *   12-byte header (magic, version, flags, plain length; format 1: 16 bytes with a CRC-32 of the
 *   payload) and the payload, LZ4-compressed unless that would not make it smaller. The chunk
 *   work (hashing, LZ4, checks, chunk file writes and reads) runs in a small pool of worker
 *   threads (chunk-workers.ts) so the main thread is left to I/O and coordination. All-zero chunks are never stored:
 *   the index records the all-zero id for them. Files are written to a temp name, fsynced and
 *   renamed; the directories written to are fsynced before the restore point commits.
 *
 * Indexes (index-file.ts)
 *   One binary index per disk per restore point: a 64-byte header (geometry and a SHA-256 over
 *   header and ids) and one 32-byte chunk id per chunk. Every restore point is logically full:
 *   an incremental starts from a copy of its base's index and replaces what changed, so reading
 *   a restore point never needs another one, and deleting one never damages another.
 *
 * Manifests (manifest.ts)
 *   points/<id>/manifest.json names the VM (id and real name — the directory name is only a
 *   safe slug), platform, configuration text, disks, the checkpoint the point ends at, the
 *   session, statistics and the SHA-256 of each index file. It is written last (temp, fsync,
 *   rename, directory fsync): its rename IS the commit. No manifest → no restore point; what a
 *   crashed writer left behind is garbage for GC, never a restore point pointing at nothing.
 *   points/<id>/protected is a marker file that prune never overrides.
 *
 * Writing (writer.ts)
 *   beginRestorePoint takes the VM's lock (locks/vm-<hash of VM id>.lock): writers of one VM
 *   are serialized — a second one waits up to lockTimeoutMs, then fails with ExitCode.locked —
 *   and writers of different VMs run at once. It then registers in writers/<id>.json (pid,
 *   process start time, start time) and reads the base's indexes (a prune of the base during
 *   the backup cannot take them away). A DiskWriter with a base touches every base chunk at
 *   addDisk; those that are missing or quarantined come back from missingBaseRanges() so the
 *   engine reads them in full, and finish() refuses to commit an index that would still point
 *   at them. put() detects zero chunks with a memcmp on the main thread and hands every other
 *   chunk to a worker thread, which hashes it, touches it when it exists, else compresses and
 *   writes it; the pool bounds the chunks in flight, so put() feels back-pressure.
 *
 * Reading (reader.ts)
 *   An index is checked against the manifest's checksum and its own; a chunk, in a worker, by
 *   the SHA-256 of its plain data against its id (format 1: by its CRC). Reads are random access
 *   with a small chunk cache, or a stream with a few chunks of read-ahead.
 *
 * Retention (retention.ts)
 *   keep-last, keep-within days, keep daily/weekly/monthly/yearly (UTC periods, ISO weeks), per
 *   VM; protected points are kept and not counted; an empty policy keeps everything. prune
 *   deletes manifests (first) and indexes only; GC frees the chunks.
 *
 * Garbage collection (gc.ts)
 *   Mark every chunk committed indexes reference, sweep unreferenced chunks whose mtime is
 *   older than min(GC start, oldest running writer's start) minus a safety margin. Writers
 *   touch every chunk they rely on, after registering, so GC can run during backups; the
 *   sweep renames a chunk aside before it decides, closing the race with a concurrent touch.
 *   GC also removes temp files and partial restore points of dead writers. Only one GC runs at
 *   a time (locks/gc.lock); GC refuses to run past a manifest or index it cannot read.
 *
 * Verify (verify.ts)
 *   Re-reads and re-hashes every distinct chunk the chosen restore points reference, reports
 *   each missing or damaged chunk with every restore point and disk that uses it, and moves a
 *   damaged chunk aside (<id>.bad) so the next backup writes it again.
 *
 * Locks (lock.ts)
 *   A lock file is created exclusively and names its owner (pid, process start time, host).
 *   It is stale when that process is gone from this host; a stale lock is taken over safely.
 *   Locks: VM writer lock (one per VM), GC lock (exclusive). There is no repository-wide lock:
 *   readers need none, since committed files are never modified, only removed by prune.
 *
 * Versioning (config-file.ts)
 *   The configuration names the format version. This code reads and writes every version up
 *   to FORMAT_VERSION (2); a newer one fails with ExitCode.unsupportedVersion. New
 *   repositories are version 2; a version 1 repository keeps writing version 1 (its chunk
 *   layout and chunk files; never mixed). test/fixtures/repo-v1 and repo-v2 are repositories
 *   written by those versions that every later version must keep reading.
 *
 * Errors
 *   Every I/O error names the file (and chunk id or restore point); ENOSPC becomes a UserError
 *   with ExitCode.noSpace; a damaged file a UserError with ExitCode.corrupt.
 */
export {Repository, createRepository, createRepositoryOn, openRepository, openRepositoryOn, DEFAULT_LOCK_TIMEOUT_MS, S3_CHUNK_SIZE, type CreateOptions, type OpenOptions} from './repository.js';
export {S3Backend, isS3Url} from './storage/s3.js';
export {parseS3Credentials, type S3Credentials} from './storage/s3-client.js';
export type {StorageBackend} from './storage/backend.js';
export {LocalDirectoryBackend} from './storage/local.js';
export {MemoryBackend} from './storage/memory.js';
export {SshBackend, type SshRepositoryAccess} from './storage/ssh.js';
export {serveRepositoryDirectory} from './storage/serve.js';
export {DEFAULT_CHUNK_SIZE, ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION, CONFIG_FILE} from './config-file.js';
export {checkPassphrase} from './crypto.js';
export {planRetention, periodKey} from './retention.js';
export {copyRestorePoints, type CopyOptions, type CopyProgress, type CopyResult, type CopiedPoint} from './copy.js';
export type * from './types.js';
