/**
 * A scripted NBD server for replies no real server here produces on demand: READ chunks out of
 * order, data and holes mixed, replies to pipelined requests in reverse order, ERROR_OFFSET
 * chunks, protocol violations. It speaks the fixed-newstyle handshake for real (so the client's
 * negotiation runs unchanged) and hands each transmission request to `onRequest`.
 */
import net from 'node:net';

export interface ScriptedRequest {
  type: number;
  flags: number;
  cookie: Buffer;
  offset: number;
  length: number;
  payload?: Buffer;
}

export interface ScriptedReplies {
  /** A structured reply chunk. */
  chunk(cookie: Buffer, type: number, payload: Buffer, done: boolean): void;
  simple(cookie: Buffer, errno: number): void;
  raw(bytes: Buffer): void;
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export async function startScriptedServer(
  socketPath: string,
  opts: {
    size: number;
    /** Transmission flags; default HAS_FLAGS | SEND_FLUSH | SEND_WRITE_ZEROES (writable, one connection). */
    exportFlags?: number;
    onRequest: (req: ScriptedRequest, reply: ScriptedReplies, pendingBatch: ScriptedRequest[], connection: number) => void;
  },
): Promise<{close: () => Promise<void>}> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    const connection = connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    const batch: ScriptedRequest[] = [];
    const reply: ScriptedReplies = {
      chunk: (cookie, type, payload, done) =>
        s.write(Buffer.concat([u32(0x668e33ef), u16(done ? 1 : 0), u16(type), cookie, u32(payload.length), payload])),
      simple: (cookie, errno) => s.write(Buffer.concat([u32(0x67446698), u32(errno), cookie])),
      raw: (bytes) => s.write(bytes),
    };
    const optReply = (option: number, type: number, data: Buffer = Buffer.alloc(0)) =>
      s.write(Buffer.concat([u64(0x0003e889045565a9n), u32(option), u32(type), u32(data.length), data]));
    s.write(Buffer.concat([Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), u16(3)]));
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (phase === 'flags') {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          phase = 'options';
        } else if (phase === 'options') {
          if (buf.length < 16) return;
          const len = buf.readUInt32BE(12);
          if (buf.length < 16 + len) return;
          const option = buf.readUInt32BE(8);
          buf = buf.subarray(16 + len);
          if (option === 8) optReply(option, 1);
          else if (option === 10) {
            optReply(option, 4, Buffer.concat([u32(7), Buffer.from('base:allocation')]));
            optReply(option, 1);
          } else if (option === 7) {
            optReply(option, 3, Buffer.concat([u16(0), u64(opts.size), u16(opts.exportFlags ?? 1 | 4 | 64)]));
            optReply(option, 3, Buffer.concat([u16(3), u32(1), u32(4096), u32(1024 * 1024)]));
            optReply(option, 1);
            phase = 'transmission';
          } else optReply(option, 0x80000001);
        } else {
          if (buf.length < 28) return;
          const type = buf.readUInt16BE(6);
          const length = buf.readUInt32BE(24);
          const withPayload = type === 1;
          if (withPayload && buf.length < 28 + length) return;
          const req: ScriptedRequest = {
            flags: buf.readUInt16BE(4),
            type,
            cookie: Buffer.from(buf.subarray(8, 16)),
            offset: Number(buf.readBigUInt64BE(16)),
            length,
            payload: withPayload ? Buffer.from(buf.subarray(28, 28 + length)) : undefined,
          };
          buf = buf.subarray(28 + (withPayload ? length : 0));
          if (type === 2) {
            s.end();
            return;
          }
          batch.push(req);
          opts.onRequest(req, reply, batch, connection);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
