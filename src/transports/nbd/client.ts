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
import type net from 'node:net';
import type {Duplex} from 'node:stream';
import {ExitCode, UserError} from '../../util/errors.js';
import {ByteReader} from './byte-reader.js';
import {connectionLost, describeAddress, handshakeTimeout, type NbdAddress} from './errors.js';
import {negotiate, type NegotiatedExport} from './handshake.js';
import {Command, CommandFlag, MAX_PAYLOAD_DEFAULT, NbdProtocolError, TransmissionFlag, type BlockSize} from './protocol.js';
import {openSocket, upgradeToTls} from './socket.js';
import {Transmission} from './transmission.js';

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

  private readonly wire: Transmission;

  private constructor(socket: Duplex, reader: ByteReader, neg: NegotiatedExport, opts: NbdConnectOptions) {
    this.address = opts.address;
    this.exportName = opts.exportName;
    this.size = neg.size;
    this.exportFlags = neg.exportFlags;
    this.readOnly = (neg.exportFlags & TransmissionFlag.readOnly) !== 0;
    this.canMultiConn = (neg.exportFlags & TransmissionFlag.canMultiConn) !== 0;
    this.blockSize = neg.blockSize;
    this.metaContexts = neg.metaContexts;
    const max = neg.blockSize.maximum > 0 ? neg.blockSize.maximum : MAX_PAYLOAD_DEFAULT;
    const min = Math.max(neg.blockSize.minimum, 1);
    this.maxPayload = Math.max(min, Math.floor(Math.min(max, MAX_PAYLOAD_DEFAULT) / min) * min);
    this.wire = new Transmission(socket, reader, {
      address: opts.address,
      exportName: opts.exportName,
      structuredReplies: neg.structuredReplies,
      idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
    });
  }

  static async connect(opts: NbdConnectOptions): Promise<NbdClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const reader = new ByteReader();
    // Plain connections read through one reused buffer; TLS needs the socket's own stream.
    const raw: net.Socket = await openSocket(opts.address, timeoutMs, opts.tls ? undefined : reader);
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
      parts.push(this.wire.submit(Command.read, 0, offset + done, n, {dest, destPos: done}));
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
      const entries = (await this.wire.submit(Command.blockStatus, 0, pos, n, {contextId})) as {length: number; flags: number}[];
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
      if (pos === before) throw this.wire.fatal(new NbdProtocolError(`BLOCK_STATUS at offset ${before} made no progress`));
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
      parts.push(this.wire.submit(Command.write, 0, offset + done, n, {}, data.subarray(done, done + n)));
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
        parts.push(this.wire.submit(Command.write, 0, offset + done, n, {}, zeros.subarray(0, n)));
      }
    } else {
      const flags = opts.noHole ? CommandFlag.noHole : 0;
      for (let done = 0; done < length; done += ZERO_TRIM_MAX) {
        parts.push(this.wire.submit(Command.writeZeroes, flags, offset + done, Math.min(ZERO_TRIM_MAX, length - done), {}));
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
      parts.push(this.wire.submit(Command.trim, 0, offset + done, Math.min(ZERO_TRIM_MAX, length - done), {}));
    }
    await Promise.all(parts);
  }

  /** Makes completed writes durable. A no-op where the server does not offer FLUSH (it writes through). */
  async flush(): Promise<void> {
    if ((this.exportFlags & TransmissionFlag.sendFlush) === 0) {
      const failure = this.wire.failure;
      if (failure) throw failure;
      return;
    }
    await this.wire.submit(Command.flush, 0, 0, 0, {});
  }

  /** Number of requests sent and not yet answered. */
  get inFlight(): number {
    return this.wire.inFlight;
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.wire.closed;
  }

  /** Waits for outstanding calls, sends NBD_CMD_DISC and ends the socket. Idempotent. */
  close(): Promise<void> {
    return this.wire.close();
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
