/**
 * Bad input and faults: damaged files and a full disk give clear errors that name the file, and
 * never change or lose a committed restore point.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {chunkId} from '../../src/repository/chunk-file.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {backupImage, expectContent, pseudoRandom, putAll, textLike, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

describe('damaged files', () => {
  it('a truncated index: opening the disk fails with corrupt naming the file; GC sweeps nothing and says why; nothing else changes', async () => {
    const image = pseudoRandom(3 * CS, 1);
    const a = await backupImage(repo, image);
    const other = await backupImage(repo, pseudoRandom(CS, 2), {vmId: 'vm-2'});
    const idx = join(repo.path, 'points', a.id, 'disk-0.idx');
    const full = await readFile(idx);
    await writeFile(idx, full.subarray(0, 70));
    const err = (await (await repo.openRestorePoint(a.id)).openDisk('vda').catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toContain(idx);
    expect(err.message).toMatch(/truncated/);
    // GC does not fail on it: it keeps every chunk (their owner cannot be known) and says why.
    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(0);
    expect(gc.sweepSkipped).toContain(a.id);
    expect(gc.damaged.map((d) => d.detail).join(' ')).toContain(idx);
    await expectContent(repo, other.id, 'vda', pseudoRandom(CS, 2));
    // Putting the index back makes it whole: GC removed nothing.
    await writeFile(idx, full);
    await expectContent(repo, a.id, 'vda', image);
  });

  it('an index whose bytes differ from the manifest checksum is corrupt', async () => {
    const a = await backupImage(repo, pseudoRandom(2 * CS, 1));
    const idx = join(repo.path, 'points', a.id, 'disk-0.idx');
    const buf = await readFile(idx);
    buf[buf.length - 1]! ^= 1;
    await writeFile(idx, buf);
    await expect((await repo.openRestorePoint(a.id)).openDisk('vda')).rejects.toMatchObject({exitCode: ExitCode.corrupt, message: expect.stringContaining(idx)});
  });

  it('a chunk with a bad checksum: read fails with corrupt naming the chunk file and the restore point', async () => {
    const data = textLike(CS, 7);
    const a = await backupImage(repo, data);
    const hex = chunkId(data).toString('hex');
    const file = join(repo.path, 'chunks', hex.slice(0, 2), hex);
    const buf = await readFile(file);
    buf[buf.length - 1]! ^= 0x55;
    await writeFile(file, buf);
    const err = (await (await (await repo.openRestorePoint(a.id)).openDisk('vda')).read(0, 10).catch((e: unknown) => e)) as UserError;
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toContain(file);
    expect(err.message).toContain(a.id);
    expect(err.message).toMatch(/checksum/);
  });

  it('a damaged manifest hides only its own restore point', async () => {
    const a = await backupImage(repo, pseudoRandom(CS, 1));
    const b = await backupImage(repo, pseudoRandom(CS, 2));
    await writeFile(join(repo.path, 'points', a.id, 'manifest.json'), '{"format": "vmbackup-restore-point", "vers');
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([b.id]);
    await expect(repo.openRestorePoint(a.id)).rejects.toMatchObject({exitCode: ExitCode.corrupt});
    // GC keeps going: the damaged point's chunks are kept (from its index), the point is named.
    const gc = await repo.gc();
    expect(gc.damaged.map((d) => d.restorePoint)).toEqual([a.id]);
  });
});

describe('a full disk', () => {
  let mnt: string;
  let mounted = false;
  beforeEach(async () => {
    mnt = join(t.dir, 'small fs');
    await mkdir(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    mounted = true;
  });
  afterEach(async () => {
    if (mounted) await execa('umount', [mnt]);
    mounted = false;
  });

  it('ENOSPC while writing chunks: UserError noSpace naming the file; committed restore points unchanged', async () => {
    const small = await createRepository(join(mnt, 'repo'), {chunkSize: CS});
    const image = pseudoRandom(2 * 1024 * 1024, 1);
    const a = await backupImage(small, image);
    const w = await small.beginRestorePoint({vmId: 'vm-2', vmName: 'big', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 16 * 1024 * 1024});
    const err = (await putAll(d, pseudoRandom(16 * 1024 * 1024, 2), CS).catch((e: unknown) => e)) as UserError;
    await w.abort();
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.noSpace);
    expect(err.message).toContain(join(mnt, 'repo', 'chunks'));
    expect(err.hint).toMatch(/prune/);
    const again = await openRepository(small.path);
    expect((await again.listRestorePoints()).map((p) => p.id)).toEqual([a.id]);
    await expectContent(again, a.id, 'vda', image);
    expect((await again.verify()).ok).toBe(true);
    // Space comes back with GC (the aborted writer's chunks are garbage).
    await new Promise((r) => setTimeout(r, 1100));
    const gc = await again.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBeGreaterThan(0);
    await backupImage(again, pseudoRandom(CS, 3), {vmId: 'vm-3'});
  });

  it('ENOSPC while writing the index of a fully deduplicated backup, or a lock file: same guarantees', async () => {
    const small = await createRepository(join(mnt, 'repo'), {chunkSize: CS});
    const image = pseudoRandom(1024 * 1024, 1);
    const a = await backupImage(small, image);
    const w = await small.beginRestorePoint({vmId: 'vm-1', vmName: 'web', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    await putAll(d, image, CS); // every chunk exists: nothing written yet
    // Fill the file system to the last byte.
    const filler = join(mnt, 'filler');
    await execa('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], {reject: false});
    const err = (await d.finish().catch((e: unknown) => e)) as UserError;
    await w.abort();
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.noSpace);
    expect(err.message).toContain(join(small.path, 'points'));
    expect(err.message).toMatch(/disk-0\.idx/);
    const lockErr = (await backupImage(small, image, {vmId: 'vm-9'}).catch((e: unknown) => e)) as UserError;
    expect(lockErr.exitCode).toBe(ExitCode.noSpace);
    expect(lockErr.message).toContain(small.path);
    await rm(filler);
    expect((await small.listRestorePoints()).map((p) => p.id)).toEqual([a.id]);
    await expectContent(small, a.id, 'vda', image);
    expect((await small.verify()).ok).toBe(true);
    const b = await backupImage(small, image);
    expect((await small.listRestorePoints()).map((p) => p.id)).toEqual([a.id, b.id]);
  });
});
