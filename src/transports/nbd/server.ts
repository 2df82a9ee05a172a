/**
 * A read-only NBD server (fixed newstyle) for exports that are not files: a restore point's disk
 * served straight from the repository (vmbackup export), for qemu-img, nbdcopy, QEMU itself
 * (instant recovery) and libguestfs.
 *
 * What it speaks (upstream NetworkBlockDevice nbd doc/proto.md, summarised in
 * docs/reference/libvirt-backup.md §5; behaviour checked against the real clients: qemu-img,
 * qemu-nbd's client side in QEMU, nbdinfo and nbdcopy in test/transports/nbd/server.test.ts):
 * - options: EXPORT_NAME, ABORT, LIST, INFO, GO (with NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE),
 *   STRUCTURED_REPLY, LIST/SET_META_CONTEXT for "base:allocation", STARTTLS when TLS is set
 *   (then every other option before it is refused with NBD_REP_ERR_TLS_REQD); anything else is
 *   NBD_REP_ERR_UNSUP;
 * - transmission flags: READ_ONLY, SEND_DF, CAN_MULTI_CONN (every connection sees the same
 *   immutable data, so several may be opened);
 * - commands: READ (simple, or structured with OFFSET_HOLE chunks for what the export knows to
 *   be zero, so a reader can skip it), BLOCK_STATUS for base:allocation (zero chunks are
 *   HOLE|ZERO), DISC; WRITE, TRIM, WRITE_ZEROES get EPERM, anything else EINVAL. Requests outside
 *   the export get EINVAL, never a crash;
 * - replies may come out of order (each structured chunk is written whole); at most
 *   `maxInFlight` requests per connection are served at once, the socket is paused beyond that.
 *
 * Everything the client sends is hostile until checked: lengths are bounded (option data 64 KiB,
 * strings 4 KiB, READ 32 MiB), and a protocol error closes that connection only.
 */
import {createServer as createNetServer, type Server, type Socket} from 'node:net';
import {TLSSocket, createSecureContext, type SecureContext} from 'node:tls';
import type {Duplex} from 'node:stream';
import {chmod, rm} from 'node:fs/promises';
import {ByteReader} from './byte-reader.js';
import {
  Command,
  CommandFlag,
  HandshakeFlag,
  IHAVEOPT,
  Info,
  MAX_PAYLOAD_DEFAULT,
  NBDMAGIC,
  OPTION_REPLY_MAGIC,
  Option,
  OptionReply,
  REPLY_FLAG_DONE,
  REP_ERR_POLICY,
  REP_ERR_TLS_REQD,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REQUEST_MAGIC,
  ReplyType,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  StateFlag,
  TransmissionFlag,
} from './protocol.js';

/** What an export needs to be served: its size, reads, and which ranges are known zeros. */
export interface NbdExportSource {
  readonly size: number;
  /** Reads `length` bytes at `offset` into `into` (exactly `length` bytes long). */
  read(offset: number, length: number, into: Buffer): Promise<unknown>;
  /** Extents covering [offset, offset + length): data or zeros, in order, merged. */
  extents(offset: number, length: number): {length: number; zero: boolean}[];
  /** A hint that [offset, offset + length) will be read soon (sequential read-ahead). */
  prefetch?(offset: number, length: number): void;
}

export interface NbdExport {
  name: string;
  description?: string;
  source: NbdExportSource;
  /** The preferred block size advertised (e.g. the repository's chunk size). */
  preferredBlockSize?: number;
}

export interface NbdServerOptions {
  exports: NbdExport[];
  /** With TLS, clients must STARTTLS before anything else. */
  tls?: {certPem: string; keyPem: string; caPem?: string};
  maxInFlight?: number;
  log?: (line: string) => void;
  /** Called for every connection opened and closed (for idle timeouts). */
  onConnections?: (open: number) => void;
}

const REP_ERR_INVALID = 0x80000003;
const MAX_OPTION_DATA = 64 * 1024;
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;
const MAX_STRING = 4096;
const ERRNO = {EPERM: 1, EIO: 5, EINVAL: 22, ENOTSUP: 95, ESHUTDOWN: 108} as const;
const BASE_ALLOCATION = 'base:allocation';
const META_ID = 1;

class ClientGone extends Error {}

export class NbdServer {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly secure: SecureContext | undefined;
  private open = 0;
  private closing = false;

  constructor(private readonly opts: NbdServerOptions) {
    for (const e of opts.exports) {
      if (Buffer.byteLength(e.name) > MAX_STRING) throw new RangeError(`export name too long: ${e.name.slice(0, 40)}`);
    }
    this.secure = opts.tls ? createSecureContext({cert: opts.tls.certPem, key: opts.tls.keyPem, ca: opts.tls.caPem}) : undefined;
  }

  /** Serves on a unix socket (created 0600: only its owner may connect). */
  async listenUnix(path: string): Promise<void> {
    await rm(path, {force: true});
    const server = this.server();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
  }

  /** Serves on a TCP address; returns the port (0 asks for a free one). */
  async listenTcp(host: string, port: number): Promise<number> {
    const server = this.server();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  get connections(): number {
    return this.open;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private server(): Server {
    const server = createNetServer((socket) => void this.serve(socket));
    this.servers.push(server);
    return server;
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private async serve(socket: Socket): Promise<void> {
    if (this.closing) return void socket.destroy();
    this.sockets.add(socket);
    this.open++;
    this.opts.onConnections?.(this.open);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const reader = new ByteReader();
    reader.attach(socket, true);
    let stream: Duplex = socket;
    try {
      const session = await this.handshake(socket, reader, (s) => (stream = s));
      if (session) await this.transmission(stream, session.reader, session.export, session.structured, session.meta);
    } catch (err) {
      if (!(err instanceof ClientGone)) this.log(`nbd: connection closed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      stream.destroy();
      socket.destroy();
      this.sockets.delete(socket);
      this.open--;
      this.opts.onConnections?.(this.open);
    }
  }

  private async handshake(
    socket: Socket,
    firstReader: ByteReader,
    upgraded: (s: Duplex) => void,
  ): Promise<{reader: ByteReader; export: NbdExport; structured: boolean; meta: boolean} | undefined> {
    let reader = firstReader;
    let out: Duplex = socket;
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(NBDMAGIC, 0);
    greeting.writeBigUInt64BE(IHAVEOPT, 8);
    greeting.writeUInt16BE(HandshakeFlag.fixedNewstyle | HandshakeFlag.noZeroes, 16);
    out.write(greeting);
    const clientFlags = (await read(reader, 4)).readUInt32BE(0);
    if ((clientFlags & 1) === 0) throw new Error('the client does not speak fixed newstyle');
    const noZeroes = (clientFlags & 2) !== 0;
    let tlsDone = this.secure === undefined;
    let structured = false;
    let meta = false;
    const reply = (option: number, type: number, data: Buffer = Buffer.alloc(0)) => {
      const head = Buffer.allocUnsafe(20);
      head.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
      head.writeUInt32BE(option, 8);
      head.writeUInt32BE(type >>> 0, 12);
      head.writeUInt32BE(data.length, 16);
      out.write(Buffer.concat([head, data]));
    };
    const errorReply = (option: number, type: number, text: string) => reply(option, type, Buffer.from(text));
    for (let options = 0; options < 64; options++) {
      const head = await read(reader, 16);
      if (head.readBigUInt64BE(0) !== IHAVEOPT) throw new Error('bad option magic');
      const option = head.readUInt32BE(8);
      const length = head.readUInt32BE(12);
      if (length > MAX_OPTION_DATA) {
        // Too long to be honest: refuse it without reading it all, and end the connection.
        errorReply(option, REP_ERR_INVALID, 'option data too long');
        throw new Error(`option ${option} with ${length} bytes of data`);
      }
      const data = await read(reader, length);
      if (option === Option.exportName) {
        if (!tlsDone) throw new Error('NBD_OPT_EXPORT_NAME before STARTTLS');
        const exp = this.find(data.toString('utf8'));
        if (!exp) throw new Error(`no export named '${data.toString('utf8').slice(0, 100)}'`);
        const tail = Buffer.alloc(noZeroes ? 10 : 134);
        tail.writeBigUInt64BE(BigInt(exp.source.size), 0);
        tail.writeUInt16BE(transmissionFlags(), 8);
        out.write(tail);
        return {reader, export: exp, structured, meta};
      }
      if (option === Option.abort) {
        reply(option, OptionReply.ack);
        return undefined;
      }
      if (option === Option.startTls) {
        if (!this.secure) {
          errorReply(option, REP_ERR_UNSUP, 'TLS is not configured on this export');
          continue;
        }
        if (tlsDone) {
          errorReply(option, REP_ERR_INVALID, 'TLS is already on');
          continue;
        }
        if (length !== 0) {
          errorReply(option, REP_ERR_INVALID, 'STARTTLS takes no data');
          continue;
        }
        reply(option, OptionReply.ack);
        reader.detach();
        const tls = new TLSSocket(socket, {isServer: true, secureContext: this.secure});
        tls.on('error', () => undefined);
        await new Promise<void>((resolve, reject) => {
          tls.once('secure', () => resolve());
          tls.once('error', reject);
          tls.once('close', () => reject(new ClientGone()));
        });
        reader = new ByteReader();
        reader.attach(tls, true);
        out = tls;
        upgraded(tls);
        tlsDone = true;
        // STARTTLS wipes what was negotiated before it.
        structured = false;
        meta = false;
        continue;
      }
      if (!tlsDone) {
        errorReply(option, REP_ERR_TLS_REQD, 'this export needs TLS: STARTTLS first');
        continue;
      }
      switch (option) {
        case Option.list: {
          if (length !== 0) {
            errorReply(option, REP_ERR_INVALID, 'LIST takes no data');
            break;
          }
          for (const e of this.opts.exports) {
            const name = Buffer.from(e.name);
            const len = Buffer.allocUnsafe(4);
            len.writeUInt32BE(name.length, 0);
            reply(option, OptionReply.server, Buffer.concat([len, name]));
          }
          reply(option, OptionReply.ack);
          break;
        }
        case Option.structuredReply:
          if (length !== 0) {
            errorReply(option, REP_ERR_INVALID, 'STRUCTURED_REPLY takes no data');
            break;
          }
          structured = true;
          reply(option, OptionReply.ack);
          break;
        case Option.listMetaContext:
        case Option.setMetaContext: {
          const parsed = parseMetaQuery(data);
          if (!parsed) {
            errorReply(option, REP_ERR_INVALID, 'malformed meta context request');
            break;
          }
          if (option === Option.setMetaContext && !structured) {
            errorReply(option, REP_ERR_INVALID, 'SET_META_CONTEXT needs STRUCTURED_REPLY first');
            break;
          }
          if (!this.find(parsed.name)) {
            errorReply(option, REP_ERR_UNKNOWN, `no export named '${parsed.name.slice(0, 100)}'`);
            break;
          }
          const wanted = parsed.queries.length === 0 ? (option === Option.listMetaContext ? [BASE_ALLOCATION] : []) : parsed.queries;
          let chosen = false;
          for (const q of wanted) {
            if (q === BASE_ALLOCATION || (option === Option.listMetaContext && (q === 'base:' || q === 'base'))) {
              const name = Buffer.from(BASE_ALLOCATION);
              const id = Buffer.allocUnsafe(4);
              id.writeUInt32BE(option === Option.setMetaContext ? META_ID : 0, 0);
              reply(option, OptionReply.metaContext, Buffer.concat([id, name]));
              chosen = true;
            }
          }
          if (option === Option.setMetaContext) meta = chosen;
          reply(option, OptionReply.ack);
          break;
        }
        case Option.info:
        case Option.go: {
          const parsed = parseGo(data);
          if (!parsed) {
            errorReply(option, REP_ERR_INVALID, 'malformed INFO/GO request');
            break;
          }
          const exp = this.find(parsed.name);
          if (!exp) {
            errorReply(option, REP_ERR_UNKNOWN, `no export named '${parsed.name.slice(0, 100)}'`);
            break;
          }
          const info = Buffer.allocUnsafe(12);
          info.writeUInt16BE(Info.export, 0);
          info.writeBigUInt64BE(BigInt(exp.source.size), 2);
          info.writeUInt16BE(transmissionFlags(), 10);
          reply(option, OptionReply.info, info);
          const block = Buffer.allocUnsafe(14);
          block.writeUInt16BE(Info.blockSize, 0);
          block.writeUInt32BE(1, 2);
          block.writeUInt32BE(Math.min(exp.preferredBlockSize ?? 4096, MAX_PAYLOAD_DEFAULT), 6);
          block.writeUInt32BE(MAX_PAYLOAD_DEFAULT, 10);
          reply(option, OptionReply.info, block);
          if (parsed.infos.includes(Info.description) && exp.description) {
            const d = Buffer.from(exp.description.slice(0, 1000));
            const t = Buffer.allocUnsafe(2);
            t.writeUInt16BE(Info.description, 0);
            reply(option, OptionReply.info, Buffer.concat([t, d]));
          }
          reply(option, OptionReply.ack);
          if (option === Option.go) return {reader, export: exp, structured, meta};
          break;
        }
        default:
          errorReply(option, option === Option.exportName ? REP_ERR_POLICY : REP_ERR_UNSUP, 'option not supported by this server');
      }
    }
    throw new Error('too many options');
  }

  private find(name: string): NbdExport | undefined {
    // An empty name is the default export when there is exactly one.
    if (name === '' && this.opts.exports.length === 1) return this.opts.exports[0];
    return this.opts.exports.find((e) => e.name === name);
  }

  private async transmission(stream: Duplex, reader: ByteReader, exp: NbdExport, structured: boolean, meta: boolean): Promise<void> {
    const src = exp.source;
    const max = this.opts.maxInFlight ?? 16;
    let inFlight = 0;
    let paused = false;
    let nextSequential = -1;
    const pending = new Set<Promise<void>>();
    let wake: (() => void) | undefined;
    const write = (b: Buffer) => {
      if (!stream.destroyed) stream.write(b);
    };
    const simple = (cookie: Buffer, error: number, data?: Buffer) => {
      const h = Buffer.allocUnsafe(16);
      h.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
      h.writeUInt32BE(error, 4);
      cookie.copy(h, 8);
      write(data ? Buffer.concat([h, data]) : h);
    };
    const chunk = (cookie: Buffer, flags: number, type: number, payload: Buffer) => {
      const h = Buffer.allocUnsafe(20);
      h.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
      h.writeUInt16BE(flags, 4);
      h.writeUInt16BE(type, 6);
      cookie.copy(h, 8);
      h.writeUInt32BE(payload.length, 16);
      write(Buffer.concat([h, payload]));
    };
    const fail = (cookie: Buffer, errno: number, message: string) => {
      if (!structured) return simple(cookie, errno);
      const msg = Buffer.from(message.slice(0, 200));
      const p = Buffer.allocUnsafe(6 + msg.length);
      p.writeUInt32BE(errno, 0);
      p.writeUInt16BE(msg.length, 4);
      msg.copy(p, 6);
      chunk(cookie, REPLY_FLAG_DONE, ReplyType.error, p);
    };

    const handle = async (type: number, flags: number, cookie: Buffer, offset: number, length: number): Promise<void> => {
      const inside = Number.isSafeInteger(offset) && offset + length <= src.size;
      if (type === Command.read) {
        if (!inside || length > MAX_PAYLOAD_DEFAULT) return fail(cookie, ERRNO.EINVAL, `read of ${length} bytes at ${offset} is outside the export or too large`);
        if (length === 0) return structured ? chunk(cookie, REPLY_FLAG_DONE, ReplyType.none, Buffer.alloc(0)) : simple(cookie, 0, Buffer.alloc(0));
        // Sequential access: warm what comes next while this read is served.
        if (offset === nextSequential && src.prefetch) src.prefetch(offset + length, Math.max(length, 4 * 1024 * 1024));
        nextSequential = offset + length;
        const extents = src.extents(offset, length);
        const useHoles = structured && (flags & CommandFlag.df) === 0;
        if (!structured || !useHoles || !extents.some((e) => e.zero)) {
          const data = Buffer.alloc(length);
          try {
            await src.read(offset, length, data);
          } catch (err) {
            return fail(cookie, ERRNO.EIO, err instanceof Error ? err.message : String(err));
          }
          if (!structured) return simple(cookie, 0, data);
          const off = Buffer.allocUnsafe(8);
          off.writeBigUInt64BE(BigInt(offset), 0);
          return chunk(cookie, REPLY_FLAG_DONE, ReplyType.offsetData, Buffer.concat([off, data]));
        }
        // Structured, with holes: read the data extents first, then send every chunk (DONE last).
        const parts: {offset: number; length: number; data?: Buffer}[] = [];
        let at = offset;
        for (const e of extents) {
          parts.push({offset: at, length: e.length, data: e.zero ? undefined : Buffer.alloc(e.length)});
          at += e.length;
        }
        try {
          await Promise.all(parts.filter((p) => p.data).map((p) => src.read(p.offset, p.length, p.data!)));
        } catch (err) {
          return fail(cookie, ERRNO.EIO, err instanceof Error ? err.message : String(err));
        }
        parts.forEach((p, i) => {
          const last = i === parts.length - 1 ? REPLY_FLAG_DONE : 0;
          const off = Buffer.allocUnsafe(p.data ? 8 : 12);
          off.writeBigUInt64BE(BigInt(p.offset), 0);
          if (p.data) chunk(cookie, last, ReplyType.offsetData, Buffer.concat([off, p.data]));
          else {
            off.writeUInt32BE(p.length, 8);
            chunk(cookie, last, ReplyType.offsetHole, off);
          }
        });
        return;
      }
      if (type === Command.blockStatus) {
        if (!structured || !meta) return fail(cookie, ERRNO.EINVAL, 'BLOCK_STATUS needs structured replies and base:allocation');
        if (!inside || length === 0) return fail(cookie, ERRNO.EINVAL, `block status of ${length} bytes at ${offset} is outside the export`);
        let extents = src.extents(offset, length);
        if (flags & CommandFlag.reqOne) extents = extents.slice(0, 1);
        const p = Buffer.allocUnsafe(4 + 8 * extents.length);
        p.writeUInt32BE(META_ID, 0);
        extents.forEach((e, i) => {
          p.writeUInt32BE(e.length, 4 + 8 * i);
          p.writeUInt32BE(e.zero ? StateFlag.hole | StateFlag.zero : 0, 8 + 8 * i);
        });
        return chunk(cookie, REPLY_FLAG_DONE, ReplyType.blockStatus, p);
      }
      if (type === Command.flush) return structured ? chunk(cookie, REPLY_FLAG_DONE, ReplyType.none, Buffer.alloc(0)) : simple(cookie, 0);
      if (type === Command.write || type === Command.trim || type === Command.writeZeroes) return fail(cookie, ERRNO.EPERM, 'the export is read-only');
      return fail(cookie, ERRNO.EINVAL, `command ${type} is not supported`);
    };

    // A bounded amount of read data in flight per connection, whatever the client asks for.
    let bytes = 0;
    const wait = async (more: number) => {
      while (inFlight >= max || (inFlight > 0 && bytes + more > IN_FLIGHT_BYTES)) {
        if (!paused) {
          stream.pause();
          paused = true;
        }
        await new Promise<void>((r) => (wake = r));
      }
      if (paused) {
        stream.resume();
        paused = false;
      }
    };
    for (;;) {
      await wait(0);
      const head = await read(reader, 28);
      if (head.readUInt32BE(0) !== REQUEST_MAGIC) throw new Error('bad request magic');
      const flags = head.readUInt16BE(4);
      const type = head.readUInt16BE(6);
      const cookie = Buffer.from(head.subarray(8, 16));
      const offset = Number(head.readBigUInt64BE(16));
      const length = head.readUInt32BE(24);
      if (type === Command.disc) {
        await Promise.all(pending);
        return;
      }
      // A WRITE's payload follows its header: read it away before refusing the write.
      if (type === Command.write) {
        if (length > MAX_PAYLOAD_DEFAULT) throw new Error(`WRITE of ${length} bytes`);
        await reader.skip(length);
      }
      const cost = type === Command.read ? Math.min(length, MAX_PAYLOAD_DEFAULT) : 0;
      await wait(cost);
      inFlight++;
      bytes += cost;
      const job = handle(type, flags, cookie, offset, length)
        .catch((err: unknown) => fail(cookie, ERRNO.EIO, err instanceof Error ? err.message : String(err)))
        .finally(() => {
          inFlight--;
          bytes -= cost;
          pending.delete(job);
          wake?.();
          wake = undefined;
        });
      pending.add(job);
    }
  }
}

function transmissionFlags(): number {
  return TransmissionFlag.hasFlags | TransmissionFlag.readOnly | TransmissionFlag.sendDf | TransmissionFlag.canMultiConn | TransmissionFlag.sendFlush;
}

async function read(reader: ByteReader, n: number): Promise<Buffer> {
  try {
    return await reader.readExact(n);
  } catch {
    throw new ClientGone();
  }
}

function readString(data: Buffer, at: number): {value: string; next: number} | undefined {
  if (at + 4 > data.length) return undefined;
  const len = data.readUInt32BE(at);
  if (len > MAX_STRING || at + 4 + len > data.length) return undefined;
  return {value: data.toString('utf8', at + 4, at + 4 + len), next: at + 4 + len};
}

function parseGo(data: Buffer): {name: string; infos: number[]} | undefined {
  const name = readString(data, 0);
  if (!name || name.next + 2 > data.length) return undefined;
  const count = data.readUInt16BE(name.next);
  if (name.next + 2 + 2 * count !== data.length) return undefined;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(name.next + 2 + 2 * i));
  return {name: name.value, infos};
}

function parseMetaQuery(data: Buffer): {name: string; queries: string[]} | undefined {
  const name = readString(data, 0);
  if (!name || name.next + 4 > data.length) return undefined;
  const count = data.readUInt32BE(name.next);
  if (count > 64) return undefined;
  const queries: string[] = [];
  let at = name.next + 4;
  for (let i = 0; i < count; i++) {
    const q = readString(data, at);
    if (!q) return undefined;
    queries.push(q.value);
    at = q.next;
  }
  return at === data.length ? {name: name.value, queries} : undefined;
}
