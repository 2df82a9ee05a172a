/**
 * The SSH storage backend: a repository in a directory of another vmbackup appliance, reached
 * over SSH (ssh://USER@HOST[:PORT]/PATH) — the offsite copy of 3-2-1 without an object store.
 *
 * The far appliance runs `vmbackup repo serve PATH` (serve.ts) in the SSH session this backend
 * opens and keeps the files there with its local directory backend; this end sends each
 * operation of the storage contract (backend.ts) as a request over that session
 * (remote-protocol.ts), many in flight at once. The repository logic — encryption, chunk
 * encoding, dedup, commit, GC, verify — runs here, so what crosses the network is what the
 * repository stores: new chunks, LZ4-compressed (and encrypted when the repository is), indexes
 * and manifests; chunks the far side has are found with a stat and never sent.
 *
 * How it keeps the contract:
 *  - atomicity and durability are the far side's local backend's (temp file + rename, fsync on
 *    sync()); a put is one request, visible when its reply says so;
 *  - time: the far machine's clock may differ from this one's; the offset measured at hello is
 *    taken out of every modifiedMs and put into every cut-off, so GC's margins hold;
 *  - locks are lock files the server process holds on the far side: when the session ends (a
 *    killed appliance, a cut network) that process exits and the locks are stale there; here the
 *    lock says held() false from then on;
 *  - ownerAlive: an owner of this machine is judged here; one of another machine is taken as
 *    alive (never judged stale from afar);
 *  - trust: ssh with the appliance's rules (ssh-args.ts: BatchMode, a pinned host key, one
 *    identity); every reply is checked (sizes against what was asked, names, numbers) — a
 *    hostile far side cannot make this end allocate or believe more than the contract allows.
 *
 * The session is opened on first use and closed after IDLE_MS without requests or locks, and
 * opened again when needed (a daemon keeps its repositories open for days).
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {once} from 'node:events';
import {randomBytes} from 'node:crypto';
import {encodeFrame, FrameReader, type Frame} from '../../util/frames.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {SELF_LEASE} from '../../util/process-lease.js';
import {sshUrl, type SshLocation} from '../../util/ssh-url.js';
import {classifySshFailure, sshFailureError, sshStreamArgv, type SshTarget} from '../../transports/ssh-args.js';
import {assertKey, type ListEntry, type Lock, type LockOptions, type ObjectInfo, type Owner, type PutOptions, type Recover, type StorageBackend} from './backend.js';
import {isAlive} from '../lock.js';
import {sweepLeftoversWith, type Leftover} from './local.js';
import {fromWire, REMOTE_HEADROOM, REMOTE_PROTOCOL, type Op} from './remote-protocol.js';

/** How this appliance logs in to the far one. */
export interface SshRepositoryAccess {
  /** The private key (the appliance's own, or one given for the command). */
  identityFile: string;
  /** A known_hosts file that holds the far machine's host key (never trusted unseen). */
  knownHostsFile: string;
  /** The vmbackup command on the far machine, as argv; default ['vmbackup']. */
  command?: readonly string[];
}

const IDLE_MS = 30_000;
const HELLO_TIMEOUT_MS = 60_000;
/** Requests in flight at once: enough to hide the round trip, few enough to bound memory. */
const MAX_IN_FLIGHT = 64;
const NAME = /^[A-Za-z0-9._+=@,~-]{1,255}$/;
/** The largest listing of one directory taken (JSON): a million entries. */
const LISTING_MAX = 64 << 20;
const SMALL_REPLY = 65536;

interface Pending {
  resolve: (r: {v: unknown; body: Buffer}) => void;
  reject: (err: Error) => void;
  /** The largest body its reply may carry (a get's max). */
  max: number;
}

interface Session {
  child: ChildProcess;
  pending: Map<number, Pending>;
  /** Far clock minus this one's, ms. */
  offset: number;
  /** Set when the session ended: every call after fails with it (and opens a new session). */
  ended?: Error;
  locks: number;
}

export class SshBackend implements StorageBackend {
  readonly location: string;
  private session?: Promise<Session>;
  private nextId = 1;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private idle?: NodeJS.Timeout;
  private readonly target: SshTarget;

  constructor(
    private readonly where: SshLocation,
    private readonly access: SshRepositoryAccess,
  ) {
    this.location = sshUrl(where);
    this.target = {host: where.host, port: where.port, user: where.user, identityFile: access.identityFile, knownHostsFile: access.knownHostsFile};
  }

  describe(key: string): string {
    return `${this.location}/${key}`;
  }

  // ---- the session ---------------------------------------------------------------------------

  private open(): Promise<Session> {
    const current = this.session;
    if (current) return current;
    const s = this.connect();
    this.session = s;
    s.catch(() => {
      if (this.session === s) this.session = undefined;
    });
    return s;
  }

  private async connect(): Promise<Session> {
    const argv = sshStreamArgv(this.target, [...(this.access.command ?? ['vmbackup']), 'repo', 'serve', this.where.path]);
    const child = spawn(argv[0]!, argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe']});
    const session: Session = {child, pending: new Map(), offset: 0, locks: 0};
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 65536) stderr += d;
    });
    let hello: ((h: Frame['header']) => void) | undefined;
    const greeted = new Promise<Frame['header']>((resolve) => (hello = resolve));
    const end = (err: Error) => {
      if (session.ended) return;
      session.ended = err;
      if (this.current === session) {
        this.current = undefined;
        this.session = undefined;
      }
      for (const p of session.pending.values()) p.reject(err);
      session.pending.clear();
      if (!child.killed && child.exitCode === null) child.kill('SIGTERM');
    };
    const reader = new FrameReader((f) => {
      if (f.header.t === 'hello') return hello?.(f.header);
      if (f.header.t !== 'r') throw new Error(`an unknown message "${f.header.t}"`);
      const id = f.header.id;
      const p = typeof id === 'number' ? session.pending.get(id) : undefined;
      if (!p) throw new Error(`a reply to no request (${String(id)})`);
      session.pending.delete(id as number);
      if (f.header.err !== undefined) return p.reject(fromWire(f.header.err, this.location));
      if (f.header.found === true) return p.resolve({v: {found: true}, body: f.body});
      if (f.header.json !== true) return p.resolve({v: undefined, body: f.body});
      let v: unknown;
      try {
        v = JSON.parse(f.body.toString('utf8'));
      } catch {
        throw new Error('a reply that is not JSON');
      }
      p.resolve({v, body: Buffer.alloc(0)});
    }, () => {
      // Only as large a reply as a request in flight allows (a get's max), plus the header.
      let max = 0;
      for (const p of session.pending.values()) max = Math.max(max, p.max);
      return max + REMOTE_HEADROOM;
    });
    child.stdout!.on('data', (d: Buffer) => {
      try {
        reader.push(d);
      } catch (err) {
        end(this.broken(err instanceof Error ? err.message : String(err)));
      }
    });
    child.stdin!.on('error', () => undefined);
    const exited = new Promise<Error>((resolve) => {
      child.once('error', (err) => resolve(new UserError(`ssh could not be started for ${this.location}: ${err.message}`, {hint: 'Install the OpenSSH client (openssh-client).', exitCode: ExitCode.unreachable})));
      child.once('close', (code, signal) => resolve(this.exitError(code, signal, stderr)));
    });
    void exited.then((err) => end(err));
    this.current = session;
    this.hold(this.inFlight > 0);
    child.stdin!.write(Buffer.concat(encodeFrame({t: 'hello', protocol: REMOTE_PROTOCOL, path: this.where.path})));
    const sentAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      greeted,
      exited,
      new Promise<Error>((resolve) => {
        timer = setTimeout(() => resolve(new UserError(`${this.location} did not answer within ${HELLO_TIMEOUT_MS / 1000} s.`, {hint: 'Check that the far machine runs vmbackup and is not overloaded.', exitCode: ExitCode.unreachable})), HELLO_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (first instanceof Error) {
      end(first);
      throw first;
    }
    const h = first;
    if (h.protocol !== REMOTE_PROTOCOL || typeof h.now !== 'number' || typeof h.path !== 'string') {
      const err = this.broken(`its hello (protocol ${String(h.protocol)}) is not vmbackup's repository protocol ${REMOTE_PROTOCOL}`);
      end(err);
      throw err;
    }
    if (h.path !== this.where.path) {
      // A key pinned to `repo serve OTHER` in authorized_keys: never write where the user did not say.
      const err = new UserError(`${sshUrl({...this.where})} is served from ${h.path.slice(0, 300)} on the far machine, not from ${this.where.path}.`, {
        hint: `The SSH key is tied to "vmbackup repo serve ${h.path.slice(0, 300)}" there (authorized_keys): use that path in the address, or change the key's command.`,
        exitCode: ExitCode.invalidInput,
      });
      end(err);
      throw err;
    }
    session.offset = h.now - Math.round((sentAt + Date.now()) / 2);
    return session;
  }

  private current?: Session;

  private broken(what: string): UserError {
    return new UserError(`${this.location} broke vmbackup's repository protocol: ${what}.`, {
      hint: 'Run the same vmbackup version on both appliances; if it is the same, the far machine may not be what it claims.',
      exitCode: ExitCode.invalidInput,
    });
  }

  private exitError(code: number | null, signal: NodeJS.Signals | null, stderr: string): Error {
    const said = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join(' / ').slice(0, 2000);
    if (code === 255) return sshFailureError(this.target, classifySshFailure(stderr), stderr);
    if (code === 127 || /command not found|No such file or directory/.test(said)) {
      return new UserError(`${this.where.host} does not run vmbackup (${said || `exit ${code}`}).`, {
        hint: `Install vmbackup on ${this.where.host} (the far appliance serves the repository with "vmbackup repo serve"), or give the command's path in the repository's settings.`,
        exitCode: ExitCode.unreachable,
      });
    }
    if (code === 0 && said === '') return new UserError(`The connection to ${this.location} ended.`, {hint: 'It is opened again at the next use.', exitCode: ExitCode.unreachable});
    return new UserError(`The connection to ${this.location} ended (${said || (signal ? `signal ${signal}` : `exit ${code}`)}).`, {
      hint: 'Check the far appliance (its disk, its log) and the network; the next use opens the connection again. Restore points committed before are unaffected.',
      exitCode: ExitCode.unreachable,
    });
  }

  /** One request; resolves with the reply's value and body. */
  private async call(op: Op, args: Record<string, unknown>, body?: Uint8Array[], sent?: (s: Session, id: number) => void): Promise<{v: unknown; body: Buffer}> {
    clearTimeout(this.idle);
    while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiting.push(r));
    if (this.inFlight++ === 0) this.hold(true);
    try {
      const s = await this.open();
      if (s.ended) throw s.ended;
      const id = this.nextId++;
      // What its reply may carry: a get's data, a listing's JSON, a small value.
      const max = op === 'get' || op === 'readLeftover' ? Number(args.max) : op === 'list' || op === 'leftovers' ? LISTING_MAX : SMALL_REPLY;
      const reply = new Promise<{v: unknown; body: Buffer}>((resolve, reject) => s.pending.set(id, {resolve, reject, max}));
      let ok = true;
      for (const part of encodeFrame({t: 'q', id, op, ...args}, body)) ok = s.child.stdin!.write(part);
      sent?.(s, id);
      if (!ok && !s.ended) await Promise.race([once(s.child.stdin!, 'drain'), reply.catch(() => undefined)]);
      return await reply;
    } finally {
      if (--this.inFlight === 0) this.hold(false);
      this.waiting.shift()?.();
      this.armIdle();
    }
  }

  /**
   * Whether the session keeps this process alive: while requests are in flight only (a command
   * that is done must not wait for the idle close; its exit ends the session, and the far side
   * then releases what it held).
   */
  private hold(on: boolean): void {
    const c = this.current?.child;
    if (!c) return;
    for (const h of [c, c.stdin, c.stdout, c.stderr] as ({ref?(): void; unref?(): void} | null)[]) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  /** Cancels request `of` on the far side (a lock wait given up). */
  private cancel(s: Session, of: number): void {
    if (!s.ended) s.child.stdin!.write(Buffer.concat(encodeFrame({t: 'cancel', of})));
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    if (this.inFlight > 0) return;
    this.idle = setTimeout(() => void this.closeIdle(), IDLE_MS);
    this.idle.unref();
  }

  private async closeIdle(): Promise<void> {
    const s = this.current;
    if (!s || s.ended || s.locks > 0 || this.inFlight > 0 || s.pending.size > 0) return;
    await this.close();
  }

  /** Ends the session (locks held through it are released on the far side). */
  async close(): Promise<void> {
    const s = this.current;
    clearTimeout(this.idle);
    if (!s || s.ended) return;
    this.session = undefined;
    s.child.stdin!.end();
    const closed = once(s.child, 'close').catch(() => undefined);
    const t = setTimeout(() => s.child.kill('SIGTERM'), 10_000);
    await closed;
    clearTimeout(t);
  }

  // ---- checks of what the far side says ----------------------------------------------------

  private info(v: unknown, offset: number): ObjectInfo | undefined {
    if (v === null || v === undefined) return undefined;
    const o = v as {size?: unknown; modifiedMs?: unknown};
    if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0 || typeof o.modifiedMs !== 'number' || !Number.isFinite(o.modifiedMs)) {
      throw this.broken('an object size or time that is not a number');
    }
    return {size: o.size, modifiedMs: o.modifiedMs - offset};
  }

  private async offset(): Promise<number> {
    return (await this.open()).offset;
  }

  // ---- the contract --------------------------------------------------------------------------

  async get(key: string, opts: {max: number; what: string}): Promise<Buffer | undefined> {
    assertKey(key);
    const r = await this.call('get', {key, max: opts.max, what: opts.what});
    if ((r.v as {found?: unknown})?.found !== true) return undefined;
    if (r.body.length > opts.max) {
      throw new UserError(`The ${opts.what} from ${this.describe(key)} is ${r.body.length} bytes, more than the ${opts.max} allowed: it is damaged or not vmbackup's.`, {exitCode: ExitCode.corrupt});
    }
    return r.body;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertKey(key);
    const offset = await this.offset();
    return this.info((await this.call('stat', {key})).v, offset);
  }

  async list(dir: string): Promise<ListEntry[]> {
    if (dir !== '') assertKey(dir);
    const {v} = await this.call('list', {dir});
    if (!Array.isArray(v)) throw this.broken('a listing that is not a list');
    return v.map((e: unknown) => {
      const o = e as {name?: unknown; dir?: unknown};
      if (typeof o?.name !== 'string' || !NAME.test(o.name) || o.name === '.' || o.name === '..' || typeof o.dir !== 'boolean') throw this.broken(`a listed name that cannot be one (${JSON.stringify(o?.name)?.slice(0, 80)})`);
      return {name: o.name, dir: o.dir};
    });
  }

  async put(key: string, parts: Uint8Array[], opts: PutOptions = {}): Promise<void> {
    assertKey(key);
    // Written and made visible in one step on the far side: a stop here leaves the old object.
    await opts.beforeVisible?.();
    await this.call('put', {key, what: opts.what ?? key}, parts);
  }

  async putIfAbsent(key: string, parts: Uint8Array[]): Promise<boolean> {
    assertKey(key);
    return (await this.call('putIfAbsent', {key}, parts)).v === true;
  }

  async append(key: string, text: string): Promise<void> {
    assertKey(key);
    await this.call('append', {key, text});
  }

  async touch(key: string): Promise<boolean> {
    assertKey(key);
    return (await this.call('touch', {key})).v === true;
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    return (await this.call('delete', {key})).v === true;
  }

  async deleteTree(dir: string): Promise<void> {
    assertKey(dir);
    await this.call('deleteTree', {dir});
  }

  async deleteIfOlder(key: string, cutoffMs: number): Promise<{status: 'deleted' | 'kept'; size: number} | {status: 'absent'}> {
    assertKey(key);
    const offset = await this.offset();
    const {v} = await this.call('deleteIfOlder', {key, cutoffMs: Math.max(0, Math.round(cutoffMs + offset))});
    const o = v as {status?: unknown; size?: unknown};
    if (o?.status === 'absent') return {status: 'absent'};
    if ((o?.status === 'deleted' || o?.status === 'kept') && typeof o.size === 'number' && Number.isSafeInteger(o.size) && o.size >= 0) return {status: o.status, size: o.size};
    throw this.broken('an answer to a removal that is not one');
  }

  async rename(from: string, to: string): Promise<boolean> {
    assertKey(from);
    assertKey(to);
    return (await this.call('rename', {from, to})).v === true;
  }

  async sync(): Promise<void> {
    await this.call('sync', {});
  }

  async lock(key: string, opts: LockOptions): Promise<Lock> {
    assertKey(key);
    opts.signal?.throwIfAborted();
    const lid = randomBytes(8).toString('hex');
    let session: Session | undefined;
    let onAbort: (() => void) | undefined;
    let path: unknown;
    try {
      ({v: path} = await this.call(
        'lock',
        {key, lid, purpose: `${opts.purpose}, for process ${process.pid} on ${SELF_LEASE.host} over SSH`, timeoutMs: opts.timeoutMs, what: opts.what, hint: opts.hint},
        undefined,
        (s, id) => {
          session = s;
          s.locks++;
          onAbort = () => this.cancel(s, id);
          if (opts.signal?.aborted) onAbort();
          else opts.signal?.addEventListener('abort', onAbort, {once: true});
        },
      ));
    } catch (err) {
      if (session) session.locks--;
      throw err;
    } finally {
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
    const s = session!;
    let released = false;
    return {
      path: `${this.location} (${typeof path === 'string' ? path.slice(0, 500) : key})`,
      held: () => !released && !s.ended,
      release: async () => {
        if (released) return;
        released = true;
        s.locks--;
        // A session that ended took the lock with it (its server process is gone).
        if (!s.ended) await this.call('unlock', {lid}).catch((err: unknown) => {
          if (!s.ended) throw err;
        });
      },
    };
  }

  ownerAlive(owner: Owner): boolean {
    return owner.host === SELF_LEASE.host ? isAlive(owner) : true;
  }

  async sweepLeftovers(dir: string, olderThanMs: number, recover?: Recover): Promise<{removed: number; recovered: number}> {
    if (dir !== '') assertKey(dir);
    const offset = await this.offset();
    return sweepLeftoversWith(
      {
        leftovers: async (d) => {
          const {v} = await this.call('leftovers', {dir: d});
          if (!Array.isArray(v)) throw this.broken('a list of leftovers that is not a list');
          return v.map((e: unknown): Leftover => {
            const o = e as Record<string, unknown>;
            if (typeof o?.name !== 'string' || typeof o.finalName !== 'string' || !NAME.test(o.finalName) || !o.name.startsWith(o.finalName) || o.name.includes('/')) throw this.broken('a leftover name that cannot be one');
            const info = this.info({size: o.size, modifiedMs: o.modifiedMs}, offset)!;
            return {name: o.name, finalName: o.finalName, size: info.size, modifiedMs: info.modifiedMs, file: o.file === true};
          });
        },
        readLeftover: async (d, name, max) => {
          const r = await this.call('readLeftover', {dir: d, name, max});
          if ((r.v as {found?: unknown})?.found !== true || r.body.length > max) return undefined;
          return r.body;
        },
        restoreLeftover: async (d, name) => void (await this.call('restoreLeftover', {dir: d, name})),
        removeLeftover: async (d, name) => void (await this.call('removeLeftover', {dir: d, name})),
        stat: (k) => this.stat(k),
      },
      dir,
      olderThanMs,
      recover,
    );
  }

  /** Creates a directory on the far side (a new repository's chunks/ and points/). */
  async makeDir(dir: string): Promise<void> {
    assertKey(dir);
    await this.call('makeDir', {dir});
    await this.call('sync', {});
  }

  async space(): Promise<{freeBytes: number; totalBytes: number} | undefined> {
    const {v} = await this.call('space', {});
    const o = v as {freeBytes?: unknown; totalBytes?: unknown} | null;
    if (!o) return undefined;
    if (typeof o.freeBytes !== 'number' || typeof o.totalBytes !== 'number' || o.freeBytes < 0 || o.totalBytes < 0) throw this.broken('disk space that is not a number');
    return {freeBytes: o.freeBytes, totalBytes: o.totalBytes};
  }
}
