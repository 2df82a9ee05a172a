/**
 * Ranged GETs from imageio run in worker threads (range-worker.ts): TLS decryption, the HTTP
 * framing and the garbage the TLS records make stay off the thread that hashes, compresses and
 * writes the repository. Each thread owns its share of the connections; a body comes back as an
 * ArrayBuffer transferred to this thread (no copy) unless the caller gave a buffer of its own.
 *
 * Contract: the same as RangeReader.get() (range-reader.ts), and errors keep their name and code
 * (certificate codes, ECONNRESET, ETIMEDOUT, UnsupportedFramingError). A thread that cannot start
 * (e.g. a packaging that lacks the entry file) rejects with `ThreadsUnavailableError` so that the
 * caller can read on its own thread instead. Threads are unref'd while idle (they never keep the
 * process alive) and end with close(), after the requests already made.
 */
import {Worker} from 'node:worker_threads';
import {UnsupportedFramingError, type RangeReaderOptions, type RangeReply} from './range-reader.js';
import type {RangeRequest, RangeResponse} from './range-worker.js';

export class ThreadsUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`imageio reader thread did not start: ${(cause as Error)?.message ?? String(cause)}`, {cause});
    this.name = 'ThreadsUnavailableError';
  }
}

interface Pending {
  resolve: (r: {reply: RangeReply; data?: Buffer}) => void;
  reject: (e: Error) => void;
}

/** The worker entry beside this module: .js when compiled, .ts under tsx/vitest (then loaded through tsx). */
function entry(): {url: URL; execArgv: string[]} {
  const here = import.meta.url;
  const ts = /\.[cm]?ts$/.test(new URL(here).pathname);
  return {url: new URL(ts ? './range-worker.ts' : './range-worker.js', here), execArgv: ts ? ['--import', 'tsx'] : []};
}

class Thread {
  readonly worker: Worker;
  private readonly ready: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failed: Error | undefined;
  /** Resolved when the last pending request is answered (close() waits for it). */
  private drained: (() => void) | undefined;

  constructor(o: RangeReaderOptions) {
    const {url, execArgv} = entry();
    this.worker = new Worker(url, {workerData: o, execArgv, stdout: false, stderr: false});
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (m !== 'ready') return;
        this.worker.off('message', onMessage);
        this.worker.on('message', (r: RangeResponse) => this.onResponse(r));
        resolve();
      };
      this.worker.on('message', onMessage);
      this.worker.once('error', (e) => {
        this.failAll(e);
        reject(new ThreadsUnavailableError(e));
      });
      this.worker.once('exit', (code) => {
        const e = new ThreadsUnavailableError(new Error(`exited with code ${code}`));
        this.failAll(e);
        reject(e);
      });
    });
    this.ready.catch(() => undefined);
  }

  get load(): number {
    return this.pending.size;
  }

  async get(path: string, offset: number, length: number): Promise<{reply: RangeReply; data?: Buffer}> {
    await this.ready;
    if (this.failed) throw this.failed;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject});
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({id, path, offset, length} satisfies RangeRequest);
    });
  }

  private onResponse(r: RangeResponse): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) {
      this.worker.unref();
      this.drained?.();
    }
    if ('error' in r) {
      const e = r.error.name === 'UnsupportedFramingError' ? new UnsupportedFramingError('') : new Error(r.error.message);
      if (r.error.name === 'UnsupportedFramingError') e.message = r.error.message;
      else e.name = r.error.name;
      if (r.error.code) (e as Error & {code: string}).code = r.error.code;
      p.reject(e);
    } else {
      p.resolve({reply: r.reply, data: r.data ? Buffer.from(r.data) : undefined});
    }
  }

  private failAll(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.drained?.();
  }

  /** Ends the thread once the requests already made are answered. */
  async close(): Promise<void> {
    this.worker.postMessage('close');
    if (this.pending.size > 0) await new Promise<void>((r) => (this.drained = r));
    await this.worker.terminate();
  }
}

export class ThreadedRangeReader {
  private readonly threads: Thread[] = [];
  private closed = false;

  /** `threads` worker threads share `maxConnections` connections. */
  constructor(o: RangeReaderOptions & {threads: number}) {
    const n = Math.max(1, Math.min(o.threads, o.maxConnections));
    for (let i = 0; i < n; i++) {
      const share = Math.floor(o.maxConnections / n) + (i < o.maxConnections % n ? 1 : 0);
      this.threads.push(new Thread({origin: o.origin, ca: o.ca, maxConnections: share, timeoutMs: o.timeoutMs, connectTimeoutMs: o.connectTimeoutMs}));
    }
  }

  /**
   * One ranged GET. The body is returned in `data` (a buffer of its own) for 200/206 answers no
   * longer than asked for; with `into`, it is copied there and `data` is `into`.
   */
  async get(path: string, offset: number, length: number, into?: Buffer): Promise<{reply: RangeReply; data?: Buffer}> {
    if (this.closed) throw Object.assign(new Error('imageio client closed'), {code: 'UND_ERR_CLOSED'});
    let t = this.threads[0]!;
    for (const x of this.threads) if (x.load < t.load) t = x;
    const r = await t.get(path, offset, length);
    if (into && r.data) {
      r.data.copy(into, 0, 0, r.reply.length);
      return {reply: r.reply, data: into.subarray(0, r.reply.length)};
    }
    return r;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.all(this.threads.map((t) => t.close())).then(() => undefined);
  }
}
