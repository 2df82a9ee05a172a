/**
 * The storage backend: where a repository's bytes live, apart from what they mean.
 *
 * The repository (chunk encoding, indexes, manifests, GC, verify) addresses every file by a
 * key: a relative path of '/'-separated names, e.g. `points/<id>/manifest.json` or
 * `chunks/ab/<64 hex>` (layout.ts). A backend stores objects under those keys. The local
 * directory (local.ts) is the first backend, the in-memory one (memory.ts) the second; both pass
 * one conformance suite (test/repository/storage-conformance.test.ts), which is the contract in
 * executable form. docs/architecture.md "Adding a storage backend" says how to add one.
 *
 * The contract — what the repository relies on, and nothing more:
 *
 * Atomicity
 *   - An object is visible complete or not at all: a reader never sees part of a put, and a
 *     crashed put leaves nothing under the key (at most a leftover the backend cleans itself,
 *     see sweepLeftovers).
 *   - put() replaces atomically; putIfAbsent() never replaces (when two race for one key, one
 *     wins, and both callers may treat the object as present — chunks are content-addressed, so
 *     equal keys hold equal bytes).
 *   - rename() need not be atomic (an object store copies then deletes); the repository uses
 *     it only to set damaged chunks aside, where a crash between the two steps is harmless.
 * Durability
 *   - put, putIfAbsent, delete and rename are durable once a later sync() resolves. The
 *     repository's commit is: chunks and indexes, sync(), the manifest, sync(). So a committed
 *     manifest never names an object that a power cut could lose.
 *   - append() (writer journals) is neither durable nor atomic: a lost line only makes GC wait
 *     its safety margin.
 * Consistency
 *   - Read-after-write for one process: after put/putIfAbsent/delete resolves, get/stat/list in
 *     the same process see it. Across processes the repository needs only what the locks give
 *     (a lock holder sees what the previous holder wrote before releasing).
 *   - list() may be eventually consistent for objects written by another process: GC copes,
 *     because it never removes an object newer than its cut-off (modifiedMs).
 * Time
 *   - modifiedMs is when the object was last written or touch()ed, from a clock that agrees
 *     with this host's within a second. GC's safety rests on it: a chunk a running writer
 *     relies on was touched after that writer started. deleteIfOlder() must decide on the
 *     time at the moment of deletion, so that a touch racing with it keeps the object.
 * Safety
 *   - Keys are built from validated names only (names.ts); a backend still refuses a key with
 *     an empty, '.' or '..' name. Nothing outside the repository is ever read or removed
 *     through a backend, whatever a hostile repository contains (the local one never follows a
 *     symbolic link inside it).
 * Locks
 *   - lock() gives one holder at a time per key. A holder that died is detected by the
 *     backend (the local one: a lock file naming a process that no longer exists on this host)
 *     and its lock taken over; lockOwner() lets GC judge writer registrations the same way.
 *     Which operation takes which lock is the locking table in docs/architecture.md.
 */

export interface PutOptions {
  what?: string;
  beforeVisible?: () => Promise<void>;
}

/** An entry of a listing: an object, or a name under which further keys exist. */
export interface ListEntry {
  name: string;
  /** True for a "directory": a name with keys below it (never followed through a link). */
  dir: boolean;
}

export interface ObjectInfo {
  size: number;
  /** Last write or touch, milliseconds since the epoch (see "Time"). */
  modifiedMs: number;
}

export interface Lock {
  /** Where the lock lives, for messages. */
  readonly path: string;
  release(): Promise<void>;
  /**
   * False once the lock is known to be lost (a lease that expired and was taken over by another
   * process); absent where a lock cannot be lost while its process lives (a lock file).
   */
  held?(): boolean;
}

export interface LockOptions {
  /** What the lock protects, for messages ("backup of VM web01"): stored with the owner. */
  purpose: string;
  timeoutMs: number;
  /** The lock as a user reads it in an error ("garbage collection of repository /x"). */
  what: string;
  hint: string;
  signal?: AbortSignal;
}

/** Who holds a lock or runs a writer, as recorded in its lock file or registration. */
export interface Owner {
  pid: number;
  /** Start time of the process in clock ticks since boot; guards against pid reuse. */
  pidStart: string;
  host: string;
  /** Milliseconds since the epoch when the owner took the lock (or the writer started). */
  since: number;
  purpose: string;
}

/** How sweepLeftovers tells a set-aside copy worth putting back (GC: a referenced chunk). */
export interface Recover {
  /** Copies larger than this are not read. */
  maxBytes: number;
  /** Whether the object `key` is wanted and missing (asked before reading the copy). */
  wants(key: string): boolean;
  /** Whether `bytes` are exactly the object `key`. */
  holds(key: string, bytes: Buffer): boolean;
}

export interface StorageBackend {
  /** Where the repository lives, for messages and for the repository's `path` (a directory, a URL). */
  readonly location: string;
  /** How to name one object in a message (the local backend: its file path). */
  describe(key: string): string;
  /**
   * Chunk I/O in the chunk worker threads: a backend whose objects are files the worker threads
   * can open themselves gives its root directory here, and chunk puts and reads skip the
   * round trip through this thread (measured: docs/benchmarks.md). Others leave it undefined;
   * the threads then only encode and decode.
   */
  readonly workerRoot?: string;
  /** With workerRoot: a chunk worker wrote a new file in directory `dir` (and created it when `newDir`). */
  noteWorkerWrite?(dir: string, newDir: boolean): void;
  /**
   * With workerRoot: chunk workers skip the fsync of each new chunk file. Such a file is visible
   * under its name before its bytes are durable; sync() makes all of them durable at once (one
   * file-system sync instead of one fsync per chunk), and a writer that a crash of the machine
   * stopped before its sync() may leave files that are empty or short: the repository checks
   * them before anything reuses them (interrupted.ts).
   */
  readonly deferWorkerSync?: boolean;
  /**
   * With deferWorkerSync: makes durable what any process of this machine wrote under workerRoot
   * (a dead writer's files too), whatever this instance noted.
   */
  syncWorkerWrites?(): Promise<void>;

  /**
   * The whole object, or undefined when there is none. `max` bounds what may be allocated: a
   * larger object is refused as damaged before it is read (a hostile repository must not
   * choose what the appliance allocates). `what` names it in that error ("manifest").
   */
  get(key: string, opts: {max: number; what: string}): Promise<Buffer | undefined>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** The entries directly under `dir` ('' for the top), in no particular order; [] when none. */
  list(dir: string): Promise<ListEntry[]>;

  /**
   * Stores the object, replacing any (atomic; durable after sync()). `what` names it in errors
   * ("the restore point manifest"); `beforeVisible` runs after the bytes are written and before
   * they become visible (crash tests stop there).
   */
  put(key: string, parts: Uint8Array[], opts?: PutOptions): Promise<void>;
  /**
   * Stores the object unless the key exists; true when it wrote it (atomic; durable after sync()).
   * `seenAbsent`: the caller found the key absent just now and the key is content-addressed (any
   * object under it holds the same data), so a backend that would have to look first (no
   * conditional write) may skip the look-up and replace what a racing writer put meanwhile.
   */
  putIfAbsent(key: string, parts: Uint8Array[], opts?: {seenAbsent?: boolean}): Promise<boolean>;
  /** Appends text to an object, creating it (journals; neither atomic nor durable). */
  append(key: string, text: string): Promise<void>;
  /** Sets the object's modifiedMs to now; false when it does not exist. */
  touch(key: string): Promise<boolean>;
  /** Removes the object; false when there was none (durable after sync()). */
  delete(key: string): Promise<boolean>;
  /** Removes every key under `dir` (a partial or forgotten restore point). */
  deleteTree(dir: string): Promise<void>;
  /**
   * Removes the object only if it was not written or touched since `cutoffMs`, deciding at the
   * moment of removal (a touch racing with this call keeps it). Returns the object's size with
   * what happened.
   */
  deleteIfOlder(key: string, cutoffMs: number): Promise<{status: 'deleted' | 'kept'; size: number} | {status: 'absent'}>;
  /** Moves an object to a key that does not exist; false when `from` does not exist. */
  rename(from: string, to: string): Promise<boolean>;
  /** Makes every put, putIfAbsent, delete and rename that resolved before this call durable. */
  sync(): Promise<void>;

  /** Takes the exclusive lock `key`, waiting up to timeoutMs for a live holder (UserError, ExitCode.locked). */
  lock(key: string, opts: LockOptions): Promise<Lock>;
  /** Whether the owner recorded in a lock or registration is still running. */
  ownerAlive(owner: Owner): boolean;

  /**
   * Clears the backend's own leftovers under `dir` older than `olderThanMs` (the local one:
   * temp files of writes a crash interrupted). An interrupted deleteIfOlder may have left the
   * only copy of an object aside: `recover` says whether such a copy is wanted and holds the
   * object `key`; then it is put back.
   */
  sweepLeftovers(dir: string, olderThanMs: number, recover?: Recover): Promise<{removed: number; recovered: number}>;

  /**
   * touch() rewrites the object (an object store: a server-side copy, one billed request per
   * chunk). Writers then take no touches for what they need of their base: they hold the base
   * restore point for the whole write (GC keeps what a committed, held point names), learn which
   * base chunks exist from a listing, and reuse a chunk whose id is the base's at the same place
   * without touching it. Other reused chunks are still touched (the contract under "Time").
   */
  readonly expensiveTouch?: boolean;

  /**
   * Object stores: whether the bucket has S3 Object Lock (WORM) enabled, probed on the server,
   * with what that means in words. Undefined for storage without such a feature.
   */
  objectLock?(): Promise<{enabled: boolean; detail: string}>;

  /** Free and total bytes of where the repository lives, when known. */
  space(): Promise<{freeBytes: number; totalBytes: number} | undefined>;

  /** Ends what the backend keeps open (a connection); it opens again when used. */
  close?(): Promise<void>;
}

/** Joins key parts with '/'. */
export function key(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join('/');
}

/** Refuses a key a backend must never touch: an empty, '.' or '..' name, or a leading '/'. */
export function assertKey(k: string): void {
  if (k.length === 0 || k.split('/').some((p) => p === '' || p === '.' || p === '..') || k.includes('\0')) {
    throw new Error(`invalid storage key ${JSON.stringify(k)}`);
  }
}
