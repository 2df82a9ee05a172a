/**
 * The stream between the appliance and a worker on a host (src/worker/main.ts): frames over the
 * stdin/stdout of the one SSH session the appliance opened, several disks multiplexed by a disk
 * number. Both ends use this module; what comes from the other end is untrusted and checked here
 * first (frame size, header shape), then by whoever handles the message.
 *
 * A frame: u32 BE length of the rest · u32 BE length of the header · the header (JSON, an object
 * with a string `t`) · the body (binary, may be empty).
 *
 * Appliance → worker                              Worker → appliance
 *   hello {protocol, mac?}                          hello {protocol, pid, node}
 *   open {disk, socket, export}                     opened {disk, size}
 *   read {disk, seq, offset, length, chunkSize}     ids {disk, seq} + n × 32 bytes (zero id = zeros)
 *   need {disk, seq} + u32 BE chunk indexes         chunk {disk, seq, index, flags, plain} + payload
 *                                                   … then done {disk, seq}
 *   close {disk}                                    closed {disk}
 *   stats                                           stats {cpuUserUs, cpuSystemUs, maxRssKiB}
 *   bye                                             (exits)
 *                                                   error {disk?, seq?, message}
 * A `read` holds the data on the worker until its `need` arrives (an empty `need` releases it):
 * the appliance bounds how many reads it has open, which bounds the worker's memory.
 */

export const PROTOCOL_VERSION = 1;
/** The largest frame either end accepts: a chunk of 64 MiB (the largest chunk size) plus headers. */
export const MAX_FRAME = (64 << 20) + 65536;
const MAX_HEADER = 65536;

export interface Frame {
  header: {t: string} & Record<string, unknown>;
  body: Buffer;
}

export class ProtocolError extends Error {}

/** One frame's bytes, in parts to write one after the other. */
export function encodeFrame(header: {t: string} & Record<string, unknown>, body?: Uint8Array): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(4 + json.length + (body?.length ?? 0), 0);
  prefix.writeUInt32BE(json.length, 4);
  return body && body.length > 0 ? [prefix, json, Buffer.from(body.buffer, body.byteOffset, body.byteLength)] : [prefix, json];
}

/**
 * Cuts a byte stream into frames. push() the bytes as they come; each complete frame goes to
 * `onFrame`. A frame larger than `maxFrame` or a header that is not a JSON object with a string
 * `t` throws ProtocolError: the stream is then unusable and must be closed.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private have = 0;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly maxFrame: number = MAX_FRAME,
  ) {}

  push(data: Buffer): void {
    this.parts.push(data);
    this.have += data.length;
    for (;;) {
      if (this.have < 4) return;
      const len = this.peekLength();
      if (len < 4 || len > this.maxFrame) throw new ProtocolError(`a frame of ${len} bytes (at most ${this.maxFrame})`);
      if (this.have < 4 + len) return;
      const bytes = this.take(4 + len);
      const hlen = bytes.readUInt32BE(4);
      if (hlen > MAX_HEADER || hlen > len - 4) throw new ProtocolError(`a frame header of ${hlen} bytes`);
      let header: unknown;
      try {
        header = JSON.parse(bytes.subarray(8, 8 + hlen).toString('utf8'));
      } catch {
        throw new ProtocolError('a frame header that is not JSON');
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as {t?: unknown}).t !== 'string') {
        throw new ProtocolError('a frame header without a message type');
      }
      this.onFrame({header: header as Frame['header'], body: bytes.subarray(8 + hlen)});
    }
  }

  private peekLength(): number {
    const first = this.parts[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.parts).readUInt32BE(0);
  }

  private take(n: number): Buffer {
    const first = this.parts[0]!;
    if (first.length >= n) {
      // The frame lies in one piece: a copy, so that the rest of the piece is not kept alive by it.
      const out = Buffer.from(first.subarray(0, n));
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      this.have -= n;
      return out;
    }
    const all = Buffer.concat(this.parts);
    const out = all.subarray(0, n);
    this.parts = all.length > n ? [all.subarray(n)] : [];
    this.have -= n;
    return out;
  }
}

/** A non-negative safe integer from a header field, else ProtocolError. */
export function uint(header: Record<string, unknown>, field: string): number {
  const v = header[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`field "${field}" of a "${String(header.t)}" message is not a non-negative integer`);
  return v;
}

/** A string from a header field, else ProtocolError. */
export function str(header: Record<string, unknown>, field: string, max = 4096): string {
  const v = header[field];
  if (typeof v !== 'string' || v.length > max) throw new ProtocolError(`field "${field}" of a "${String(header.t)}" message is not a string`);
  return v;
}

/** u32 BE indexes, the body of a `need`. */
export function encodeIndexes(indexes: readonly number[]): Buffer {
  const b = Buffer.alloc(indexes.length * 4);
  indexes.forEach((v, i) => b.writeUInt32BE(v, i * 4));
  return b;
}

export function decodeIndexes(body: Buffer): number[] {
  if (body.length % 4 !== 0) throw new ProtocolError('a list of chunk indexes whose length is not a multiple of 4');
  const out: number[] = [];
  for (let at = 0; at < body.length; at += 4) out.push(body.readUInt32BE(at));
  return out;
}
