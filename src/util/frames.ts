/**
 * Length-prefixed frames over a byte stream (the stdin/stdout of an SSH session): the worker
 * stream (src/worker/protocol.ts) and the repository served over SSH
 * (src/repository/storage/remote-protocol.ts) both speak them. What comes from the other end is
 * untrusted and checked here first (frame size, header shape), then by whoever handles it.
 *
 * A frame: u32 BE length of the rest · u32 BE length of the header · the header (JSON, an object
 * with a string `t`) · the body (binary, may be empty).
 */

const MAX_HEADER = 65536;

export interface Frame {
  header: {t: string} & Record<string, unknown>;
  body: Buffer;
}

export class ProtocolError extends Error {}

/** One frame's bytes, in parts to write one after the other (the body may come in parts too). */
export function encodeFrame(header: {t: string} & Record<string, unknown>, body?: Uint8Array | readonly Uint8Array[]): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const parts = body === undefined ? [] : Array.isArray(body) ? (body as readonly Uint8Array[]) : [body as Uint8Array];
  const bodyLength = parts.reduce((a, p) => a + p.length, 0);
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(4 + json.length + bodyLength, 0);
  prefix.writeUInt32BE(json.length, 4);
  return [prefix, json, ...parts.filter((p) => p.length > 0).map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))];
}

/**
 * Cuts a byte stream into frames. push() the bytes as they come; each complete frame goes to
 * `onFrame`. A frame larger than `maxFrame` (a number, or asked of a function for each frame: what the
 * reader expects at that moment) or a header that is not a JSON object with a string
 * `t` throws ProtocolError: the stream is then unusable and must be closed.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private have = 0;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly maxFrame: number | (() => number),
  ) {}

  push(data: Buffer): void {
    this.parts.push(data);
    this.have += data.length;
    for (;;) {
      if (this.have < 4) return;
      const len = this.peekLength();
      const max = typeof this.maxFrame === 'number' ? this.maxFrame : this.maxFrame();
      if (len < 4 || len > max) throw new ProtocolError(`a frame of ${len} bytes (at most ${max})`);
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

