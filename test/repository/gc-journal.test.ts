/**
 * GC after a failed or killed backup frees the chunks that backup stored as soon as the writer
 * is known dead, without the safety margin's wait (the writer's journal names them), and keeps
 * those a committed restore point or a live writer uses.
 */
import {readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {beforeEach, describe, expect, it} from 'vitest';
import type {Repository} from '../../src/repository/index.js';
import {ageChunks, backupImage, chunkFiles, pseudoRandom, putAll, readAll, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

describe('GC and the chunks of failed backups', () => {
  it('an aborted backup: its new chunks go at the next GC (default margin), shared ones stay', async () => {
    const kept = await backupImage(repo, pseudoRandom(2 * CS, 1));
    const w = await repo.beginRestorePoint({vmId: 'vm-2', vmName: 'failed', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 4 * CS});
    // Two chunks shared with the committed point, two new ones.
    await putAll(d, Buffer.concat([pseudoRandom(2 * CS, 1), pseudoRandom(2 * CS, 2)]), CS);
    expect(await chunkFiles(repo.path)).toHaveLength(4);
    await w.abort();
    expect((await readdir(join(repo.path, 'writers'))).filter((f) => f.endsWith('.chunks'))).toHaveLength(1);

    await ageChunks(repo.path, 5_000); // written seconds ago, far inside the 5-minute margin
    const gc = await repo.gc(); // the default margin
    expect(gc.removedChunks).toBe(2);
    expect(await chunkFiles(repo.path)).toHaveLength(2);
    expect(await readdir(join(repo.path, 'writers'))).toEqual([]);
    expect(await readAll(await (await repo.openRestorePoint(kept.id)).openDisk('vda'))).toEqual(pseudoRandom(2 * CS, 1));
  });

  it('a killed backup (its registration names a dead process): the same, once GC sees it dead', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-3', vmName: 'killed', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * CS});
    await putAll(d, pseudoRandom(2 * CS, 3), CS);
    // As kill -9 leaves it: the registration stays, with the pid of a process that is gone.
    const reg = (await readdir(join(repo.path, 'writers'))).find((f) => f.endsWith('.json'))!;
    await writeFile(join(repo.path, 'writers', reg), JSON.stringify({pid: 2 ** 22 - 3, pidStart: '1', host: (await import('node:os')).hostname(), since: Date.now(), purpose: 'backup'}));
    await ageChunks(repo.path, 5_000);
    const gc = await repo.gc();
    expect(gc.removedChunks).toBe(2);
    expect(await chunkFiles(repo.path)).toEqual([]);
  });

  it('a live writer: its chunks are never taken, journal or not', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-4', vmName: 'live', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * CS});
    await putAll(d, pseudoRandom(2 * CS, 4), CS);
    await ageChunks(repo.path, 5_000);
    const gc = await repo.gc();
    expect(gc.removedChunks).toBe(0);
    await d.finish();
    const p = await w.commit();
    expect(await readAll(await (await repo.openRestorePoint(p.id)).openDisk('vda'))).toEqual(pseudoRandom(2 * CS, 4));
    // A committed writer leaves no journal.
    expect(await readdir(join(repo.path, 'writers'))).toEqual([]);
  });
});
