/**
 * Reading restore points back: a DiskReader gives random access (read), a sequential stream
 * with bounded read-ahead, and the chunk map (zero or data per chunk) for sparse restores.
 *
 * An index is checked twice when opened: against the SHA-256 the manifest recorded for it,
 * and against its own header checksum. Chunks are read, checked and decoded in the chunk
 * worker threads (chunk-workers.ts): format 2 chunks by the SHA-256 of their data against their
 * id on every read (a restore verifies every chunk end to end), format 1 chunks by their CRC.
 */
import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import {ExitCode, UserError} from '../util/errors.js';
import {ZERO_ID} from './chunk-file.js';
import type {RepoContext} from './context.js';
import {corrupt} from './fsio.js';
import {chunkCount, decodeIndex, INDEX_HEADER_SIZE} from './index-file.js';
import {pointKey} from './layout.js';
import {indexContent, storedSize} from './sealed-files.js';
import type {ChunkMapEntry, DiskReader, Manifest, ManifestDisk, RestorePointReader, RestorePointSummary} from './types.js';

/** Chunks read ahead by stream(); bounds memory to about this many chunks. */
const READ_AHEAD = 8;
/** Decoded chunks kept for small random reads that hit the same chunk again. */
const CACHE_CHUNKS = 16;
/** Chunks an NBD export reads ahead of a sequential reader (prefetch). */
const PREFETCH_CHUNKS = 8;

/** Reads and checks the index file of one disk of a committed restore point. */
export async function loadIndexIds(ctx: RepoContext, m: Manifest, d: ManifestDisk): Promise<Buffer> {
  const key = `${pointKey(m.id)}/${d.index}`;
  const file = ctx.backend.describe(key);
  // The manifest is untrusted: its claimed size decides the index size, and the file must be
  // exactly that big before it is read (a hostile repository must not choose what we allocate).
  const expected = storedSize(ctx, INDEX_HEADER_SIZE + 32 * chunkCount(d.size, m.chunkSize));
  if (d.indexBytes !== expected) throw corrupt(file, `the manifest records ${d.indexBytes} index bytes for disk ${d.key}, its size needs ${expected}`);
  const raw = await ctx.backend.get(key, {max: expected, what: 'index'});
  if (raw === undefined) throw corrupt(file, `the index of disk ${d.key} is missing`);
  // Its own structure first (a truncated file is named as such), then the manifest's checksum.
  const content = indexContent(ctx, m.id, d.index, raw);
  if ('error' in content) throw corrupt(file, content.error);
  const decoded = decodeIndex(content);
  if ('error' in decoded) throw corrupt(file, decoded.error);
  if (raw.length !== d.indexBytes || createHash('sha256').update(raw).digest('hex') !== d.indexSha256) {
    throw corrupt(file, 'the index does not match the checksum recorded in the manifest');
  }
  if (decoded.size !== d.size || decoded.chunkSize !== m.chunkSize) {
    throw corrupt(file, `the index describes size ${decoded.size} / chunk size ${decoded.chunkSize}, the manifest ${d.size} / ${m.chunkSize}`);
  }
  return decoded.ids;
}

export class RestorePointReaderImpl implements RestorePointReader {
  constructor(
    private readonly ctx: RepoContext,
    readonly summary: RestorePointSummary,
    readonly manifest: Manifest,
  ) {}

  async openDisk(key: string): Promise<DiskReader> {
    const d = this.manifest.disks.find((x) => x.key === key);
    if (!d) {
      throw new UserError(`Restore point ${this.manifest.id} has no disk "${key}".`, {
        hint: `Its disks are: ${this.manifest.disks.map((x) => x.key).join(', ') || '(none)'}.`,
        exitCode: ExitCode.notFound,
      });
    }
    const ids = await loadIndexIds(this.ctx, this.manifest, d);
    return new DiskReaderImpl(this.ctx, ids, d.size, this.manifest.chunkSize, `restore point ${this.manifest.id}, disk ${d.key}`);
  }
}

export class DiskReaderImpl implements DiskReader {
  private readonly cache = new Map<number, Promise<Buffer>>();
  /** Shared by stream() for zero chunks, so a sparse disk streams without allocating. */
  private zeros: Buffer | undefined;

  constructor(
    private readonly ctx: RepoContext,
    private readonly ids: Buffer,
    readonly size: number,
    readonly chunkSize: number,
    private readonly context: string,
  ) {}

  private isZero(i: number): boolean {
    return ZERO_ID.equals(this.ids.subarray(i * 32, i * 32 + 32));
  }

  private chunkLen(i: number): number {
    return Math.min(this.chunkSize, this.size - i * this.chunkSize);
  }

  /** The plain data of chunk i; zero chunks come back as fresh zero buffers. */
  private async chunk(i: number): Promise<Buffer> {
    if (this.isZero(i)) return Buffer.alloc(this.chunkLen(i));
    const hex = this.ids.subarray(i * 32, i * 32 + 32).toString('hex');
    const data = await this.ctx.store.read(hex, `${this.context} at offset ${i * this.chunkSize}`);
    if (data.length !== this.chunkLen(i)) {
      throw corrupt(this.ctx.store.path(hex), `chunk holds ${data.length} bytes where ${this.context} needs ${this.chunkLen(i)} at offset ${i * this.chunkSize}`);
    }
    return data;
  }

  /** The plain data of chunk i (not a zero chunk) in a new buffer of this thread. */
  private async chunkCopy(i: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(this.chunkLen(i));
    await this.chunkInto(i, out, 0);
    return out;
  }

  /** Copies bytes [from, from + into.length) of chunk i (not a zero chunk) into `into`. */
  private async chunkInto(i: number, into: Buffer, from: number): Promise<void> {
    const hex = this.ids.subarray(i * 32, i * 32 + 32).toString('hex');
    const context = `${this.context} at offset ${i * this.chunkSize}`;
    const plainLength = await this.ctx.store.readInto(hex, context, into, from);
    if (plainLength !== this.chunkLen(i)) {
      throw corrupt(this.ctx.store.path(hex), `chunk holds ${plainLength} bytes where ${this.context} needs ${this.chunkLen(i)} at offset ${i * this.chunkSize}`);
    }
  }

  private cached(i: number): Promise<Buffer> {
    let p = this.cache.get(i);
    if (p) {
      this.cache.delete(i);
      this.cache.set(i, p);
      return p;
    }
    p = this.chunk(i);
    this.cache.set(i, p);
    p.catch(() => this.cache.delete(i));
    while (this.cache.size > CACHE_CHUNKS) this.cache.delete(this.cache.keys().next().value as number);
    return p;
  }

  private checkBounds(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new UserError(`Read of ${length} bytes at offset ${offset} is outside the disk (${this.size} bytes) in ${this.context}.`, {
        exitCode: ExitCode.invalidInput,
      });
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkBounds(offset, length);
    if (into !== undefined && into.length < length) throw new Error(`read(${offset}, ${length}): the buffer given holds only ${into.length} bytes`);
    // A fresh Buffer.alloc is calloc'ed: zero pages cost nothing until touched, so zero chunks
    // need no fill. A caller's buffer is reused (no page faults) and must be zero-filled.
    const out = into === undefined ? Buffer.alloc(length) : into.subarray(0, length);
    const cs = this.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((offset + length - 1) / cs);
    // The cache helps small reads that come back to the same chunk; large runs bypass it.
    const small = length < cs;
    const jobs: Promise<void>[] = [];
    for (let i = first; length > 0 && i <= last; i++) {
      const chunkStart = i * cs;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(offset + length, chunkStart + this.chunkLen(i));
      if (this.isZero(i)) {
        if (into !== undefined) out.fill(0, from - offset, to - offset);
        continue;
      }
      // A large run: the worker leaves the chunk in its shared slot and the pool copies it
      // straight into `out` (no buffer allocated per chunk).
      const job = small
        ? this.cached(i).then((data) => {
            data.copy(out, from - offset, from - chunkStart, to - chunkStart);
          })
        : this.chunkInto(i, out.subarray(from - offset, to - offset), from - chunkStart);
      job.catch(() => undefined); // awaited below; this only keeps a second failure from being unhandled
      jobs.push(job);
      // Bound the chunks in memory for a large read.
      if (jobs.length >= READ_AHEAD) await jobs[jobs.length - READ_AHEAD];
    }
    await Promise.all(jobs);
    return out;
  }

  stream(opts: {start?: number; end?: number} = {}): Readable {
    const start = opts.start ?? 0;
    const end = opts.end ?? this.size;
    this.checkBounds(start, end - start);
    const cs = this.chunkSize;
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      if (end <= start) return;
      const first = Math.floor(start / cs);
      const last = Math.floor((end - 1) / cs);
      const ahead: Promise<Buffer>[] = [];
      let next = first;
      const fill = () => {
        while (next <= last && ahead.length < READ_AHEAD) {
          const i = next++;
          // A data chunk is decoded by a worker into its shared slot and copied into a buffer of
          // this thread: the workers allocate nothing per chunk (their garbage is native memory
          // that their own GC sees late, which made a long stream grow the process).
          const p = self.isZero(i) ? Promise.resolve((self.zeros ??= Buffer.alloc(cs)).subarray(0, self.chunkLen(i))) : self.chunkCopy(i);
          p.catch(() => undefined); // a consumer that stops early must not leave an unhandled rejection
          ahead.push(p);
        }
      };
      for (let i = first; i <= last; i++) {
        fill();
        const data = await ahead.shift()!;
        const chunkStart = i * cs;
        const from = Math.max(start, chunkStart) - chunkStart;
        const to = Math.min(end, chunkStart + data.length) - chunkStart;
        yield from === 0 && to === data.length ? data : data.subarray(from, to);
      }
    }
    return Readable.from(gen(), {objectMode: false, highWaterMark: cs});
  }

  extents(offset: number, length: number): {length: number; zero: boolean}[] {
    this.checkBounds(offset, length);
    const out: {length: number; zero: boolean}[] = [];
    const cs = this.chunkSize;
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const i = Math.floor(at / cs);
      const to = Math.min(end, i * cs + this.chunkLen(i));
      const zero = this.isZero(i);
      const last = out.at(-1);
      if (last && last.zero === zero) last.length += to - at;
      else out.push({length: to - at, zero});
      at = to;
    }
    return out;
  }

  prefetch(offset: number, length: number): void {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return;
    const cs = this.chunkSize;
    // At most what the cache keeps, so the prefetched chunks are still there when read.
    const last = Math.min(Math.floor((end - 1) / cs), Math.floor(offset / cs) + PREFETCH_CHUNKS - 1);
    for (let i = Math.floor(offset / cs); i <= last; i++) {
      if (!this.isZero(i) && !this.cache.has(i)) void this.cached(i).catch(() => undefined);
    }
  }

  async *chunkMap(): AsyncIterable<ChunkMapEntry> {
    const n = Math.ceil(this.size / this.chunkSize);
    for (let i = 0; i < n; i++) yield {offset: i * this.chunkSize, length: this.chunkLen(i), zero: this.isZero(i)};
  }
}
