/**
 * kill -9 of a writer at several points of a restore point's write: afterwards the repository
 * opens, lists only committed restore points, verifies, and GC reclaims the leftovers.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readdir} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {backupImage, chunkFiles, killWriterAt, pseudoRandom, scratch} from './helpers.js';

const CS = 64 * 1024;
let s: Awaited<ReturnType<typeof scratch>>;
let repo: Repository;
let committedId: string;

beforeAll(async () => {
  s = await scratch();
  repo = await createRepository(join(s.dir, 'repo with space'), {chunkSize: CS});
  committedId = (await backupImage(repo, pseudoRandom(4 * CS, 5), {vmId: 'crash-vm', vmName: 'crash vm'})).id;
});
afterAll(async () => s.cleanup());

/** The fixture writer killed with SIGKILL once it reports `stage`. */
function killAt(stage: string, seed: number): Promise<string[]> {
  return killWriterAt(repo.path, stage, seed);
}

describe('a writer killed with SIGKILL', () => {
  const stages = ['begun', 'mid-put', 'finished', 'manifest-temp'];
  for (const [n, stage] of stages.entries()) {
    it(`at "${stage}" leaves only committed restore points, and the next backup of the VM is not blocked`, async () => {
      await killAt(stage, n + 1);
      const again = await openRepository(repo.path);
      expect((await again.listRestorePoints()).map((p) => p.id)).toEqual([committedId]);
      expect((await again.verify()).ok).toBe(true);
      // The dead writer's VM lock is stale: a new backup of the same VM starts at once.
      const w = await again.beginRestorePoint({vmId: 'crash-vm', vmName: 'crash vm', platform: 'libvirt', lockTimeoutMs: 0});
      await w.abort();
    });
  }

  it('after "committed" the restore point is complete', async () => {
    const lines = await killAt('committed', 9);
    const id = lines.find((l) => l.startsWith('id:'))!.slice(3);
    const list = (await repo.listRestorePoints()).map((p) => p.id);
    expect(list).toEqual([committedId, id]);
    const disk = await (await repo.openRestorePoint(id)).openDisk('vda');
    expect((await disk.read(5 * CS, CS)).equals(pseudoRandom(CS, 9 * 1000 + 5))).toBe(true);
    expect((await repo.verify()).ok).toBe(true);
  });

  it('GC then removes the partial restore points, registrations, temp files and orphan chunks', async () => {
    const before = await readdir(join(repo.path, 'points'));
    // A writer killed before its first index leaves no directory (the backend makes one with its first file).
    const partial = before.length - (await repo.listRestorePoints()).length;
    expect(partial).toBeGreaterThan(0);
    expect((await readdir(join(repo.path, 'writers'))).length).toBeGreaterThan(0);
    const chunksBefore = (await chunkFiles(repo.path)).length;
    await sleep(1100); // GC never takes chunks younger than its 1 s clock slack
    const res = await repo.gc({safetyMarginMs: 0});
    expect(res.removedPartialRestorePoints.length).toBe(partial);
    expect(res.removedChunks).toBeGreaterThan(0);
    const after = await readdir(join(repo.path, 'points'));
    expect(after.sort()).toEqual((await repo.listRestorePoints()).map((p) => p.id).sort());
    expect(await readdir(join(repo.path, 'writers'))).toEqual([]);
    const files = await chunkFiles(repo.path);
    expect(files.every((f) => /^[0-9a-f]{64}$/.test(f))).toBe(true);
    expect(files.length).toBe(4 + 24);
    expect(chunksBefore).toBeGreaterThan(files.length);
    expect((await repo.verify()).ok).toBe(true);
  });
});
