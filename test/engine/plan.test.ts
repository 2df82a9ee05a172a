import {describe, expect, it} from 'vitest';
import {planWork, type WorkItem} from '../../src/engine/plan.js';
import type {SourceExtent} from '../../src/platforms/types.js';

const C = 1024; // chunk size used in these tests

async function* from(extents: SourceExtent[]): AsyncGenerator<SourceExtent> {
  yield* extents;
}

async function plan(extents: SourceExtent[], size: number, extra: Partial<Parameters<typeof planWork>[1]> = {}) {
  const out: WorkItem[] = [];
  for await (const item of planWork(from(extents), {chunkSize: C, size, maxRun: 4 * C, ...extra})) out.push(item);
  return out;
}

describe('planWork', () => {
  it('reads data, records zeros and skips unchanged chunks', async () => {
    const items = await plan(
      [
        {offset: 0, length: 2 * C, kind: 'data'},
        {offset: 2 * C, length: 3 * C, kind: 'zero'},
        {offset: 5 * C, length: 2 * C, kind: 'unchanged'},
        {offset: 7 * C, length: C, kind: 'data'},
      ],
      8 * C,
    );
    expect(items).toEqual([
      {kind: 'read', offset: 0, length: 2 * C},
      {kind: 'zero', offset: 2 * C, length: 3 * C},
      {kind: 'read', offset: 7 * C, length: C},
    ]);
  });

  it('reads a whole chunk when a small dirty extent falls inside it (dirty bytes rounded up to chunks)', async () => {
    const items = await plan(
      [
        {offset: 0, length: C + 100, kind: 'unchanged'},
        {offset: C + 100, length: 64, kind: 'data'},
        {offset: C + 164, length: 3 * C - 164, kind: 'unchanged'},
      ],
      4 * C,
    );
    expect(items).toEqual([{kind: 'read', offset: C, length: C}]);
  });

  it('reads a chunk that mixes zero and unchanged: its new content is neither', async () => {
    const items = await plan(
      [
        {offset: 0, length: C / 2, kind: 'zero'},
        {offset: C / 2, length: C / 2, kind: 'unchanged'},
      ],
      C,
    );
    expect(items).toEqual([{kind: 'read', offset: 0, length: C}]);
  });

  it('splits long reads at maxRun and keeps the last partial chunk short', async () => {
    const size = 9 * C + 10;
    const items = await plan([{offset: 0, length: size, kind: 'data'}], size);
    expect(items).toEqual([
      {kind: 'read', offset: 0, length: 4 * C},
      {kind: 'read', offset: 4 * C, length: 4 * C},
      {kind: 'read', offset: 8 * C, length: C + 10},
    ]);
  });

  it('treats unchanged as data when there is no base, and inside mustRead ranges', async () => {
    const ext: SourceExtent[] = [{offset: 0, length: 4 * C, kind: 'unchanged'}];
    expect(await plan(ext, 4 * C, {noBase: true})).toEqual([{kind: 'read', offset: 0, length: 4 * C}]);
    expect(await plan(ext, 4 * C, {mustRead: [{offset: 2 * C, length: C}]})).toEqual([
      {kind: 'read', offset: 2 * C, length: C},
    ]);
  });

  it('refuses extents that leave a gap or stop short of the disk size', async () => {
    await expect(plan([{offset: 0, length: C, kind: 'data'}, {offset: 2 * C, length: C, kind: 'data'}], 3 * C)).rejects.toThrow(
      /not contiguous/,
    );
    await expect(plan([{offset: 0, length: C, kind: 'data'}], 3 * C)).rejects.toThrow(/before the disk size/);
  });
});
