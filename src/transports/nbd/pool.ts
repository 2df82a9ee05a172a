/**
 * NbdPool: several NBD connections to one export, for parallel reads (and writes where safe).
 *
 * Several connections are only opened when the export allows it: it advertises CAN_MULTI_CONN,
 * or it is read-only (nothing can then be inconsistent between connections). Otherwise the pool
 * holds one connection and `connections` says so. Requests are cut into pieces of at most the
 * server's maximum payload and handed to the least busy connection, with at most `maxInFlight`
 * requests outstanding per connection; callers may issue any number of calls at once.
 */
import {NbdClient, type BlockStatusEntry, type NbdConnectOptions} from './client.js';
import type {BlockSize} from './protocol.js';

export interface NbdPoolOptions extends NbdConnectOptions {
  connections: number;
  /** Requests outstanding per connection. Default 4. */
  maxInFlight?: number;
  /**
   * The largest READ or WRITE request sent (bytes; default and upper bound: the server's maximum
   * payload). A larger call is cut into requests of this size spread over the connections.
   */
  requestSize?: number;
}

export class NbdPool {
  readonly size: number;
  readonly connections: number;
  readonly readOnly: boolean;
  readonly canMultiConn: boolean;
  readonly exportFlags: number;
  readonly blockSize: BlockSize;
  readonly maxPayload: number;
  readonly metaContexts: Map<string, number>;

  private readonly clients: NbdClient[];
  private readonly load: number[];
  private readonly maxInFlight: number;
  /** The size reads and writes are cut into (≤ maxPayload). */
  readonly requestSize: number;
  private readonly waiters: ((index: number) => void)[] = [];
  private closing: Promise<void> | undefined;

  private constructor(clients: NbdClient[], maxInFlight: number, requestSize: number | undefined) {
    const first = clients[0]!;
    this.clients = clients;
    this.load = clients.map(() => 0);
    this.maxInFlight = maxInFlight;
    this.size = first.size;
    this.connections = clients.length;
    this.readOnly = first.readOnly;
    this.canMultiConn = first.canMultiConn;
    this.exportFlags = first.exportFlags;
    this.blockSize = first.blockSize;
    this.maxPayload = first.maxPayload;
    this.metaContexts = first.metaContexts;
    this.requestSize = Math.min(first.maxPayload, requestSize ?? first.maxPayload);
  }

  static async open(opts: NbdPoolOptions): Promise<NbdPool> {
    if (!Number.isInteger(opts.connections) || opts.connections < 1) throw new RangeError(`connections must be a positive integer, not ${opts.connections}`);
    const maxInFlight = opts.maxInFlight ?? 4;
    const first = await NbdClient.connect(opts);
    const wanted = first.canMultiConn || first.readOnly ? opts.connections : 1;
    const rest = await Promise.allSettled(Array.from({length: wanted - 1}, () => NbdClient.connect(opts)));
    const opened = [first, ...rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(opened.map((c) => c.close()));
      throw failed.reason;
    }
    return new NbdPool(opened, maxInFlight, opts.requestSize);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`read buffer of ${into.length} bytes is smaller than the ${length} bytes asked for`);
    const dest = into ?? Buffer.allocUnsafe(length);
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < length; done += this.requestSize) {
      const n = Math.min(this.requestSize, length - done);
      const at = done;
      parts.push(this.run((c) => c.read(offset + at, n, dest.subarray(at, at + n))));
    }
    await Promise.all(parts);
    return dest.length === length ? dest : dest.subarray(0, length);
  }

  blockStatus(offset: number, length: number, context: string): Promise<BlockStatusEntry[]> {
    return this.run((c) => c.blockStatus(offset, length, context));
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < data.length; done += this.requestSize) {
      const piece = data.subarray(done, Math.min(done + this.requestSize, data.length));
      const at = offset + done;
      parts.push(this.run((c) => c.write(at, piece)));
    }
    await Promise.all(parts);
  }

  writeZeroes(offset: number, length: number, opts: {noHole?: boolean} = {}): Promise<void> {
    return this.run((c) => c.writeZeroes(offset, length, opts));
  }

  trim(offset: number, length: number): Promise<void> {
    return this.run((c) => c.trim(offset, length));
  }

  /** Flushes every connection: writes may have gone over any of them. */
  async flush(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.flush()));
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled(this.clients.map((c) => c.close())).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    return this.closing;
  }

  private async run<T>(fn: (client: NbdClient) => Promise<T>): Promise<T> {
    if (this.closing) throw new Error('NBD pool is closed');
    const index = await this.acquire();
    try {
      return await fn(this.clients[index]!);
    } finally {
      this.release(index);
    }
  }

  private leastBusy(): number {
    let best = -1;
    for (let i = 0; i < this.load.length; i++) {
      if (this.load[i]! < this.maxInFlight && (best < 0 || this.load[i]! < this.load[best]!)) best = i;
    }
    return best;
  }

  private acquire(): Promise<number> | number {
    const i = this.leastBusy();
    if (i >= 0) {
      this.load[i]!++;
      return i;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(index: number): void {
    this.load[index]!--;
    const waiter = this.waiters.shift();
    if (waiter) {
      const i = this.leastBusy();
      this.load[i]!++;
      waiter(i);
    }
  }
}
