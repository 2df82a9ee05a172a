/**
 * The transmission phase of one NBD connection: cookies, the table of outstanding requests,
 * the reply loop, and what happens when the connection ends.
 *
 * submit() writes one request and returns a promise for its reply; the reply loop reads
 * replies in whatever order the server sends them, places READ chunks by offset straight into
 * the caller's buffer, and settles each request at its DONE chunk (or its simple reply). When
 * the connection ends, fails, breaks the protocol or stalls past the idle timeout, every
 * outstanding request rejects with an error naming it, and every later submit() rejects at once.
 */
import type net from 'node:net';
import type {Duplex} from 'node:stream';
import {ExitCode, UserError} from '../../util/errors.js';
import type {ByteReader} from './byte-reader.js';
import {NbdServerError, connectionLost, describeAddress, describeRequest, type NbdAddress} from './errors.js';
import {
  Command,
  NbdProtocolError,
  REPLY_FLAG_DONE,
  REPLY_TYPE_ERROR_BIT,
  ReplyType,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  decodeBlockStatus,
  decodeErrorChunk,
  encodeRequest,
} from './protocol.js';

/** What a request carries besides its header: where READ data goes, which context to keep. */
export interface RequestExtra {
  dest?: Buffer;
  destPos?: number;
  contextId?: number;
}

interface Pending extends RequestExtra {
  type: number;
  offset: number;
  length: number;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  error?: Error;
  covered: number;
  entries?: {length: number; flags: number}[];
}

export class Transmission {
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  /** Set once the connection is unusable; later calls reject with it. */
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly socket: Duplex,
    private readonly reader: ByteReader,
    private readonly opts: {address: NbdAddress; exportName: string; structuredReplies: boolean; idleTimeoutMs: number},
  ) {
    this.replyLoop().catch((err: unknown) => this.die(err instanceof Error ? err : new Error(String(err))));
    const idleMs = opts.idleTimeoutMs;
    if (idleMs > 0 && 'setTimeout' in socket) {
      // The socket's own inactivity timer: no timer per request, reset by every byte moved.
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

  private get address(): NbdAddress {
    return this.opts.address;
  }

  private get exportName(): string {
    return this.opts.exportName;
  }

  /** Number of requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The error later calls reject with, once the connection failed or was closed. */
  get failure(): Error | undefined {
    return this.dead;
  }

  get closed(): boolean {
    return this.dead !== undefined || this.closing !== undefined;
  }

  /** Waits for outstanding requests, sends NBD_CMD_DISC and ends the socket. Idempotent. */
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

  /** Sends one request (header, then a WRITE's payload) and settles with its reply. */
  submit(type: number, flags: number, offset: number, length: number, extra: RequestExtra, payload?: Buffer): Promise<unknown> {
    if (this.dead) return Promise.reject(this.deadFor(type, offset, length));
    if (this.closing) return Promise.reject(new Error(`NBD connection to export '${this.exportName}' is closing`));
    if (length === 0 && type !== Command.flush) return Promise.resolve(type === Command.blockStatus ? [] : undefined);
    const cookie = this.nextCookie++;
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, {type, offset, length, resolve, reject, covered: 0, ...extra});
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
  die(cause: Error, errorFor?: (p: Pending) => Error): void {
    this.dead ??= cause;
    for (const [cookie, p] of this.pending) {
      this.pending.delete(cookie);
      if (errorFor) p.reject(errorFor(p));
      else p.reject(cause instanceof NbdProtocolError ? cause : connectionLost(this.address, describeRequest(p.type, p.offset, p.length), cause));
    }
    this.notifyIdle();
    this.socket.destroy();
  }

  /** Ends the connection for a protocol error found above this layer; returns it for `throw`. */
  fatal(err: Error): Error {
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
          if (this.opts.structuredReplies) throw new NbdProtocolError('simple reply to READ after structured replies were negotiated');
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
        p.covered += n;
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
        p.covered += n;
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
