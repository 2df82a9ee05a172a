import {describe, expect, it} from 'vitest';
import {allocationToExtents, dirtyToExtents, mergeExtents} from '../../../src/transports/nbd/index.js';

describe('allocationToExtents', () => {
  it('maps ZERO to zero, HOLE-without-ZERO and 0 to data, and merges neighbours', () => {
    const entries = [
      {length: 100, flags: 0}, // allocated data
      {length: 50, flags: 1}, // hole, not known zero: undefined content → must be read
      {length: 30, flags: 3}, // hole + zero
      {length: 20, flags: 2}, // allocated, reads as zero
      {length: 10, flags: 0},
    ];
    expect(allocationToExtents(entries, {offset: 1000})).toEqual([
      {offset: 1000, length: 150, kind: 'data'},
      {offset: 1150, length: 50, kind: 'zero'},
      {offset: 1200, length: 10, kind: 'data'},
    ]);
  });

  it('uses the entries\' own offsets when they have them, and ignores empty entries', () => {
    expect(
      allocationToExtents(
        [
          {offset: 0, length: 0, flags: 0},
          {offset: 0, length: 4096, flags: 3},
          {offset: 4096, length: 4096, flags: 2},
        ],
        {offset: 0},
      ),
    ).toEqual([{offset: 0, length: 8192, kind: 'zero'}]);
    expect(allocationToExtents([], {offset: 0})).toEqual([]);
  });
});

describe('dirtyToExtents', () => {
  it('clean → unchanged; dirty ∩ zero → zero; dirty ∩ data → data, split where allocation changes', () => {
    const dirty = [
      {offset: 0, length: 100, flags: 0},
      {offset: 100, length: 200, flags: 1},
      {offset: 300, length: 100, flags: 0},
      {offset: 400, length: 100, flags: 1},
    ];
    const alloc = [
      {offset: 0, length: 150, flags: 0},
      {offset: 150, length: 100, flags: 3},
      {offset: 250, length: 250, flags: 1},
    ];
    expect(dirtyToExtents(dirty, alloc)).toEqual([
      {offset: 0, length: 100, kind: 'unchanged'},
      {offset: 100, length: 50, kind: 'data'},
      {offset: 150, length: 100, kind: 'zero'},
      {offset: 250, length: 50, kind: 'data'},
      {offset: 300, length: 100, kind: 'unchanged'},
      {offset: 400, length: 100, kind: 'data'},
    ]);
  });

  it('treats dirty ranges without allocation information as data (reading too much is safe)', () => {
    expect(dirtyToExtents([{offset: 0, length: 100, flags: 1}], [{offset: 40, length: 20, flags: 2}])).toEqual([
      {offset: 0, length: 40, kind: 'data'},
      {offset: 40, length: 20, kind: 'zero'},
      {offset: 60, length: 40, kind: 'data'},
    ]);
    expect(dirtyToExtents([{offset: 0, length: 100, flags: 1}], [])).toEqual([{offset: 0, length: 100, kind: 'data'}]);
  });

  it('merges adjacent unchanged and dirty runs and keeps covering the whole range', () => {
    const dirty = [
      {offset: 0, length: 10, flags: 0},
      {offset: 10, length: 10, flags: 0},
      {offset: 20, length: 10, flags: 1},
      {offset: 30, length: 10, flags: 1},
    ];
    const out = dirtyToExtents(dirty, [{offset: 0, length: 40, flags: 0}]);
    expect(out).toEqual([
      {offset: 0, length: 20, kind: 'unchanged'},
      {offset: 20, length: 20, kind: 'data'},
    ]);
  });
});

describe('mergeExtents', () => {
  it('merges only adjacent extents of the same kind and does not mutate its input', () => {
    const input = [
      {offset: 0, length: 10, kind: 'data' as const},
      {offset: 10, length: 10, kind: 'data' as const},
      {offset: 20, length: 10, kind: 'zero' as const},
      {offset: 40, length: 10, kind: 'zero' as const}, // not adjacent
    ];
    expect(mergeExtents(input)).toEqual([
      {offset: 0, length: 20, kind: 'data'},
      {offset: 20, length: 10, kind: 'zero'},
      {offset: 40, length: 10, kind: 'zero'},
    ]);
    expect(input[0]!.length).toBe(10);
  });
});
