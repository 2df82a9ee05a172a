import {beforeEach, describe, expect, it} from 'vitest';
import {readdir} from 'node:fs/promises';
import {join} from 'node:path';
import type {Repository} from '../../src/repository/index.js';
import {backupImage, expectContent, pseudoRandom, putAll, readAll, textLike, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

function mixedImage(chunks: number, tail = 0): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    if (i % 3 === 0) parts.push(pseudoRandom(CS, i + 1));
    else if (i % 3 === 1) parts.push(textLike(CS, i + 1));
    else parts.push(Buffer.alloc(CS));
  }
  if (tail) parts.push(pseudoRandom(tail, 999));
  return Buffer.concat(parts);
}

describe('writing and reading restore points', () => {
  it('round-trips a disk with random, text and zero chunks and an unaligned tail', async () => {
    const image = mixedImage(9, 1000);
    const sum = await backupImage(repo, image);
    expect(sum.type).toBe('full');
    expect(sum.logicalSize).toBe(image.length);
    expect(sum.storedSize).toBeGreaterThan(0);
    await expectContent(repo, sum.id, 'vda', image);
    const list = await repo.listRestorePoints();
    expect(list.map((p) => p.id)).toEqual([sum.id]);
  });

  it('does not store zero chunks and marks them in the chunk map', async () => {
    const image = Buffer.alloc(4 * CS);
    pseudoRandom(CS, 5).copy(image, CS);
    const sum = await backupImage(repo, image);
    const r = await (await repo.openRestorePoint(sum.id)).openDisk('vda');
    const map = [];
    for await (const e of r.chunkMap()) map.push(e.zero);
    expect(map).toEqual([true, false, true, true]);
    const stats = await repo.stats();
    expect(stats.chunks).toBe(1);
    expect(stats.logicalBytes).toBe(4 * CS);
  });

  it('reads by random access at any offset and length', async () => {
    const image = mixedImage(6, 777);
    const sum = await backupImage(repo, image);
    const r = await (await repo.openRestorePoint(sum.id)).openDisk('vda');
    for (const [off, len] of [[0, 1], [CS - 3, 10], [CS * 2 + 5, CS * 3], [image.length - 777, 777], [image.length - 1, 1], [17, 0], [0, image.length]] as const) {
      expect((await r.read(off, len)).equals(image.subarray(off, off + len))).toBe(true);
    }
    await expect(r.read(image.length - 1, 2)).rejects.toThrow(/outside the disk/);
    // Into a reused, dirty buffer: zero chunks must come back as zeros.
    const into = Buffer.alloc(4 * CS, 0xee);
    const got = await r.read(CS + 1, 3 * CS, into);
    expect(got.equals(image.subarray(CS + 1, 4 * CS + 1))).toBe(true);
    expect(got.buffer).toBe(into.buffer);
    const partial = [];
    for await (const p of r.stream({start: CS + 100, end: CS * 4 + 7})) partial.push(p as Buffer);
    expect(Buffer.concat(partial).equals(image.subarray(CS + 100, CS * 4 + 7))).toBe(true);
  });

  it('deduplicates: a second identical backup stores nothing new', async () => {
    const image = mixedImage(6);
    const a = await backupImage(repo, image);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    await putAll(d, image, CS);
    const st = await d.finish();
    const b = await w.commit();
    expect(st.newChunks).toBe(0);
    expect(st.reusedChunks).toBe(4);
    expect(b.storedSize).toBe(0);
    expect(a.storedSize).toBeGreaterThan(0);
    const reader = await repo.openRestorePoint(b.id);
    expect(reader.manifest.stats.dataBytes).toBe(image.length);
    const rs = await repo.stats();
    expect(rs.restorePoints).toBe(2);
    expect(rs.dedupRatio).toBeCloseTo(2);
    expect(rs.compressionRatio).toBeGreaterThan(1);
    expect(rs.freeBytes).toBeGreaterThan(0);
  });

  it('an incremental keeps the base chunks and replaces the changed ones', async () => {
    const image = mixedImage(8);
    const full = await backupImage(repo, image);
    const changed = Buffer.from(image);
    pseudoRandom(CS, 4242).copy(changed, 5 * CS);
    changed.fill(0, 0, CS);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    expect(w.base?.id).toBe(full.id);
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    expect(d.hasBase).toBe(true);
    expect(await d.missingBaseRanges()).toEqual([]);
    await d.put(5 * CS, changed.subarray(5 * CS, 6 * CS));
    await d.zero(0, CS);
    const st = await d.finish();
    expect(st.baseBytes).toBe(6 * CS);
    expect(st.newChunks).toBe(1);
    const inc = await w.commit({checkpoint: {id: 'cp-2', data: {xml: '<x/>'}}});
    expect(inc.type).toBe('incremental');
    expect(inc.checkpoint).toEqual({id: 'cp-2', data: {xml: '<x/>'}});
    await expectContent(repo, inc.id, 'vda', changed);
    await expectContent(repo, full.id, 'vda', image);
  });

  it('a disk whose size changed is not taken from the base; a new disk without base reads as zeros where not written', async () => {
    const image = mixedImage(4);
    const full = await backupImage(repo, image);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', base: full.id});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length + CS});
    expect(d.hasBase).toBe(false);
    await d.put(0, image.subarray(0, CS));
    await d.finish();
    const inc = await w.commit();
    const expected = Buffer.alloc(image.length + CS);
    image.copy(expected, 0, 0, CS);
    await expectContent(repo, inc.id, 'vda', expected);
  });

  it('keeps VM names with spaces, quotes, ; and unicode only in the manifest', async () => {
    const name = `db "prod"; rm -rf / — Ωmega ' \u{1F600}`;
    const sum = await backupImage(repo, pseudoRandom(CS, 1), {vmId: '0b3c1e2a-7d4f-4c1b-9a55-3f2e1d0c9b8a', vmName: name});
    expect(sum.vmName).toBe(name);
    expect(sum.id).toMatch(/^[a-z0-9-]+$/);
    const dirs = await readdir(join(repo.path, 'points'));
    expect(dirs).toEqual([sum.id]);
    expect((await repo.openRestorePoint(sum.id)).manifest.vm).toEqual({id: '0b3c1e2a-7d4f-4c1b-9a55-3f2e1d0c9b8a', name});
  });

  it('refuses a VM id or disk key that readers would refuse (ids reach paths, URLs and commands)', async () => {
    await expect(backupImage(repo, pseudoRandom(CS, 1), {vmId: 'id with space/and slash'})).rejects.toThrow(/VM id "id with space\/and slash" is not a valid id/);
    await expect(backupImage(repo, pseudoRandom(CS, 1), {key: '../vda'})).rejects.toThrow(/Disk "..\/vda" .* cannot be stored/);
    expect(await readdir(join(repo.path, 'points'))).toEqual([]);
  });

  it('records configuration, disks details, session and stats in the manifest', async () => {
    const w = await repo.beginRestorePoint({
      vmId: 'u-1',
      vmName: 'app',
      platform: 'ovirt',
      sessionId: 'sess-9',
      configuration: {kind: 'ovf', text: '<ovf:Envelope/>'},
    });
    const d = await w.addDisk({key: 'disk-a', name: 'root disk', size: 2 * CS, format: 'qcow2', details: {domain: 'sd1'}});
    await d.put(0, textLike(2 * CS, 3));
    await d.finish();
    const sum = await w.commit({warnings: ['raw disk read in full'], protected: true});
    expect(sum.protected).toBe(true);
    expect(sum.sessionId).toBe('sess-9');
    const m = (await repo.openRestorePoint(sum.id)).manifest;
    expect(m.configuration).toEqual({kind: 'ovf', text: '<ovf:Envelope/>'});
    expect(m.disks[0]).toMatchObject({key: 'disk-a', name: 'root disk', size: 2 * CS, format: 'qcow2', details: {domain: 'sd1'}});
    expect(m.warnings).toEqual(['raw disk read in full']);
    expect(m.stats.compressionRatio).toBeGreaterThan(2);
    expect(m.stats.logical).toBe(2 * CS);
    expect(m.disks[0]!.indexSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts several chunks per put and concurrent puts of the same data', async () => {
    const block = pseudoRandom(CS, 77);
    const image = Buffer.concat([block, block, block, block, pseudoRandom(2 * CS, 78)]);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'x', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    await Promise.all([d.put(0, image.subarray(0, 2 * CS)), d.put(2 * CS, image.subarray(2 * CS, 4 * CS)), d.put(4 * CS, image.subarray(4 * CS))]);
    const st = await d.finish();
    expect(st.newChunks).toBe(3);
    const sum = await w.commit();
    await expectContent(repo, sum.id, 'vda', image);
  });

  it('rejects unaligned put and zero calls', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'x', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 3 * CS});
    await expect(d.put(100, Buffer.alloc(CS))).rejects.toThrow(/aligned/);
    await expect(d.put(0, Buffer.alloc(CS + 1))).rejects.toThrow(/aligned/);
    await expect(d.zero(2 * CS, 2 * CS)).rejects.toThrow(/aligned/);
    await w.abort();
    await w.abort();
    expect(await repo.listRestorePoints()).toEqual([]);
  });

  it('abort leaves no restore point, and abort after commit is a no-op', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'x', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: CS});
    await d.put(0, pseudoRandom(CS, 1));
    await w.abort();
    expect(await repo.listRestorePoints()).toEqual([]);
    expect(await readdir(join(repo.path, 'points'))).toEqual([]);
    const sum = await backupImage(repo, pseudoRandom(CS, 2));
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([sum.id]);
  });

  it('lists oldest first and filters by VM; unknown ids are not found', async () => {
    const a = await backupImage(repo, pseudoRandom(CS, 1), {vmId: 'a'});
    const b = await backupImage(repo, pseudoRandom(CS, 2), {vmId: 'b'});
    const c = await backupImage(repo, pseudoRandom(CS, 3), {vmId: 'a'});
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([a.id, b.id, c.id]);
    expect((await repo.listRestorePoints({vmId: 'a'})).map((p) => p.id)).toEqual([a.id, c.id]);
    await expect(repo.openRestorePoint('nope-1')).rejects.toMatchObject({exitCode: 16});
    await expect(repo.openRestorePoint('../../etc')).rejects.toMatchObject({exitCode: 16});
    await expect(repo.beginRestorePoint({vmId: 'b', vmName: 'x', platform: 'libvirt', base: a.id})).rejects.toThrow(/belongs to VM/);
  });

  it('reads a disk larger than memory-friendly sizes as a stream with bounded chunks', async () => {
    const image = mixedImage(40);
    const sum = await backupImage(repo, image);
    const r = await (await repo.openRestorePoint(sum.id)).openDisk('vda');
    const got = await readAll(r);
    expect(got.equals(image)).toBe(true);
  });

  it('a stream fails with the missing chunk named, and a stream stopped early leaves nothing unhandled', async () => {
    const image = mixedImage(12);
    const sum = await backupImage(repo, image);
    const {chunkId} = await import('../../src/repository/chunk-file.js');
    const {unlink} = await import('node:fs/promises');
    const hex = chunkId(image.subarray(9 * CS, 10 * CS)).toString('hex');
    await unlink(join(repo.path, 'chunks', hex.slice(0, 2), hex));
    const disk = await (await repo.openRestorePoint(sum.id)).openDisk('vda');
    await expect(readAll(disk)).rejects.toThrow(new RegExp(`Chunk ${hex} is missing`));
    // Stop after the first chunk while read-ahead (including the missing chunk) is in flight.
    const st = disk.stream({start: 6 * CS});
    for await (const part of st) {
      expect((part as Buffer).length).toBe(CS);
      break;
    }
    expect(st.destroyed).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
  });

  it('adds several disks at once (concurrent addDisk) and keeps each one apart', async () => {
    const a = mixedImage(3);
    const b = pseudoRandom(2 * CS + 5, 31);
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'two disks', platform: 'ovirt'});
    const [da, db] = await Promise.all([w.addDisk({key: 'disk-a', name: 'a', size: a.length}), w.addDisk({key: 'disk-b', name: 'b', size: b.length})]);
    await expect(w.addDisk({key: 'disk-a', name: 'again', size: 1})).rejects.toThrow(/already added/);
    await Promise.all([putAll(da, a, CS), putAll(db, b, CS)]);
    const sum = await w.commit();
    expect(sum.disks.map((d) => d.key).sort()).toEqual(['disk-a', 'disk-b']);
    await expectContent(repo, sum.id, 'disk-a', a);
    await expectContent(repo, sum.id, 'disk-b', b);
  });
});

