/**
 * Exact-length reads over a byte stream (a socket), as awaitable calls.
 *
 * The handshake and the reply loop both think in "give me the next N bytes"; this class turns
 * the socket's bytes ('data' events, or feed() from a reused onread buffer) into that. readInto() copies straight into the caller's buffer as
 * bytes arrive, so a 32 MiB READ payload is copied once and never buffered whole a second time.
 * When the stream ends or fails, every waiting and later call rejects with `endError()`.
 * Too much unread data pauses the stream (backpressure) until the reader catches up.
 */
import type {Duplex} from 'node:stream';

const HIGH_WATER = 8 * 1024 * 1024;

export class ByteReader {
  private chunks: Buffer[] = [];
  private available = 0;
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;
  private stream: Duplex | undefined;
  private paused = false;
  /** A readInto() in progress: arriving bytes go straight into its buffer, no promise per chunk. */
  private sink: {dest: Buffer; pos: number; remaining: number; resolve: () => void} | undefined;
  private readonly onData = (chunk: Buffer) => this.feed(chunk, false);

  /**
   * Takes bytes from the stream. `transient` chunks live in a buffer the socket reuses
   * (net.connect's onread): what is not copied into a waiting readInto() is copied out.
   * Returns false when the reader wants no more for now (onread pauses the socket then).
   */
  feed(chunk: Buffer, transient: boolean): boolean {
    const sink = this.sink;
    if (sink) {
      const n = Math.min(chunk.length, sink.remaining);
      chunk.copy(sink.dest, sink.pos, 0, n);
      sink.pos += n;
      sink.remaining -= n;
      if (sink.remaining === 0) {
        this.sink = undefined;
        sink.resolve();
      }
      if (n === chunk.length) return true;
      chunk = chunk.subarray(n);
    }
    this.chunks.push(transient ? Buffer.from(chunk) : chunk);
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
    // Fast path: the first buffered chunk holds all of it.
    await this.waitFor(1);
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      return this.take(n);
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
