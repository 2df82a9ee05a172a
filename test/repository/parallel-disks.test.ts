/**
 * Regression: the engine adds the disks of one restore point from parallel tasks. Each disk must
 * get its own index file, in a full and in an incremental (where addDisk awaits the base index).
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, expect, it} from 'vitest';
import {createRepository} from '../../src/repository/index.js';

const CS = 64 * 1024;
let dir: string;
afterAll(async () => dir && rm(dir, {recursive: true, force: true}));

it('disks added concurrently keep separate indexes, in a full and in an incremental', async () => {
  dir = await mkdtemp(join(tmpdir(), 'parallel-disks-'));
  const repo = await createRepository(dir, {chunkSize: CS});
  const keys = ['vda', 'vdb', 'vdc'];
  const point = async (base: string | undefined, gen: number) => {
    const w = await repo.beginRestorePoint({vmId: 'vm', vmName: 'vm', platform: 'test', base});
    await Promise.all(
      keys.map(async (key, i) => {
        const d = await w.addDisk({key, name: key, size: 4 * CS});
        await d.put(i * CS, Buffer.alloc(CS, 16 * gen + i + 1));
        await d.finish();
      }),
    );
    return w.commit();
  };
  const p1 = await point(undefined, 1);
  const p2 = await point(p1.id, 2);
  for (const [p, gen] of [[p1, 1], [p2, 2]] as const) {
    const r = await repo.openRestorePoint(p.id);
    for (const [i, key] of keys.entries()) {
      const disk = await r.openDisk(key);
      expect((await disk.read(i * CS, 1))[0], `${p.id} ${key}`).toBe(16 * gen + i + 1);
    }
  }
  expect((await repo.verify()).ok).toBe(true);
});
