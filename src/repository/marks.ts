/**
 * GC's set of referenced chunks, kept by the first 8 bytes of each id: 8 bytes per chunk in one
 * growing BigUint64Array, sorted once marking is done, then looked up by binary search.
 *
 * Why not a Set of strings: measured, a Set of 16-hex-digit strings costs ~75 bytes of heap per
 * entry and V8 refuses its 16 777 217th entry ("Set maximum size exceeded"), so GC would have
 * failed on a repository of ~17 million chunks (~8 TB stored in 1 MiB chunks; docs/scale.md).
 * Here 115 million chunks take ~0.9 GB. A prefix collision can only keep a chunk that could
 * have gone, never remove one that is needed.
 */

/** The 8-byte key of a chunk id (32 bytes, or its 64 hex digits). */
export function chunkMarkKey(id: Buffer | string): bigint {
  return typeof id === 'string' ? BigInt(`0x${id.slice(0, 16)}`) : id.readBigUInt64BE(0);
}

export class ChunkMarks {
  private keys = new BigUint64Array(1024);
  private count = 0;
  private sealed = false;

  add(id: Buffer | string): void {
    if (this.sealed) throw new Error('ChunkMarks: add() after seal()');
    if (this.count === this.keys.length) {
      const bigger = new BigUint64Array(this.keys.length * 2);
      bigger.set(this.keys);
      this.keys = bigger;
    }
    this.keys[this.count++] = chunkMarkKey(id);
  }

  /** Sorts and removes duplicates; has() and size are valid from here on. */
  seal(): void {
    if (this.sealed) return;
    const k = this.keys.subarray(0, this.count).sort();
    let n = 0;
    for (let i = 0; i < k.length; i++) if (n === 0 || k[i] !== k[n - 1]) k[n++] = k[i]!;
    this.keys = this.keys.slice(0, n);
    this.count = n;
    this.sealed = true;
  }

  /** Distinct keys (after seal()). */
  get size(): number {
    if (!this.sealed) throw new Error('ChunkMarks: size before seal()');
    return this.count;
  }

  has(id: Buffer | string): boolean {
    if (!this.sealed) throw new Error('ChunkMarks: has() before seal()');
    const key = chunkMarkKey(id);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.keys[mid]!;
      if (v === key) return true;
      if (v < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}
