/**
 * NbdClient: one NBD connection to one export, with pipelined requests.
 *
 * Contract:
 * - Any number of calls may be outstanding; requests are matched to replies by cookie, and the
 *   chunks of a structured READ reply are placed by offset in whatever order they arrive.
 * - read()/write() take any length: they are split into requests of at most the server's
 *   maximum payload (and never more than 32 MiB); blockStatus() loops until the whole range is
 *   covered, because servers answer short.
 * - Errors the server reports become NbdServerError naming the errno and the request. If the
 *   connection drops, every outstanding call rejects with "NBD server closed the connection
 *   during <request>", and every later call rejects at once; nothing hangs.
 * - close() waits for outstanding calls, sends NBD_CMD_DISC and ends the socket; it is idempotent.
 */
import type {Duplex} from 'node:stream';
import type net from 'node:net';
import {ExitCode, UserError} from '../../util/errors.js';
import {ByteReader} from './byte-reader.js';
import {NbdServerError, connectionLost, describeAddress, describeRequest, handshakeTimeout, type NbdAddress} from './errors.js';
import {negotiate, type NegotiatedExport} from './handshake.js';
import {
  Command,
  CommandFlag,
  MAX_PAYLOAD_DEFAULT,
  NbdProtocolError,
  REPLY_FLAG_DONE,
  REPLY_TYPE_ERROR_BIT,
  ReplyType,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  TransmissionFlag,
  decodeBlockStatus,
  decodeErrorChunk,
  encodeRequest,
  type BlockSize,
} from './protocol.js';
import {openSocket, upgradeToTls} from './socket.js';

export interface NbdConnectOptions {
  address: NbdAddress;
  exportName: string;
  /** Block-status contexts to negotiate, e.g. 'base:allocation', 'qemu:dirty-bitmap:backup-vda'. */
  metaContexts?: string[];
  /** Limit for connecting and the handshake. Default 30 s. */
  timeoutMs?: number;
  /**
   * While requests are outstanding, how long the server may send nothing at all before the
   * connection is given up (every outstanding call then rejects). Default 5 minutes; 0 = never.
   */
  idleTimeoutMs?: number;
  /**
   * Negotiate NBD_OPT_STARTTLS. The server certificate is verified against `ca` (or the system
   * CAs) and must name `servername` (default: the TCP host). `cert`/`key`: a client certificate,
   * which QEMU asks for unless its tls-creds object has verify-peer=off.
   */
  tls?: {ca?: string | Buffer; servername?: string; cert?: string | Buffer; key?: string | Buffer};
}

/** One block-status extent: flags as the context defines them (base:allocation, dirty bitmap). */
export interface BlockStatusEntry {
  offset: number;
  length: number;
  flags: number;
}

/** BLOCK_STATUS lengths are u32; stay a (power-of-two) block below 4 GiB like virtnbdbackup. */
const BLOCK_STATUS_MAX = 2 ** 32;
/** WRITE_ZEROES/TRIM carry no payload, but keep each request modest so errors stay local. */
const ZERO_TRIM_MAX = 1024 * 1024 * 1024;

interface Pending {
  type: number;
  offset: number;
  length: number;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  error?: Error;
  dest?: Buffer;
  destPos?: number;
  covered?: number;
  contextId?: number;
  entries?: {length: number; flags: number}[];
}

export class NbdClient {
  readonly size: number;
  readonly exportFlags: number;
  readonly readOnly: boolean;
  readonly canMultiConn: boolean;
  readonly blockSize: BlockSize;
  readonly metaContexts: Map<string, number>;
  /** The largest READ/WRITE payload one request carries: min(server maximum, 32 MiB). */
  readonly maxPayload: number;
  readonly exportName: string;
  readonly address: NbdAddress;

  private readonly socket: Duplex;
  private readonly reader: ByteReader;
  private readonly structuredReplies: boolean;
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  /** Set once the connection is unusable; later calls reject with it. */
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  private constructor(socket: Duplex, reader: ByteReader, neg: NegotiatedExport, opts: NbdConnectOptions) {
    this.socket = socket;
    this.reader = reader;
    this.address = opts.address;
    this.exportName = opts.exportName;
    this.size = neg.size;
    this.exportFlags = neg.exportFlags;
    this.readOnly = (neg.exportFlags & TransmissionFlag.readOnly) !== 0;
    this.canMultiConn = (neg.exportFlags & TransmissionFlag.canMultiConn) !== 0;
    this.blockSize = neg.blockSize;
    this.metaContexts = neg.metaContexts;
    this.structuredReplies = neg.structuredReplies;
    const max = neg.blockSize.maximum > 0 ? neg.blockSize.maximum : MAX_PAYLOAD_DEFAULT;
    const min = Math.max(neg.blockSize.minimum, 1);
    this.maxPayload = Math.max(min, Math.floor(Math.min(max, MAX_PAYLOAD_DEFAULT) / min) * min);
    this.replyLoop().catch((err: unknown) => this.die(err instanceof Error ? err : new Error(String(err))));
    const idleMs = opts.idleTimeoutMs ?? 300_000;
    if (idleMs > 0 && 'setTimeout' in socket) {
      // The socket's own inactivity timer: no timer per request, reset by every byte received.
      (socket as net.Socket).setTimeout(idleMs);
      // on(), not setTimeout's callback: that is a one-time listener, and idle spells without
      // outstanding requests come and go.
      socket.on('timeout', () => {
        if (this.pending.size === 0) return;
        const stalled = (what: string) =>
          new UserError(`NBD server at ${describeAddress(this.address)} sent nothing for ${idleMs} ms while ${what} waited for an answer; the connection was closed`, {
            hint: 'The server or its storage is stalled (a paused VM, a hung NFS mount?). Check the host, then run the job again.',
            exitCode: ExitCode.unreachable,
          });
        const n = this.pending.size;
        this.die(stalled(n === 1 ? 'a request' : `${n} requests`), (p) => stalled(describeRequest(p.type, p.offset, p.length)));
      });
    }
  }

  static async connect(opts: NbdConnectOptions): Promise<NbdClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const reader = new ByteReader();
    // Plain connections read through one reused buffer; TLS needs the socket's own stream.
    const raw: net.Socket = await openSocket(opts.address, timeoutMs, opts.tls ? undefined : (chunk) => reader.feed(chunk, true));
    reader.attach(raw, opts.tls !== undefined);
    let stream: Duplex = raw;
    // After a TLS upgrade the raw socket's errors must still be observed, never left unhandled.
    raw.on('error', (err) => reader.fail(err));
    try {
      const neg = await withTimeout(
        negotiate(
          {
            reader,
            write: (data) => stream.write(data),
            startTls: async () => {
              stream = await upgradeToTls(raw, opts.address, opts.tls ?? {});
              return stream;
            },
          },
          {exportName: opts.exportName, metaContexts: opts.metaContexts ?? [], address: opts.address, tls: opts.tls !== undefined},
        ),
        timeoutMs,
        () => handshakeTimeout(opts.address, timeoutMs),
      );
      return new NbdClient(stream, reader, neg, opts);
    } catch (err) {
      stream.destroy();
      raw.destroy();
      if (err instanceof UserError || err instanceof NbdProtocolError) throw err;
      const lost = connectionLost(opts.address, `the handshake for export '${opts.exportName}'`, err);
      if (!opts.tls) throw lost;
      // QEMU drops a TLS client it cannot verify without saying why on the wire.
      throw new UserError(lost.message, {
        hint: 'The server may require a client certificate (tls.cert and tls.key) signed by a CA it trusts, or it rejected the one given. Check the server log.',
        exitCode: ExitCode.untrusted,
        cause: err,
      });
    }
  }

  /** Reads exactly `length` bytes at `offset` (into `into` when given). */
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkRange('read', offset, length);
    if (into && into.length < length) throw new RangeError(`read buffer of ${into.length} bytes is smaller than the ${length} bytes asked for`);
    const dest = into ?? Buffer.allocUnsafe(length);
    const min = Math.max(this.blockSize.minimum, 1);
    if (length > 0 && (offset % min !== 0 || (length % min !== 0 && offset + length !== this.size))) {
      // Servers that advertise a minimum block size may refuse unaligned requests (QEMU does
      // once NBD_INFO_BLOCK_SIZE was negotiated): read the aligned span and copy the middle out.
      const start = offset - (offset % min);
      const end = Math.min(Math.ceil((offset + length) / min) * min, this.size);
      const span = await this.read(start, end - start);
      span.copy(dest, 0, offset - start, offset - start + length);
      return dest.length === length ? dest : dest.subarray(0, length);
    }
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < length; done += this.maxPayload) {
      const n = Math.min(this.maxPayload, length - done);
      parts.push(this.submit(Command.read, 0, offset + done, n, {dest, destPos: done, covered: 0}));
    }
    await Promise.all(parts);
    return dest.length === length ? dest : dest.subarray(0, length);
  }

  /**
   * The extents of `context` covering [offset, offset+length) exactly: servers may answer short
   * (the loop continues) or long (the last extent is clipped).
   */
  async blockStatus(offset: number, length: number, context: string): Promise<BlockStatusEntry[]> {
    this.checkRange('blockStatus', offset, length);
    const contextId = this.metaContexts.get(context);
    if (contextId === undefined) {
      throw new Error(`meta context '${context}' was not negotiated on this connection (negotiated: ${[...this.metaContexts.keys()].join(', ') || 'none'})`);
    }
    const out: BlockStatusEntry[] = [];
    const end = offset + length;
    const cap = BLOCK_STATUS_MAX - Math.max(this.blockSize.minimum, 1);
    let pos = offset;
    while (pos < end) {
      const n = Math.min(end - pos, cap);
      const entries = (await this.submit(Command.blockStatus, 0, pos, n, {contextId})) as {length: number; flags: number}[];
      const before = pos;
      for (const e of entries) {
        if (pos >= end) break;
        if (e.length === 0) break;
        const len = Math.min(e.length, end - pos);
        const last = out[out.length - 1];
        // Adjacent entries with equal flags (e.g. from two requests) are one extent.
        if (last && last.flags === e.flags && last.offset + last.length === pos) last.length += len;
        else out.push({offset: pos, length: len, flags: e.flags});
        pos += len;
      }
      if (pos === before) throw this.fatal(new NbdProtocolError(`BLOCK_STATUS at offset ${before} made no progress`));
    }
    return out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.checkWritable('write');
    this.checkRange('write', offset, data.length);
    this.checkAligned('write', offset, data.length);
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < data.length; done += this.maxPayload) {
      const n = Math.min(this.maxPayload, data.length - done);
      parts.push(this.submit(Command.write, 0, offset + done, n, {}, data.subarray(done, done + n)));
    }
    await Promise.all(parts);
  }

  /**
   * Writes zeros over [offset, offset+length). The server may punch a hole unless noHole is set.
   * Servers without WRITE_ZEROES get plain zero-filled WRITEs.
   */
  async writeZeroes(offset: number, length: number, opts: {noHole?: boolean} = {}): Promise<void> {
    this.checkWritable('writeZeroes');
    this.checkRange('writeZeroes', offset, length);
    this.checkAligned('writeZeroes', offset, length);
    const parts: Promise<unknown>[] = [];
    if ((this.exportFlags & TransmissionFlag.sendWriteZeroes) === 0) {
      const zeros = Buffer.alloc(Math.min(this.maxPayload, length));
      for (let done = 0; done < length; done += zeros.length) {
        const n = Math.min(zeros.length, length - done);
        parts.push(this.submit(Command.write, 0, offset + done, n, {}, zeros.subarray(0, n)));
      }
    } else {
      const flags = opts.noHole ? CommandFlag.noHole : 0;
      for (let done = 0; done < length; done += ZERO_TRIM_MAX) {
        parts.push(this.submit(Command.writeZeroes, flags, offset + done, Math.min(ZERO_TRIM_MAX, length - done), {}));
      }
    }
    await Promise.all(parts);
  }

  /** Tells the server the range is no longer needed. A no-op where the export does not support TRIM. */
  async trim(offset: number, length: number): Promise<void> {
    this.checkWritable('trim');
    this.checkRange('trim', offset, length);
    this.checkAligned('trim', offset, length);
    if ((this.exportFlags & TransmissionFlag.sendTrim) === 0) return;
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < length; done += ZERO_TRIM_MAX) {
      parts.push(this.submit(Command.trim, 0, offset + done, Math.min(ZERO_TRIM_MAX, length - done), {}));
    }
    await Promise.all(parts);
  }

  /** Makes completed writes durable. A no-op where the server does not offer FLUSH (it writes through). */
  async flush(): Promise<void> {
    if ((this.exportFlags & TransmissionFlag.sendFlush) === 0) {
      if (this.dead) throw this.dead;
      return;
    }
    await this.submit(Command.flush, 0, 0, 0, {});
  }

  /** Number of requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.dead !== undefined || this.closing !== undefined;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.pending.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (!this.dead) {
      this.dead = new Error(`NBD connection to export '${this.exportName}' is closed`);
      this.socket.write(encodeRequest({flags: 0, type: Command.disc, cookie: this.nextCookie++, offset: 0, length: 0}));
      this.socket.end();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        this.socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        if (this.socket.destroyed) resolve();
      });
    }
    this.reader.fail(this.dead);
    this.socket.destroy();
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${what}(${offset}, ${length}) is outside export '${this.exportName}' of ${this.size} bytes`);
    }
  }

  /** Writes cannot be widened like reads (that would need read-modify-write), so refuse them. */
  private checkAligned(what: string, offset: number, length: number): void {
    const min = Math.max(this.blockSize.minimum, 1);
    if (offset % min !== 0 || (length % min !== 0 && offset + length !== this.size)) {
      throw new RangeError(`${what}(${offset}, ${length}) is not aligned to the ${min}-byte minimum block size of export '${this.exportName}'`);
    }
  }

  private checkWritable(what: string): void {
    if (this.readOnly) {
      throw new UserError(`NBD export '${this.exportName}' on ${describeAddress(this.address)} is read-only; cannot ${what}`, {
        hint: 'Restore to a writable export (qemu-nbd without --read-only).',
        exitCode: ExitCode.platformFailed,
      });
    }
  }

  private submit(type: number, flags: number, offset: number, length: number, extra: Partial<Pending>, payload?: Buffer): Promise<unknown> {
    if (this.dead) return Promise.reject(this.deadFor(type, offset, length));
    if (this.closing) return Promise.reject(new Error(`NBD connection to export '${this.exportName}' is closing`));
    if (length === 0 && type !== Command.flush) return Promise.resolve(type === Command.blockStatus ? [] : undefined);
    const cookie = this.nextCookie++;
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, {type, offset, length, resolve, reject, ...extra});
      this.socket.write(encodeRequest({flags, type, cookie, offset, length}));
      if (payload) this.socket.write(payload);
    });
  }

  private deadFor(type: number, offset: number, length: number): Error {
    const cause = this.dead!;
    if (cause instanceof UserError || cause instanceof NbdProtocolError || this.closing) return cause;
    return connectionLost(this.address, describeRequest(type, offset, length), cause);
  }

  /** Marks the connection dead and rejects every outstanding request with its own description. */
  private die(cause: Error, errorFor?: (p: Pending) => Error): void {
    if (!this.dead) this.dead = cause;
    for (const [cookie, p] of this.pending) {
      this.pending.delete(cookie);
      if (errorFor) p.reject(errorFor(p));
      else p.reject(cause instanceof NbdProtocolError ? cause : connectionLost(this.address, describeRequest(p.type, p.offset, p.length), cause));
    }
    this.notifyIdle();
    this.socket.destroy();
  }

  private fatal(err: Error): Error {
    this.die(err);
    return err;
  }

  private notifyIdle(): void {
    if (this.pending.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private finish(cookie: bigint, p: Pending): void {
    this.pending.delete(cookie);
    if (p.error) p.reject(p.error);
    else if (p.type === Command.read && p.covered !== p.length) {
      p.reject(new NbdProtocolError(`READ at offset ${p.offset} (length ${p.length}) was answered with ${p.covered} bytes`));
    } else if (p.type === Command.blockStatus) {
      if (!p.entries) p.reject(new NbdProtocolError(`BLOCK_STATUS at offset ${p.offset} got no extents for context ${p.contextId}`));
      else p.resolve(p.entries);
    } else p.resolve(undefined);
    this.notifyIdle();
  }

  private serverError(p: Pending, errno: number, serverMessage?: string, errorOffset?: number): Error {
    return new NbdServerError({errno, serverMessage, type: p.type, offset: p.offset, length: p.length, exportName: this.exportName, errorOffset});
  }

  private async replyLoop(): Promise<void> {
    const r = this.reader;
    for (;;) {
      const head = await r.readExact(4);
      const magic = head.readUInt32BE(0);
      if (magic === SIMPLE_REPLY_MAGIC) {
        const rest = await r.readExact(12);
        const errno = rest.readUInt32BE(0);
        const cookie = rest.readBigUInt64BE(4);
        const p = this.pending.get(cookie);
        if (!p) throw new NbdProtocolError(`simple reply for unknown cookie ${cookie}`);
        if (errno !== 0) p.error = this.serverError(p, errno);
        else if (p.type === Command.read) {
          if (this.structuredReplies) throw new NbdProtocolError('simple reply to READ after structured replies were negotiated');
          await r.readInto(p.dest!, p.destPos!, p.length);
          p.covered = p.length;
        }
        this.finish(cookie, p);
      } else if (magic === STRUCTURED_REPLY_MAGIC) {
        const rest = await r.readExact(16);
        const flags = rest.readUInt16BE(0);
        const type = rest.readUInt16BE(2);
        const cookie = rest.readBigUInt64BE(4);
        const length = rest.readUInt32BE(12);
        const p = this.pending.get(cookie);
        if (!p) throw new NbdProtocolError(`structured reply for unknown cookie ${cookie}`);
        await this.readChunk(p, type, length);
        if (flags & REPLY_FLAG_DONE) this.finish(cookie, p);
      } else {
        throw new NbdProtocolError(`bad reply magic 0x${magic.toString(16)}`);
      }
    }
  }

  private async readChunk(p: Pending, type: number, length: number): Promise<void> {
    const r = this.reader;
    switch (type) {
      case ReplyType.none:
        if (length !== 0) throw new NbdProtocolError('NONE chunk with a payload');
        return;
      case ReplyType.offsetData: {
        if (p.type !== Command.read || length < 9) throw new NbdProtocolError(`OFFSET_DATA chunk of ${length} bytes for ${describeRequest(p.type, p.offset, p.length)}`);
        const at = Number((await r.readExact(8)).readBigUInt64BE(0));
        const n = length - 8;
        const rel = at - p.offset;
        if (rel < 0 || rel + n > p.length) throw new NbdProtocolError(`OFFSET_DATA at ${at} (+${n}) outside READ at offset ${p.offset} (length ${p.length})`);
        await r.readInto(p.dest!, p.destPos! + rel, n);
        p.covered! += n;
        return;
      }
      case ReplyType.offsetHole: {
        if (p.type !== Command.read || length !== 12) throw new NbdProtocolError(`OFFSET_HOLE chunk of ${length} bytes for ${describeRequest(p.type, p.offset, p.length)}`);
        const b = await r.readExact(12);
        const at = Number(b.readBigUInt64BE(0));
        const n = b.readUInt32BE(8);
        const rel = at - p.offset;
        if (rel < 0 || rel + n > p.length) throw new NbdProtocolError(`OFFSET_HOLE at ${at} (+${n}) outside READ at offset ${p.offset} (length ${p.length})`);
        p.dest!.fill(0, p.destPos! + rel, p.destPos! + rel + n);
        p.covered! += n;
        return;
      }
      case ReplyType.blockStatus: {
        const {contextId, entries} = decodeBlockStatus(await r.readExact(length));
        if (p.type !== Command.blockStatus) throw new NbdProtocolError('BLOCK_STATUS chunk for another command');
        if (contextId === p.contextId) p.entries = entries;
        return;
      }
      default: {
        const data = await r.readExact(length);
        if (type & REPLY_TYPE_ERROR_BIT) {
          const e = decodeErrorChunk(type, data);
          p.error ??= this.serverError(p, e.errno, e.message, e.offset);
        } else {
          p.error ??= new NbdProtocolError(`unknown reply chunk type ${type}`);
        }
      }
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
