/**
 * A damaged restore point never blocks the repository: verify names it, GC keeps its chunks (from
 * its intact index files) and frees everything else, and `repo forget` removes it, after which
 * GC frees its chunks too. A damaged index is the same path: GC skips the sweep and says why,
 * forget removes the point.
 */
import {readdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {beforeEach, describe, expect, it} from 'vitest';
import type {Repository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';
import {ageChunks, backupImage, chunkFiles, pseudoRandom, readAll, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

describe('damaged restore points', () => {
  it('GC keeps a damaged point\'s chunks and frees the rest; forget removes it; GC then frees its chunks', async () => {
    const a = await backupImage(repo, pseudoRandom(2 * CS, 1), {vmId: 'vm-a', vmName: 'a'});
    const b = await backupImage(repo, pseudoRandom(2 * CS, 2), {vmId: 'vm-b', vmName: 'b'});
    const gone = await backupImage(repo, pseudoRandom(2 * CS, 3), {vmId: 'vm-c', vmName: 'c'});
    await repo.forget(gone.id);
    await writeFile(join(repo.path, 'points', a.id, 'manifest.json'), '{"format": "vmbackup-restore-point", "trunc');
    await ageChunks(repo.path, 3_600_000);

    const v = await repo.verify();
    expect(v.ok).toBe(false);
    expect(v.manifestProblems.map((p) => p.restorePoint)).toEqual([a.id]);

    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.damaged.map((d) => d.restorePoint)).toEqual([a.id]);
    expect(gc.sweepSkipped).toBeUndefined();
    expect(gc.removedChunks).toBe(2); // c's chunks; a's are kept
    expect(await chunkFiles(repo.path)).toHaveLength(4);
    expect(await readAll(await (await repo.openRestorePoint(b.id)).openDisk('vda'))).toEqual(pseudoRandom(2 * CS, 2));

    const cli = await vmbackup(['repo', 'forget', repo.path, a.id]);
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('its manifest was damaged');
    expect(await readdir(join(repo.path, 'points'))).toEqual([b.id]);
    await ageChunks(repo.path, 3_600_000);
    expect((await repo.gc({safetyMarginMs: 0})).removedChunks).toBe(2);
    expect((await repo.verify()).ok).toBe(true);
  });

  it('a damaged index: GC frees nothing and says which point to forget; after forget it frees again', async () => {
    const a = await backupImage(repo, pseudoRandom(2 * CS, 4), {vmId: 'vm-a', vmName: 'a'});
    const c = await backupImage(repo, pseudoRandom(2 * CS, 5), {vmId: 'vm-c', vmName: 'c'});
    await repo.forget(c.id);
    const idx = join(repo.path, 'points', a.id, 'disk-0.idx');
    const raw = await readFile(idx);
    raw[raw.length - 1]! ^= 0xff;
    await writeFile(idx, raw);
    await ageChunks(repo.path, 3_600_000);
    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(0);
    expect(gc.sweepSkipped).toContain(`repo forget ${repo.path} ${a.id}`);
    const cli = await vmbackup(['repo', 'gc', repo.path]);
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout).toContain('no chunk was removed');
    await repo.forget(a.id);
    await ageChunks(repo.path, 3_600_000);
    expect((await repo.gc({safetyMarginMs: 0})).removedChunks).toBe(4);
  });

  it('forget refuses a protected point unless forced, and an id that is not a restore point', async () => {
    const p = await backupImage(repo, pseudoRandom(CS, 6), {protected: true});
    await expect(repo.forget(p.id)).rejects.toThrow(/is protected/);
    const cli = await vmbackup(['repo', 'forget', repo.path, '../../etc']);
    expect(cli.exitCode).toBe(ExitCode.notFound);
    expect((await repo.forget(p.id, {force: true})).id).toBe(p.id);
    expect(await repo.listRestorePoints()).toEqual([]);
  });
});
