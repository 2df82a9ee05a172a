/**
 * The appliance's end of a running worker (main.ts): one SSH session whose stdin/stdout carry
 * the frames of protocol.ts, several disks over it at once.
 *
 * Everything the worker says is untrusted: frames are size-bounded (protocol.ts), ids and chunks
 * are checked by the repository's disk writer (offer/putPacked: counts, places, lengths, and every
 * chunk against its id), and a worker that breaks the protocol, dies, or whose session ends fails
 * every request in flight with a WorkerLostError (the disk task fails cleanly; the platform's
 * abort cleans the host; nothing of the worker keeps running, its stdin is gone).
 */
import {spawn, type ChildProcessWithoutNullStreams} from 'node:child_process';
import type {SshTarget} from '../transports/ssh-args.js';
import {ExitCode, UserError} from '../util/errors.js';
import {workerCommand} from './deploy.js';
import {encodeFrame, encodeIndexes, FrameReader, MAX_FRAME, PROTOCOL_VERSION, ProtocolError, str, uint, type Frame} from './protocol.js';

export class WorkerLostError extends UserError {}

/** How long a new worker may take to greet (the SSH login and the runtime's start-up, ~1 s here). */
const HELLO_TIMEOUT_MS = 60_000;

/** A chunk as the worker sent it: packed (chunk-file.ts PackedChunk). */
export interface WorkerChunk {
  index: number;
  flags: number;
  plainLength: number;
  payload: Buffer;
}

interface Handlers {
  onIds?: (ids: Buffer) => void;
  onChunk?: (c: WorkerChunk) => void;
  onOpened?: (size: number) => void;
  onStats?: (s: WorkerStats) => void;
}

interface Pending {
  handlers: Handlers;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface WorkerStats {
  cpuUserUs: number;
  cpuSystemUs: number;
  maxRssKiB: number;
}

export class WorkerLink {
  /** Bytes the worker sent to the appliance and received from it (the SSH session's payload). */
  bytesIn = 0;
  bytesOut = 0;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<string, Pending>();
  private lost: Error | undefined;
  private stderr = '';
  private nextDisk = 1;
  private readonly exited: Promise<void>;

  private constructor(
    readonly host: string,
    argv: string[],
  ) {
    this.child = spawn(argv[0]!, argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe'], env: {...process.env, LC_ALL: 'C.UTF-8'}});
    const reader = new FrameReader((f) => this.onFrame(f), MAX_FRAME);
    this.child.stdout.on('data', (d: Buffer) => {
      this.bytesIn += d.length;
      if (this.lost) return;
      try {
        reader.push(d);
      } catch (err) {
        this.fail(`broke the protocol (${(err as Error).message})`);
        this.child.kill('SIGKILL');
      }
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        const said = this.stderr.trim().split('\n').slice(-2).join(' / ');
        this.fail(`stopped (${signal ? `signal ${signal}` : `exit code ${code}`}${said ? `: ${said}` : ''})`);
        resolve();
      });
      this.child.on('error', (err) => {
        this.fail(`could not be started (${err.message})`);
        resolve();
      });
    });
  }

  /** Starts the worker deployed in `dir` on the host and greets it; `mac` is an encrypted repository's id key. */
  static async start(opts: {host: string; ssh: SshTarget; dir: string; mac?: Uint8Array}): Promise<WorkerLink> {
    const link = new WorkerLink(opts.host, workerCommand(opts.ssh, opts.dir));
    // A session that opens but never answers (a host too busy, a runtime that hangs) is given up.
    const timer = setTimeout(() => {
      link.fail(`did not answer within ${HELLO_TIMEOUT_MS / 1000} s`);
      link.kill();
    }, HELLO_TIMEOUT_MS);
    try {
      await link.request('hello', {t: 'hello', protocol: PROTOCOL_VERSION, ...(opts.mac ? {mac: Buffer.from(opts.mac).toString('base64')} : {})}, {});
    } catch (err) {
      await link.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return link;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Opens an NBD export on a unix socket of the host, for reading by the worker. */
  async openDisk(socket: string, exportName: string): Promise<WorkerDisk> {
    const n = this.nextDisk++;
    let size = 0;
    await this.request(`open:${n}`, {t: 'open', disk: n, socket, export: exportName}, {
      onOpened: (s) => {
        size = s;
      },
    });
    return new WorkerDisk(this, n, size);
  }

  /** The worker's CPU time and peak memory so far. */
  async stats(): Promise<WorkerStats> {
    let out: WorkerStats | undefined;
    await this.request('stats', {t: 'stats'}, {
      onStats: (s) => {
        out = s;
      },
    });
    return out!;
  }

  /** Ends the worker (bye, then its stdin); kills its session when it does not leave within 10 s. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.send({t: 'bye'});
      this.child.stdin.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Kills the session at once (a cancelled backup). */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** @internal */
  send(header: Frame['header'], body?: Uint8Array): void {
    if (this.lost) throw this.lost;
    for (const part of encodeFrame(header, body)) {
      this.bytesOut += part.length;
      this.child.stdin.write(part);
    }
  }

  /**
   * @internal Sends a message; resolves when its answer came (hello, opened, ids, done, closed,
   * stats: `final` below), after the handler for it ran. A handler that throws rejects it.
   */
  request(key: string, header: Frame['header'], handlers: Handlers, body?: Uint8Array): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.pending.has(key)) return Promise.reject(new Error(`worker request ${key} is already waiting`));
    return new Promise<void>((resolve, reject) => {
      this.pending.set(key, {handlers, resolve, reject});
      try {
        this.send(header, body);
      } catch (err) {
        this.pending.delete(key);
        reject(err as Error);
      }
    });
  }

  /** Runs a handler of request `key`; with `final` the request is answered. */
  private answer(key: string, final: boolean, run: (h: Handlers) => void): void {
    const p = this.pending.get(key);
    if (!p) throw new ProtocolError(`an answer nobody asked for (${key})`);
    try {
      run(p.handlers);
    } catch (err) {
      this.pending.delete(key);
      p.reject(err as Error);
      return;
    }
    if (final) {
      this.pending.delete(key);
      p.resolve();
    }
  }

  private onFrame(f: Frame): void {
    const h = f.header;
    try {
      switch (h.t) {
        case 'hello':
          if (h.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`it speaks protocol ${String(h.protocol)}, the appliance ${PROTOCOL_VERSION}`);
          return this.answer('hello', true, () => undefined);
        case 'opened':
          return this.answer(`open:${uint(h, 'disk')}`, true, (x) => x.onOpened?.(uint(h, 'size')));
        case 'ids':
          return this.answer(`read:${uint(h, 'disk')}:${uint(h, 'seq')}`, true, (x) => x.onIds?.(f.body));
        case 'chunk':
          return this.answer(`need:${uint(h, 'disk')}:${uint(h, 'seq')}`, false, (x) =>
            x.onChunk?.({index: uint(h, 'index'), flags: uint(h, 'flags'), plainLength: uint(h, 'plain'), payload: f.body}),
          );
        case 'done':
          return this.answer(`need:${uint(h, 'disk')}:${uint(h, 'seq')}`, true, () => undefined);
        case 'closed':
          return this.answer(`close:${uint(h, 'disk')}`, true, () => undefined);
        case 'stats':
          return this.answer('stats', true, (x) => x.onStats?.({cpuUserUs: uint(h, 'cpuUserUs'), cpuSystemUs: uint(h, 'cpuSystemUs'), maxRssKiB: uint(h, 'maxRssKiB')}));
        case 'error': {
          const message = str(h, 'message', 2000);
          const disk = typeof h.disk === 'number' ? h.disk : undefined;
          const seq = typeof h.seq === 'number' ? h.seq : undefined;
          const candidates = seq !== undefined ? [`read:${disk}:${seq}`, `need:${disk}:${seq}`] : disk !== undefined ? [`open:${disk}`, `close:${disk}`] : ['hello', 'stats'];
          const keys = candidates.filter((k) => this.pending.has(k));
          if (h.fatal === true || keys.length === 0) {
            this.fail(`reported: ${message}`);
            return;
          }
          for (const k of keys) {
            const p = this.pending.get(k)!;
            this.pending.delete(k);
            p.reject(new UserError(`The worker on ${this.host} could not do its part: ${message}`, {hint: 'See the message; the next backup tries again (with the appliance reading the disk itself if the worker cannot).', exitCode: ExitCode.platformFailed}));
          }
          return;
        }
        default:
          throw new ProtocolError(`an unknown message "${h.t}"`);
      }
    } catch (err) {
      this.fail(`broke the protocol (${(err as Error).message})`);
      this.child.kill('SIGKILL');
    }
  }

  /** @internal Marks the link lost: every request waiting fails with a WorkerLostError saying `why`. */
  fail(why: string): void {
    if (this.lost) return;
    this.lost = new WorkerLostError(`The worker on ${this.host} ${why}.`, {
      hint: 'Nothing of this backup was committed and nothing of the worker keeps running on the host; run the backup again. If this repeats, set the host\'s data mover to the appliance.',
      exitCode: ExitCode.platformFailed,
    });
    for (const p of this.pending.values()) p.reject(this.lost);
    this.pending.clear();
  }
}

/** One disk read by the worker. */
export class WorkerDisk {
  private seq = 0;

  constructor(
    private readonly link: WorkerLink,
    readonly n: number,
    readonly size: number,
  ) {}

  /**
   * The worker reads [offset, offset + length) on the host and hashes it in chunks of
   * `chunkSize`; the ids come back (zero id: an all-zero chunk). The data stays on the worker
   * until fetch() for the same read (every read must be fetched, with no indexes to drop it).
   */
  async read(offset: number, length: number, chunkSize: number): Promise<{seq: number; ids: Buffer}> {
    const seq = ++this.seq;
    let ids: Buffer | undefined;
    await this.link.request(`read:${this.n}:${seq}`, {t: 'read', disk: this.n, seq, offset, length, chunkSize}, {
      onIds: (b) => {
        ids = b;
      },
    });
    return {seq, ids: ids!};
  }

  /** Asks for the packed chunks `indexes` of read `seq`; `onChunk` gets each as it arrives. */
  fetch(seq: number, indexes: readonly number[], onChunk: (c: WorkerChunk) => void): Promise<void> {
    return this.link.request(`need:${this.n}:${seq}`, {t: 'need', disk: this.n, seq}, {onChunk}, encodeIndexes(indexes));
  }

  close(): Promise<void> {
    return this.link.request(`close:${this.n}`, {t: 'close', disk: this.n}, {});
  }
}
