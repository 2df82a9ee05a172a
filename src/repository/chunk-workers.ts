/**
 * The chunk worker pool: one small pool of worker threads per process that does the CPU-heavy
 * part of the repository's chunk work (SHA-256, LZ4 both ways, checks) and the blocking file
 * work that goes with it (touch, write + fsync + rename, read). See chunk-worker.ts for what a
 * worker does per request.
 *
 * - Created lazily on first use; its threads are unref'd while idle, so the pool never keeps a
 *   process alive, and ref'd while they hold work, so a process awaiting a chunk does not exit.
 * - Bounded: at most `maxInFlight` requests are on the threads at once; further requests wait
 *   in a queue holding only a reference to the caller's buffer (back-pressure to put()).
 * - No allocation per chunk to hand it over: each request in flight owns one slot of a
 *   SharedArrayBuffer (maxInFlight slots of SLOT_SIZE, shared with every thread) and put()
 *   copies the chunk into it. A chunk larger than a slot (chunk size over 1 MiB) goes in its
 *   own ArrayBuffer, transferred (structured clone of a subarray would copy its whole backing
 *   store). A read with a destination (a reader's large run: restores) is decoded into its
 *   request's slot and copied from there into the caller's buffer when the reply arrives, so
 *   neither thread allocates per chunk; other read results come back in an ArrayBuffer the
 *   worker allocated (with V8, so this thread's GC sees it) and transferred.
 * - Size: measured on the 2-core development machine (bench/lib/stage-costs.ts and the libvirt
 *   benchmark, docs/benchmarks.md): 2, 3 and 4 threads were within the noise of a shared
 *   machine for CPU; 3 is the default for 2 cores (a thread in fsync leaves its core to another).
 * - A thread that dies fails the requests it held with an error that says so and is replaced
 *   by the next request.
 * - Size: VMBACKUP_CHUNK_WORKERS, else os.availableParallelism() + 1 (a thread blocked in fsync
 *   leaves a core to the others), at most 8.
 */
import {availableParallelism} from 'node:os';
import {Worker} from 'node:worker_threads';
import {MAX_CHUNK_SIZE} from './config-file.js';
import type {ChunkKeys} from './crypto.js';

export interface PutRequest {
  op: 'put';
  seq: number;
  root: string;
  version: number;
  /** The chunk: in slot `slot` of the shared slots, or in `data` (transferred). */
  slot?: number;
  data?: ArrayBuffer;
  length: number;
  /** Check an existing chunk file against the data before reusing it (see BeginOptions.checkReused). */
  check?: boolean;
  /**
   * fsync the new chunk file before its rename. Without it the file is visible at once and
   * durable only after the backend's sync() (a file-system sync; storage/local.ts "Chunk files").
   */
  fsync?: boolean;
  /**
   * Only hash and encode: the reply carries the chunk file's bytes (`encoded`) for the main
   * thread to store through a backend the worker cannot reach (storage/backend.ts workerRoot).
   */
  encodeOnly?: boolean;
  /** An encrypted repository's keys (crypto.ts): the id is keyed, the file format 3. */
  keys?: ChunkKeys;
  /**
   * The chunk comes packed from elsewhere (a worker on a host, src/worker/): the slot or `data`
   * holds its payload; the thread unpacks it, checks that it hashes to `id` (refused with
   * FOREIGN_CHUNK_REFUSED otherwise) and stores the payload as it is, without compressing again.
   */
  packed?: {flags: number; plainLength: number; id: Uint8Array; maxPlain: number};
}
/** The failure code of a packed chunk that does not unpack or does not hash to its id. */
export const FOREIGN_CHUNK_REFUSED = 'EFOREIGNCHUNK';
/** Sent once to each thread as its workerData. */
export interface WorkerInit {
  slots: SharedArrayBuffer;
  slotSize: number;
}
export interface ReadRequest {
  op: 'read';
  seq: number;
  /** The chunk file to read, or its bytes in `raw` (transferred) when the main thread fetched them. */
  path: string;
  raw?: ArrayBuffer;
  hex: string;
  /** Check the SHA-256 whatever the chunk format (verify). */
  verify: boolean;
  /** Send the plain data back (false for verify). */
  want: boolean;
  /** The repository's chunk size: a file or header that claims more is damaged (chunk-file.ts). */
  maxPlain: number;
  /** An encrypted repository's keys. */
  keys?: ChunkKeys;
  /**
   * With `want`: put the plain data into this shared slot (when it fits) instead of a transferred
   * ArrayBuffer; the pool copies it out to the caller's buffer before the slot is reused.
   */
  slot?: number;
}
export interface ExitRequest {
  op: 'exit';
  seq: number;
  code: number;
}
export type WorkerRequest = PutRequest | ReadRequest | ExitRequest;

export interface PutReply {
  kind: 'put';
  /** The chunk id (SHA-256 of the plain data). */
  id: Uint8Array;
  /** False when the repository already had the chunk (it was touched). */
  isNew: boolean;
  /** The repository had it damaged: it was quarantined and written again (isNew is true). */
  healed?: boolean;
  storedBytes: number;
  /** The directory whose entry must be fsynced before a commit (when isNew). */
  dir: string;
  /** The chunk directory was created by this put. */
  newDir: boolean;
  hashMs: number;
  encodeMs: number;
  writeMs: number;
  /** With encodeOnly: the chunk file (header and payload), transferred. */
  encoded?: ArrayBuffer;
}
export type ReadReply =
  | {kind: 'read'; status: 'ok'; plainLength: number; data?: ArrayBuffer; offset?: number; length?: number; inSlot?: boolean}
  | {kind: 'read'; status: 'missing'}
  | {kind: 'read'; status: 'damaged'; detail: string};
export interface WorkerFailure {
  kind: 'failure';
  message: string;
  code?: string;
  file?: string;
  action?: string;
}
export type WorkerReply = PutReply | ReadReply | WorkerFailure;

/** A failure inside a worker, rebuilt on the main thread; chunk-store.ts turns it into the usual error. */
export class ChunkWorkerError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly file: string | undefined,
    readonly action: string | undefined,
  ) {
    super(message);
  }
}

const MAX_WORKERS = 8;
/** Bytes of one shared slot: the default chunk size. */
export const SLOT_SIZE = 1 << 20;
/** Requests queued on one thread; enough to keep it busy while its reply crosses back. */
const PER_WORKER = 3;

export function defaultPoolSize(): number {
  const env = Number(process.env.VMBACKUP_CHUNK_WORKERS);
  if (Number.isInteger(env) && env >= 1) return Math.min(env, MAX_WORKERS);
  return Math.max(2, Math.min(availableParallelism() + 1, MAX_WORKERS));
}

interface Job {
  seq: number;
  what: string;
  /** The shared slot this job holds while on a thread. */
  slot?: number;
  build: (seq: number, slot: number) => {msg: WorkerRequest; transfer: ArrayBuffer[]};
  /** A read's destination: the plain bytes [from, from + into.length) are copied there. */
  into?: {dest: Uint8Array; from: number};
  resolve: (r: PutReply | ReadReply) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
  lastError?: Error;
}

function workerEntry(): {url: URL; execArgv: string[] | undefined} {
  // Compiled code runs the .js next to this file; under tsx/vitest the .ts source needs tsx.
  const ts = import.meta.url.endsWith('.ts');
  return {url: new URL(ts ? './chunk-worker.ts' : './chunk-worker.js', import.meta.url), execArgv: ts ? ['--import', 'tsx'] : undefined};
}

export class ChunkWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Job[] = [];
  private inFlight = 0;
  private seq = 0;
  private closed = false;
  readonly maxInFlight: number;
  private readonly shared: SharedArrayBuffer;
  private readonly freeSlots: number[];

  constructor(readonly size: number = defaultPoolSize()) {
    this.maxInFlight = size * PER_WORKER;
    this.shared = new SharedArrayBuffer(this.maxInFlight * SLOT_SIZE);
    this.freeSlots = Array.from({length: this.maxInFlight}, (_, i) => i);
  }

  /** Hashes a chunk and stores it unless the repository has it (see chunk-worker.ts). */
  put(root: string, version: number, plain: Uint8Array, opts: {check?: boolean; fsync?: boolean; keys?: ChunkKeys} = {}): Promise<PutReply> {
    return this.putRequest(`storing a chunk in ${root}`, {root, version, check: opts.check === true, fsync: opts.fsync !== false, ...(opts.keys ? {keys: opts.keys} : {})}, plain);
  }

  /** Hashes and encodes a chunk in `version`'s chunk format; the reply's `encoded` is the file. */
  encode(version: number, plain: Uint8Array, keys?: ChunkKeys, packed?: PutRequest['packed']): Promise<PutReply & {encoded: ArrayBuffer}> {
    return this.putRequest('encoding a chunk', {root: '', version, encodeOnly: true, ...(keys ? {keys} : {}), ...(packed ? {packed} : {})}, plain) as Promise<PutReply & {encoded: ArrayBuffer}>;
  }

  /** Like put(), for a chunk packed elsewhere: `payload` is checked against `packed.id` (PutRequest.packed). */
  putPacked(root: string, version: number, payload: Uint8Array, packed: NonNullable<PutRequest['packed']>, opts: {fsync?: boolean; keys?: ChunkKeys} = {}): Promise<PutReply> {
    return this.putRequest(`storing a chunk in ${root}`, {root, version, fsync: opts.fsync !== false, packed, ...(opts.keys ? {keys: opts.keys} : {})}, payload);
  }

  private putRequest(what: string, fields: {root: string; version: number; check?: boolean; fsync?: boolean; encodeOnly?: boolean; keys?: ChunkKeys; packed?: PutRequest['packed']}, plain: Uint8Array): Promise<PutReply> {
    return this.submit(what, (seq, slot) => {
      if (plain.length <= SLOT_SIZE) {
        new Uint8Array(this.shared, slot * SLOT_SIZE, plain.length).set(plain);
        return {msg: {op: 'put', seq, ...fields, slot, length: plain.length}, transfer: []};
      }
      const data = new ArrayBuffer(plain.length);
      new Uint8Array(data).set(plain);
      return {msg: {op: 'put', seq, ...fields, data, length: plain.length}, transfer: [data]};
    }) as Promise<PutReply>;
  }

  /**
   * Reads, checks and decodes a chunk file. With `into`, the plain bytes from offset `from` are
   * copied into `into` (as many as it holds, or as the chunk has) and the reply carries no data:
   * the worker leaves them in the request's shared slot, so no buffer is allocated or
   * transferred per chunk (a restore's main thread spent ~1 s per 830 MiB collecting those).
   */
  read(path: string, hex: string, opts: {verify?: boolean; want?: boolean; into?: Uint8Array; from?: number; maxPlain?: number; raw?: Buffer; keys?: ChunkKeys} = {}): Promise<ReadReply> {
    const into = opts.into !== undefined ? {dest: opts.into, from: opts.from ?? 0} : undefined;
    const raw = opts.raw;
    return this.submit(
      `reading chunk ${hex}`,
      (seq, slot) => {
        // The fetched bytes go over in an ArrayBuffer of their own (a view would send its whole backing store).
        const rawCopy = raw === undefined ? undefined : new Uint8Array(raw).slice().buffer;
        return {
          msg: {op: 'read', seq, path, hex, verify: opts.verify ?? false, want: opts.want ?? true, maxPlain: opts.maxPlain ?? MAX_CHUNK_SIZE, ...(into ? {slot} : {}), ...(rawCopy ? {raw: rawCopy} : {}), ...(opts.keys ? {keys: opts.keys} : {})},
          transfer: rawCopy ? [rawCopy] : [],
        };
      },
      into,
    ) as Promise<ReadReply>;
  }

  /** Tests only: makes every thread exit with `code` when it reaches this request. */
  exitAllForTest(code: number): void {
    for (const s of this.slots) s.worker.postMessage({op: 'exit', seq: -1, code} satisfies ExitRequest);
  }

  get threads(): number {
    return this.slots.length;
  }

  private submit(what: string, build: Job['build'], into?: Job['into']): Promise<PutReply | ReadReply> {
    if (this.closed) return Promise.reject(new Error('the chunk worker pool was shut down'));
    return new Promise((resolve, reject) => {
      this.waiting.push({seq: 0, what, build, resolve, reject, ...(into ? {into} : {})});
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const slot = this.pick();
      const job = this.waiting.shift()!;
      job.seq = ++this.seq;
      job.slot = this.freeSlots.pop()!;
      let built;
      try {
        built = job.build(job.seq, job.slot);
      } catch (err) {
        this.freeSlots.push(job.slot);
        job.reject(err as Error);
        continue;
      }
      slot.jobs.set(job.seq, job);
      this.inFlight++;
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage(built.msg, built.transfer);
    }
  }

  /** The thread with the fewest requests; a new thread while the pool is not full. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    if (best && (best.jobs.size === 0 || this.slots.length >= this.size)) return best;
    return this.spawn();
  }

  private spawn(): Slot {
    const {url, execArgv} = workerEntry();
    const workerData: WorkerInit = {slots: this.shared, slotSize: SLOT_SIZE};
    const worker = new Worker(url, {...(execArgv ? {execArgv} : {}), name: 'vmbackup-chunk-worker', workerData});
    const slot: Slot = {worker, jobs: new Map()};
    worker.unref();
    worker.on('message', (m: {seq: number; reply: WorkerReply}) => this.settle(slot, m.seq, m.reply));
    worker.on('error', (err) => {
      slot.lastError = err;
    });
    worker.on('exit', (exitCode) => this.lost(slot, exitCode));
    this.slots.push(slot);
    return slot;
  }

  private settle(slot: Slot, seq: number, reply: WorkerReply): void {
    const job = slot.jobs.get(seq);
    if (!job) return;
    slot.jobs.delete(seq);
    this.inFlight--;
    if (job.into && reply.kind === 'read' && reply.status === 'ok') this.copyOut(job, reply);
    this.freeSlots.push(job.slot!);
    if (slot.jobs.size === 0) slot.worker.unref();
    if (reply.kind === 'failure') job.reject(new ChunkWorkerError(reply.message, reply.code, reply.file, reply.action));
    else job.resolve(reply);
    this.pump();
  }

  /** A read with a destination: its plain data, from the job's slot or the transferred buffer, into it. */
  private copyOut(job: Job, reply: ReadReply & {status: 'ok'}): void {
    const {dest, from} = job.into!;
    const n = Math.max(0, Math.min(dest.length, reply.plainLength - from));
    if (reply.inSlot) {
      dest.set(new Uint8Array(this.shared, job.slot! * SLOT_SIZE + from, n));
    } else if (reply.data) {
      dest.set(new Uint8Array(reply.data, (reply.offset ?? 0) + from, n));
      delete reply.data;
    }
  }

  private lost(slot: Slot, exitCode: number): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const why = slot.lastError ? `: ${slot.lastError.message}` : '';
    for (const job of slot.jobs.values()) {
      this.inFlight--;
      // The dead thread no longer touches its slots.
      this.freeSlots.push(job.slot!);
      job.reject(
        new Error(
          `A chunk worker thread stopped (exit code ${exitCode}${why}) while ${job.what}; that operation did not complete. Run the operation again; if this repeats, report it with the log.`,
        ),
      );
    }
    slot.jobs.clear();
    if (!this.closed) this.pump();
  }

  /** Stops every thread; requests still on them or waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new Error('the chunk worker pool was shut down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let pool: ChunkWorkerPool | undefined;

/** The process's pool, created on first use. */
export function chunkWorkers(): ChunkWorkerPool {
  return (pool ??= new ChunkWorkerPool());
}

/** Terminates the process's pool (a later use creates a new one). */
export async function shutdownChunkWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}
