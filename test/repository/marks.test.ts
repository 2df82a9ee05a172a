/**
 * GC's mark set (src/repository/marks.ts): ids by their first 8 bytes, from buffers or hex,
 * duplicates counted once, lookups exact on the prefix, and more entries than a JavaScript Set
 * holds (2^24), which is where GC failed before on a large repository.
 */
import {describe, expect, it} from 'vitest';
import {createHash} from 'node:crypto';
import {ChunkMarks} from '../../src/repository/marks.js';

const id = (n: number) => createHash('sha256').update(String(n)).digest();

describe('ChunkMarks', () => {
  it('finds what was added, from a buffer or its hex, and nothing else', () => {
    const m = new ChunkMarks();
    for (let i = 0; i < 5000; i++) m.add(i % 2 ? id(i) : id(i).toString('hex'));
    for (let i = 0; i < 100; i++) m.add(id(i)); // duplicates
    m.seal();
    expect(m.size).toBe(5000);
    for (let i = 0; i < 5000; i += 7) {
      expect(m.has(id(i))).toBe(true);
      expect(m.has(id(i).toString('hex'))).toBe(true);
    }
    for (let i = 5000; i < 6000; i++) expect(m.has(id(i))).toBe(false);
  });

  it('keys by the first 8 bytes: an id sharing them is kept (a collision never removes a needed chunk)', () => {
    const m = new ChunkMarks();
    const a = id(1);
    m.add(a);
    m.seal();
    const twin = Buffer.concat([a.subarray(0, 8), Buffer.alloc(24, 0xee)]);
    expect(m.has(twin)).toBe(true);
    const other = Buffer.from(a);
    other[7] ^= 1;
    expect(m.has(other)).toBe(false);
  });

  it('is empty-safe and refuses use out of order', () => {
    const m = new ChunkMarks();
    expect(() => m.has(id(1))).toThrow(/before seal/);
    m.seal();
    expect(m.size).toBe(0);
    expect(m.has(id(1))).toBe(false);
    expect(() => m.add(id(2))).toThrow(/after seal/);
  });

  it('holds more chunks than a JavaScript Set can (2^24 + 1000)', () => {
    const n = 2 ** 24 + 1000;
    // A Set of the old keys stops at 2^24: the limit this replaces.
    const m = new ChunkMarks();
    const b = Buffer.alloc(32);
    for (let i = 0; i < n; i++) {
      b.writeUInt32BE(i, 0);
      b.writeUInt32BE(0x9e3779b9, 4);
      m.add(b);
    }
    m.seal();
    expect(m.size).toBe(n);
    b.writeUInt32BE(n - 1, 0);
    expect(m.has(b)).toBe(true);
    b.writeUInt32BE(n, 0);
    expect(m.has(b)).toBe(false);
  }, 120_000);
});
