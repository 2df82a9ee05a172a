/**
 * Format v1 stays readable: test/fixtures/repo-v1 was written by format version 1
 * (test/fixtures/make-repo-v1.ts) and is committed. Never regenerate it for a new format:
 * add a repo-v2 beside it and keep this test.
 */
import {afterAll, describe, expect, it} from 'vitest';
import {cp, readFile, readdir} from 'node:fs/promises';
import {createHash} from 'node:crypto';
import {crc32} from 'node:zlib';
import {uncompressSync} from 'lz4-napi';
import {join} from 'node:path';
import {openRepository} from '../../src/repository/index.js';
import {readAll, scratch} from './helpers.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'repo-v1');
const FULL = 'golden-vm-test-20261123t194306z-d3bc8b';
const INC = 'golden-vm-test-20261123t194306z-bd2aa4';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the golden v1 repository', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('opens, lists and reads its known content', async () => {
    const repo = await openRepository(FIXTURE);
    expect(repo.formatVersion).toBe(1);
    expect(repo.chunkSize).toBe(65536);
    expect(repo.id).toBe('dbd521f4-dca4-4d54-8dce-130198a1e207');
    const list = await repo.listRestorePoints();
    expect(list.map((p) => [p.id, p.type, p.protected, p.vmName])).toEqual([
      [FULL, 'full', false, 'golden vm "α"; test'],
      [INC, 'incremental', true, 'golden vm "α"; test'],
    ]);
    expect(list[0]!.checkpoint).toEqual({id: 'vmbackup-1', data: {xml: '<domaincheckpoint/>'}});
    expect(list[0]!.disks).toEqual([{key: 'vda', name: 'golden.qcow2', size: 206608}]);
    const full = await repo.openRestorePoint(FULL);
    expect(full.manifest.configuration).toEqual({kind: 'libvirt-domain-xml', text: '<domain type="kvm"><name>golden vm</name></domain>'});
    const fd = await full.openDisk('vda');
    expect(sha(await readAll(fd))).toBe('1896a7b990eee3d75d0560236211e0e51a192c5b691aec61ce5f57ba36bacacf');
    const map = [];
    for await (const e of fd.chunkMap()) map.push([e.offset, e.length, e.zero]);
    expect(map).toEqual([
      [0, 65536, false],
      [65536, 65536, false],
      [131072, 65536, true],
      [196608, 10000, false],
    ]);
    const inc = await (await repo.openRestorePoint(INC)).openDisk('vda');
    expect(sha(await readAll(inc))).toBe('2baafc8a6586e7a6d0f6b0cf7faa2441827eb2895f25b740f943831b2a25528b');
    expect((await inc.read(196608, 5)).toString('latin1')).toBe((await fd.read(196608, 5)).toString('latin1'));
  });

  it('verifies clean and accepts new restore points (on a copy)', async () => {
    const s = await scratch();
    cleanups.push(s.cleanup);
    await cp(FIXTURE, join(s.dir, 'copy'), {recursive: true});
    const repo = await openRepository(join(s.dir, 'copy'));
    expect((await repo.verify()).ok).toBe(true);
    const w = await repo.beginRestorePoint({vmId: '3f2c9a10-0000-4000-8000-000000000001', vmName: 'golden', platform: 'libvirt', base: INC});
    const d = await w.addDisk({key: 'vda', name: 'golden.qcow2', size: 206608});
    await d.zero(0, 65536);
    await d.finish();
    const p = await w.commit();
    const got = await readAll(await (await repo.openRestorePoint(p.id)).openDisk('vda'));
    expect(got.subarray(0, 65536).every((b) => b === 0)).toBe(true);
    expect((await repo.stats()).restorePoints).toBe(3);
  });

  it('reads with an independent reader written from docs/repository-format.md alone', async () => {
    // Nothing from src/: only the byte layouts the format document gives.
    const cfg = JSON.parse(await readFile(join(FIXTURE, 'vmbackup-repository.json'), 'utf8'));
    expect(cfg.format).toBe('vmbackup-repository');
    const points = [];
    for (const rp of await readdir(join(FIXTURE, 'points'))) {
      const m = JSON.parse(await readFile(join(FIXTURE, 'points', rp, 'manifest.json'), 'utf8'));
      points.push(m);
    }
    points.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
    const sums = [];
    for (const m of points) {
      const disk = m.disks[0];
      const idx = await readFile(join(FIXTURE, 'points', m.id, disk.index));
      expect(sha(idx)).toBe(disk.indexSha256);
      expect(idx.subarray(0, 8).toString('latin1')).toBe('VBIDX\0\0\0');
      const size = Number(idx.readBigUInt64LE(16));
      const cs = idx.readUInt32LE(24);
      const count = idx.readUInt32LE(28);
      expect(createHash('sha256').update(idx.subarray(0, 32)).update(idx.subarray(64)).digest().equals(idx.subarray(32, 64))).toBe(true);
      const parts: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const id = idx.subarray(64 + i * 32, 96 + i * 32);
        const len = Math.min(cs, size - i * cs);
        if (id.every((b) => b === 0)) {
          parts.push(Buffer.alloc(len));
          continue;
        }
        const hex = id.toString('hex');
        const f = await readFile(join(FIXTURE, 'chunks', hex.slice(0, 4), hex));
        expect(f.subarray(0, 4).toString('latin1')).toBe('VBCK');
        const payload = f.subarray(16);
        expect(crc32(payload)).toBe(f.readUInt32LE(12));
        const plain = f[5]! & 1 ? (uncompressSync(payload) as Buffer) : payload;
        expect(plain.length).toBe(f.readUInt32LE(8));
        expect(plain.length).toBe(len);
        expect(sha(plain)).toBe(hex);
        parts.push(plain);
      }
      sums.push(sha(Buffer.concat(parts)));
    }
    expect(sums).toEqual([
      '1896a7b990eee3d75d0560236211e0e51a192c5b691aec61ce5f57ba36bacacf',
      '2baafc8a6586e7a6d0f6b0cf7faa2441827eb2895f25b740f943831b2a25528b',
    ]);
  });
});
