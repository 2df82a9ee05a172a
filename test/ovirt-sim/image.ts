/**
 * The simulator's disk image: sparse, in memory, with change tracking per checkpoint.
 *
 * Data is kept in 64 KiB blocks (the granularity of the dirty bitmaps the real hosts use,
 * docs/reference/ovirt-backup-api.md §6.2). A block is absent (a hole: reads as zero, "hole": true), 'zero'
 * (allocated but known zero, like qemu's zero clusters) or a Buffer of data. Blocks are never
 * modified in place — a write replaces the block's Buffer — so a snapshot is a cheap copy of the
 * block map, and many blocks may share one Buffer (the benchmark relies on that).
 *
 * Every checkpoint owns one bitmap and all bitmaps stay enabled, so the bitmap of checkpoint X
 * holds every block changed since X (§11 "Simulating CBT").
 */
export const BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(BLOCK);

type Block = Buffer | 'zero';

export interface ZeroExtent {start: number; length: number; zero: boolean; hole: boolean}
export interface DirtyExtent {start: number; length: number; dirty: boolean; zero: boolean}

export class SimImage {
  readonly blocks: Map<number, Block>;
  readonly bitmaps = new Map<string, Set<number>>();

  constructor(readonly size: number, blocks?: Map<number, Block>) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) throw new Error(`bad image size ${size}`);
    this.blocks = blocks ?? new Map();
  }

  /** A frozen point-in-time copy (what a backup's NBD export shows). */
  snapshot(): SimImage {
    return new SimImage(this.size, new Map(this.blocks));
  }

  private markDirty(first: number, last: number): void {
    for (const bm of this.bitmaps.values()) for (let b = first; b <= last; b++) bm.add(b);
  }

  write(offset: number, data: Buffer): void {
    if (offset < 0 || offset + data.length > this.size) throw new RangeError('write out of range');
    if (data.length === 0) return;
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const idx = Math.floor(at / BLOCK);
      const inBlock = at - idx * BLOCK;
      const n = Math.min(BLOCK - inBlock, data.length - pos);
      let buf: Buffer;
      if (inBlock === 0 && n === BLOCK) {
        buf = Buffer.from(data.subarray(pos, pos + n));
      } else {
        buf = Buffer.alloc(BLOCK);
        const old = this.blocks.get(idx);
        if (old instanceof Buffer) old.copy(buf);
        data.copy(buf, inBlock, pos, pos + n);
      }
      this.blocks.set(idx, buf);
      pos += n;
    }
    this.markDirty(Math.floor(offset / BLOCK), Math.floor((offset + data.length - 1) / BLOCK));
  }

  /** Sets a whole block to a shared buffer without copying (fixtures and the benchmark). */
  setBlock(idx: number, buf: Buffer): void {
    if (buf.length !== BLOCK) throw new Error('setBlock needs a whole block');
    this.blocks.set(idx, buf);
    this.markDirty(idx, idx);
  }

  zero(offset: number, length: number, punch = false): void {
    if (offset < 0 || offset + length > this.size) throw new RangeError('zero out of range');
    if (length === 0) return;
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const idx = Math.floor(at / BLOCK);
      const inBlock = at - idx * BLOCK;
      const n = Math.min(BLOCK - inBlock, end - at);
      if (inBlock === 0 && (n === BLOCK || at + n >= this.size)) {
        if (punch) this.blocks.delete(idx);
        else this.blocks.set(idx, 'zero');
      } else {
        const old = this.blocks.get(idx);
        if (old instanceof Buffer) {
          const buf = Buffer.from(old);
          buf.fill(0, inBlock, inBlock + n);
          this.blocks.set(idx, buf);
        }
      }
      at += n;
    }
    this.markDirty(Math.floor(offset / BLOCK), Math.floor((end - 1) / BLOCK));
  }

  /** The buffers that make up [offset, offset+length), in order, without copying data. */
  *slices(offset: number, length: number): Generator<Buffer> {
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const idx = Math.floor(at / BLOCK);
      const inBlock = at - idx * BLOCK;
      const n = Math.min(BLOCK - inBlock, end - at);
      const b = this.blocks.get(idx);
      yield (b instanceof Buffer ? b : ZEROS).subarray(inBlock, inBlock + n);
      at += n;
    }
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.size) throw new RangeError('read out of range');
    return Buffer.concat([...this.slices(offset, length)], length);
  }

  addBitmap(id: string): void {
    this.bitmaps.set(id, new Set());
  }

  removeBitmap(id: string): void {
    this.bitmaps.delete(id);
  }

  private blockCount(): number {
    return Math.ceil(this.size / BLOCK);
  }

  private blockKind(idx: number): 'data' | 'zero' | 'hole' {
    const b = this.blocks.get(idx);
    return b === undefined ? 'hole' : b === 'zero' ? 'zero' : 'data';
  }

  /** imageio `extents?context=zero`: contiguous, merged, covering the whole image. */
  zeroExtents(): ZeroExtent[] {
    return mergeRuns(this.blockCount(), this.size, (i) => {
      const k = this.blockKind(i);
      return {zero: k !== 'data', hole: k === 'hole'};
    });
  }

  /** imageio `extents?context=dirty` for the given dirty block set. */
  dirtyExtents(dirty: Set<number>): DirtyExtent[] {
    return mergeRuns(this.blockCount(), this.size, (i) => ({dirty: dirty.has(i), zero: this.blockKind(i) !== 'data'}));
  }
}

function mergeRuns<T extends Record<string, boolean>>(
  count: number,
  size: number,
  attrs: (idx: number) => T,
): (T & {start: number; length: number})[] {
  const out: (T & {start: number; length: number})[] = [];
  let cur: (T & {start: number; length: number}) | undefined;
  for (let i = 0; i < count; i++) {
    const a = attrs(i);
    const start = i * BLOCK;
    const length = Math.min(BLOCK, size - start);
    if (cur && Object.keys(a).every((k) => cur![k] === a[k])) {
      cur.length += length;
    } else {
      cur = {start, length, ...a};
      out.push(cur);
    }
  }
  return out;
}
