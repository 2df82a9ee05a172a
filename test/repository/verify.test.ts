import {beforeEach, describe, expect, it} from 'vitest';
import {readFile, unlink, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import type {Repository} from '../../src/repository/index.js';
import {chunkId} from '../../src/repository/chunk-file.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {ageChunks, backupImage, chunkFiles, expectContent, pseudoRandom, putAll, readAll, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

const chunkPathOf = (data: Buffer) => {
  const hex = chunkId(data).toString('hex');
  return {hex, path: join(repo.path, 'chunks', hex.slice(0, 2), hex)};
};

describe('verify', () => {
  const victim = pseudoRandom(CS, 42);
  const image = Buffer.concat([pseudoRandom(CS, 1), victim, Buffer.alloc(CS), pseudoRandom(CS, 3)]);

  it('passes on a healthy repository', async () => {
    await backupImage(repo, image);
    const r = await repo.verify();
    expect(r.ok).toBe(true);
    expect(r.checkedChunks).toBe(3);
    expect(r.checkedBytes).toBe(3 * CS);
  });

  it('reports a damaged chunk with every restore point and disk that uses it, and quarantines it', async () => {
    const a = await backupImage(repo, image, {vmName: 'first'});
    const b = await backupImage(repo, image, {vmName: 'second', vmId: 'vm-2', key: 'sda'});
    const other = await backupImage(repo, pseudoRandom(CS, 9), {vmId: 'vm-3'});
    const {hex, path} = chunkPathOf(victim);
    const file = await readFile(path);
    file[file.length - 5]! ^= 0xff;
    await writeFile(path, file);
    // Reading it fails with a clear error before verify.
    const err = (await readAll(await (await repo.openRestorePoint(a.id)).openDisk('vda')).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toContain(hex);
    expect(err.message).toContain(a.id);

    const r = await repo.verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    const p = r.problems[0]!;
    expect(p).toMatchObject({chunk: hex, problem: 'damaged'});
    expect(p.detail).toMatch(/checksum/);
    expect(p.quarantinedTo).toBe(`${path}.bad`);
    expect(p.references.map((x) => [x.restorePoint, x.vmName, x.disk, x.offsets])).toEqual(
      expect.arrayContaining([
        [a.id, 'first', 'vda', [CS]],
        [b.id, 'second', 'sda', [CS]],
      ]),
    );
    expect(r.restorePoints.find((x) => x.id === other.id)!.ok).toBe(true);
    expect(r.restorePoints.find((x) => x.id === a.id)!.ok).toBe(false);
    expect(await chunkFiles(repo.path)).toContain(`${hex}.bad`);

    // A later backup of the same data writes the chunk again, healing the old restore points too.
    const c = await backupImage(repo, image);
    expect((await repo.openRestorePoint(c.id)).manifest.stats.newChunks).toBe(1);
    expect((await repo.verify()).ok).toBe(true);
    await expectContent(repo, a.id, 'vda', image);
  });

  it('reports a missing chunk; a read names the chunk and the restore point', async () => {
    const a = await backupImage(repo, image);
    const {hex, path} = chunkPathOf(victim);
    await unlink(path);
    const r = await repo.verify({restorePoints: [a.id]});
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{chunk: hex, problem: 'missing', detail: expect.stringContaining(path), references: [{restorePoint: a.id, vmName: 'web 01', disk: 'vda', offsets: [CS]}]}]);
    const disk = await (await repo.openRestorePoint(a.id)).openDisk('vda');
    await expect(disk.read(CS + 10, 10)).rejects.toThrow(new RegExp(`Chunk ${hex} is missing.*${a.id}`));
    // Zero and intact chunks still read.
    expect((await disk.read(0, CS)).equals(image.subarray(0, CS))).toBe(true);
  });

  it('heals through an incremental: the writer reports the base ranges to read again', async () => {
    const full = await backupImage(repo, image);
    const {path} = chunkPathOf(victim);
    const file = await readFile(path);
    file[20]! ^= 1;
    await writeFile(path, file);
    expect((await repo.verify()).ok).toBe(false);

    // An incremental that does not re-read the range is refused rather than committed broken.
    const bad = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    const bd = await bad.addDisk({key: 'vda', name: 'disk', size: image.length});
    expect(await bd.missingBaseRanges()).toEqual([{offset: CS, length: CS}]);
    await expect(bd.finish()).rejects.toMatchObject({exitCode: ExitCode.corrupt});
    await bad.abort();

    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    for (const r of await d.missingBaseRanges()) await d.put(r.offset, image.subarray(r.offset, r.offset + r.length));
    const st = await d.finish();
    expect(st.newChunks).toBe(1);
    const inc = await w.commit();
    await expectContent(repo, inc.id, 'vda', image);
    expect((await repo.verify()).ok).toBe(true);
  });

  it('reports damaged index files', async () => {
    const a = await backupImage(repo, image);
    const idx = join(repo.path, 'points', a.id, 'disk-0.idx');
    const buf = await readFile(idx);
    await writeFile(idx, buf.subarray(0, buf.length - 7));
    const r = await repo.verify();
    expect(r.ok).toBe(false);
    expect(r.indexProblems).toEqual([{restorePoint: a.id, disk: 'vda', file: idx, detail: expect.stringMatching(/truncated/)}]);
  });

  it('multi-chunk puts work with an incremental image written in one call', async () => {
    const full = await backupImage(repo, image);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    await putAll(d, image, 2 * CS);
    const st = await d.finish();
    expect(st.reusedChunks).toBe(3);
    await w.commit();
  });

  it('an incremental survives its base being pruned and collected mid-backup', async () => {
    const full = await backupImage(repo, image);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    await repo.prune({keepWithinDays: 1e-9});
    await ageChunks(repo.path, 3_600_000);
    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(3);
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    expect(d.hasBase).toBe(true);
    const missing = await d.missingBaseRanges();
    expect(missing).toEqual([{offset: 0, length: 2 * CS}, {offset: 3 * CS, length: CS}]);
    for (const r of missing) await d.put(r.offset, image.subarray(r.offset, r.offset + r.length));
    await d.finish();
    const inc = await w.commit();
    await expectContent(repo, inc.id, 'vda', image);
    expect((await repo.verify()).ok).toBe(true);
  });

  it('a base whose index is damaged: that disk is read in full, with a warning', async () => {
    const full = await backupImage(repo, image);
    await writeFile(join(repo.path, 'points', full.id, 'disk-0.idx'), 'garbage');
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    expect(d.hasBase).toBe(false);
    expect(w.warnings[0]).toMatch(/could not be read.*read in full/);
    await putAll(d, image, CS);
    await d.finish();
    const inc = await w.commit({warnings: ['from the engine']});
    const m = (await repo.openRestorePoint(inc.id)).manifest;
    expect(m.warnings).toEqual(['from the engine', w.warnings[0]]);
    await expectContent(repo, inc.id, 'vda', image);
  });
});
