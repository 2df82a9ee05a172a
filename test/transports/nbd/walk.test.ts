import {describe, expect, it} from 'vitest';
import {walkExtents, type BlockStatusEntry, type BlockStatusSource} from '../../../src/transports/nbd/index.js';
import type {SourceExtent} from '../../../src/platforms/types.js';

/** An in-memory block-status map standing in for an export (walkExtents is pure over it). */
function source(size: number, maps: Record<string, BlockStatusEntry[]>): BlockStatusSource & {calls: string[]} {
  const calls: string[] = [];
  return {
    size,
    calls,
    metaContexts: new Map(Object.keys(maps).map((k, i) => [k, i])),
    async blockStatus(offset, length, context) {
      calls.push(`${context}@${offset}+${length}`);
      const end = offset + length;
      return maps[context]!.filter((e) => e.offset < end && e.offset + e.length > offset).map((e) => {
        const s = Math.max(e.offset, offset);
        return {offset: s, length: Math.min(e.offset + e.length, end) - s, flags: e.flags};
      });
    },
  };
}

async function collect(it: AsyncIterable<SourceExtent>): Promise<SourceExtent[]> {
  const out: SourceExtent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('walkExtents', () => {
  const alloc = [
    {offset: 0, length: 10, flags: 0},
    {offset: 10, length: 25, flags: 3},
    {offset: 35, length: 5, flags: 0},
  ];
  it('walks base:allocation window by window and merges across window borders', async () => {
    const src = source(40, {'base:allocation': alloc});
    expect(await collect(walkExtents(src, {windowBytes: 8}))).toEqual([
      {offset: 0, length: 10, kind: 'data'},
      {offset: 10, length: 25, kind: 'zero'},
      {offset: 35, length: 5, kind: 'data'},
    ]);
    expect(src.calls).toEqual(['base:allocation@0+8', 'base:allocation@8+8', 'base:allocation@16+8', 'base:allocation@24+8', 'base:allocation@32+8']);
  });

  it('combines dirty with allocation, and skips the allocation query for clean windows', async () => {
    const dirty = [
      {offset: 0, length: 20, flags: 0},
      {offset: 20, length: 20, flags: 1},
    ];
    const src = source(40, {'base:allocation': alloc, 'qemu:dirty-bitmap:b': dirty});
    expect(await collect(walkExtents(src, {dirtyContext: 'qemu:dirty-bitmap:b', windowBytes: 20}))).toEqual([
      {offset: 0, length: 20, kind: 'unchanged'},
      {offset: 20, length: 15, kind: 'zero'},
      {offset: 35, length: 5, kind: 'data'},
    ]);
    expect(src.calls).toEqual(['qemu:dirty-bitmap:b@0+20', 'qemu:dirty-bitmap:b@20+20', 'base:allocation@20+20']);
  });

  it('without allocation everything dirty (or everything, for a full) is data', async () => {
    const src = source(40, {'qemu:dirty-bitmap:b': [{offset: 0, length: 40, flags: 1}]});
    expect(await collect(walkExtents(src, {dirtyContext: 'qemu:dirty-bitmap:b'}))).toEqual([{offset: 0, length: 40, kind: 'data'}]);
    expect(await collect(walkExtents(source(40, {}), {windowBytes: 16}))).toEqual([{offset: 0, length: 40, kind: 'data'}]);
    await expect(collect(walkExtents(source(40, {}), {dirtyContext: 'qemu:dirty-bitmap:x'}))).rejects.toThrow(/not negotiated/);
  });
});
