/**
 * Exact-length reads over a byte stream (a socket), as awaitable calls.
 *
 * The handshake and the reply loop both think in "give me the next N bytes"; this class turns
 * the socket's bytes ('data' events, or feed() from net.connect's onread) into that.
 *
 * With onread the reader also chooses where the next socket read lands (readBuffer()): while a
 * readInto() waits, straight into the caller's buffer at the position it waits for, so the
 * kernel copies a READ payload into place and nothing else touches it (as libnbd's recv into the
 * caller's buffer); otherwise into a scratch buffer, which is reused unless bytes of it are still
 * unread. Nothing is allocated per read: measured, copying and allocating leftovers per read
 * cost more CPU than the reads (docs/benchmarks.md "NBD reads").
 * When the stream ends or fails, every waiting and later call rejects with `endError()`.
 * Too much unread data pauses the stream (backpressure) until the reader catches up.
 */
import type {Duplex} from 'node:stream';

const HIGH_WATER = 8 * 1024 * 1024;
/**
 * Reads with no readInto() waiting land here: a reply header and the first bytes of its payload,
 * which are copied once; the payload's rest then lands in place. Small, so little is copied.
 */
const SCRATCH_SIZE = 64 * 1024;
/** Scratch buffers kept for reuse (more are allocated while those hold unread bytes). */
const SCRATCH_KEPT = 4;

export class ByteReader {
  private chunks: Buffer[] = [];
  private available = 0;
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;
  private stream: Duplex | undefined;
  private paused = false;
  /** A readInto() in progress: arriving bytes go straight into its buffer, no promise per chunk. */
  private sink: {dest: Buffer; pos: number; remaining: number; resolve: () => void} | undefined;
  private readonly onData = (chunk: Buffer) => this.feed(chunk);
  /** Where reads land when no readInto() waits (onread); one is reused once its bytes are read. */
  private readonly scratches: Buffer[] = [];

  /**
   * Where the socket's next read should land (net.connect's onread `buffer` function): the
   * waiting readInto()'s destination, else the scratch buffer.
   */
  readBuffer(): Buffer {
    const sink = this.sink;
    if (sink) return sink.dest.subarray(sink.pos, sink.pos + sink.remaining);
    const free = this.scratches.find((s) => !this.chunks.some((c) => c.buffer === s.buffer));
    if (free) return free;
    const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
    if (this.scratches.length < SCRATCH_KEPT) this.scratches.push(scratch);
    return scratch;
  }

  /**
   * Takes bytes from the stream. With onread they are in a buffer the reader handed out
   * (readBuffer()): bytes that landed in a waiting readInto()'s destination are only counted;
   * others stay in the scratch buffer, which is not reused until they are read.
   * Returns false when the reader wants no more for now (onread pauses the socket then).
   */
  feed(chunk: Buffer): boolean {
    const sink = this.sink;
    if (sink) {
      const n = Math.min(chunk.length, sink.remaining);
      // Read straight into place (readBuffer() gave the socket this very region): nothing to copy.
      const inPlace = chunk.buffer === sink.dest.buffer && chunk.byteOffset === sink.dest.byteOffset + sink.pos;
      if (!inPlace) chunk.copy(sink.dest, sink.pos, 0, n);
      sink.pos += n;
      sink.remaining -= n;
      if (sink.remaining === 0) {
        this.sink = undefined;
        sink.resolve();
      }
      if (n === chunk.length) return true;
      chunk = chunk.subarray(n);
    }
    this.chunks.push(chunk);
    this.available += chunk.length;
    if (this.available > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.stream?.pause();
    }
    this.wake();
    return true;
  }
  private readonly onEnd = () => this.fail(new Error('end of stream'));
  private readonly onError = (err: Error) => this.fail(err);

  private dataEvents = false;

  /**
   * Starts watching `stream` for its end and errors, and for its bytes when `dataEvents` (else
   * the owner calls feed(), from a socket's onread callback).
   */
  attach(stream: Duplex, dataEvents: boolean): void {
    this.stream = stream;
    this.dataEvents = dataEvents;
    if (dataEvents) stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  /**
   * Stops taking bytes from the current stream, before a TLS handshake takes the socket over.
   * Nothing may be pending: after STARTTLS's ACK the server sends nothing in the clear.
   */
  detach(): void {
    if (this.available > 0) throw new Error('bytes pending when handing the socket over');
    const stream = this.stream;
    if (!stream) return;
    if (this.dataEvents) stream.off('data', this.onData);
    stream.off('end', this.onEnd);
    stream.off('close', this.onEnd);
    stream.off('error', this.onError);
    this.stream = undefined;
  }

  /** The reason the stream ended, once it has. */
  endError(): Error | undefined {
    return this.ended;
  }

  /** Marks the stream as ended (when the owner closes it) so waiting calls reject now. */
  fail(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    this.wake();
  }

  async readExact(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    // Fast path: the first buffered chunk holds all of it. A copy: the chunk may be a view of
    // the scratch buffer, which later reads reuse.
    await this.waitFor(1);
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      return Buffer.from(this.take(n));
    }
    const out = Buffer.allocUnsafe(n);
    await this.readInto(out, 0, n);
    return out;
  }

  async readInto(dest: Buffer, pos: number, n: number): Promise<void> {
    let done = 0;
    while (done < n && this.available > 0) {
      const part = this.take(Math.min(n - done, this.chunks[0]!.length));
      part.copy(dest, pos + done);
      done += part.length;
    }
    if (done === n) return;
    if (this.ended) throw this.ended;
    await new Promise<void>((resolve, reject) => {
      this.sink = {dest, pos: pos + done, remaining: n - done, resolve};
      this.waiter = () => {
        if (this.ended && this.sink) {
          this.sink = undefined;
          this.waiter = undefined;
          reject(this.ended);
        }
      };
    });
    this.waiter = undefined;
  }

  async skip(n: number): Promise<void> {
    let done = 0;
    while (done < n) {
      await this.waitFor(1);
      done += this.take(Math.min(n - done, this.chunks[0]!.length)).length;
    }
  }

  /** Takes up to n bytes from the first chunk only (callers ask for at most its length). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let part: Buffer;
    if (first.length === n) {
      this.chunks.shift();
      part = first;
    } else {
      part = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    }
    this.available -= n;
    if (this.paused && this.available < HIGH_WATER / 2) {
      this.paused = false;
      this.stream?.resume();
    }
    return part;
  }

  private waitFor(n: number): Promise<void> | void {
    if (this.available >= n) return;
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<void>((resolve, reject) => {
      this.waiter = () => {
        if (this.available >= n) {
          this.waiter = undefined;
          resolve();
        } else if (this.ended) {
          this.waiter = undefined;
          reject(this.ended);
        }
      };
    });
  }

  private wake(): void {
    this.waiter?.();
  }

}
