/**
 * Formats stay readable: test/fixtures/repo-v1 was written by format version 1
 * (test/fixtures/make-repo.ts 1), repo-v2 by format version 2 (make-repo.ts 2), repo-v3 (encrypted)
 * by format version 3, all with the same content, and are committed. Never regenerate them for a
 * new format: add a repo-v4 beside them and keep this test. A version 1 repository also stays writable, and stays version 1.
 */
import {afterAll, describe, expect, it} from 'vitest';
import {cp, readFile, readdir, stat} from 'node:fs/promises';
import {createDecipheriv, createHash, createHmac, scryptSync} from 'node:crypto';
import {crc32} from 'node:zlib';
import {uncompressSync} from 'lz4-napi';
import {join} from 'node:path';
import {openRepository as openRepo} from '../../src/repository/index.js';
import {ageChunks, chunkFiles, expectContent, putAll, readAll, scratch, textLike} from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const GOLDEN = [
  {
    version: 1,
    FIXTURE: join(import.meta.dirname, '..', 'fixtures', 'repo-v1'),
    FULL: 'golden-vm-test-20261123t194306z-d3bc8b',
    INC: 'golden-vm-test-20261123t194306z-bd2aa4',
    repositoryId: 'dbd521f4-dca4-4d54-8dce-130198a1e207',
  },
  {
    version: 2,
    FIXTURE: join(import.meta.dirname, '..', 'fixtures', 'repo-v2'),
    FULL: 'golden-vm-test-20261123t220335z-bcb950',
    INC: 'golden-vm-test-20261123t220336z-5644e8',
    repositoryId: '4c15eb6a-f4e1-4fe9-8d96-2b15cd1728de',
  },
  {
    // Encrypted; the passphrase is given in docs/repository-format.md.
    version: 3,
    FIXTURE: join(import.meta.dirname, '..', 'fixtures', 'repo-v3'),
    FULL: 'vm-20261207t175128z-2d0cb2',
    INC: 'vm-20261207t175128z-b03006',
    repositoryId: 'bf594df3-7f4e-4691-ac2b-dc5db6716a88',
    passphrase: 'golden passphrase',
  },
];

describe.each(GOLDEN)('the golden v$version repository', ({version, FIXTURE, FULL, INC, repositoryId, passphrase}) => {
  const openRepository = (path: string) => openRepo(path, passphrase !== undefined ? {passphrase} : {});
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('opens, lists and reads its known content', async () => {
    const repo = await openRepository(FIXTURE);
    expect(repo.formatVersion).toBe(version);
    expect(repo.chunkSize).toBe(65536);
    expect(repo.id).toBe(repositoryId);
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

  it(`verifies clean, takes a backup, restores, verifies and collects garbage, and stays version ${version} (on a copy)`, async () => {
    const s = await scratch();
    cleanups.push(s.cleanup);
    const path = join(s.dir, 'copy');
    await cp(FIXTURE, path, {recursive: true});
    const repo = await openRepository(path);
    expect((await repo.verify()).ok).toBe(true);
    const w = await repo.beginRestorePoint({vmId: '3f2c9a10-0000-4000-8000-000000000001', vmName: 'golden', platform: 'libvirt', base: INC});
    const d = await w.addDisk({key: 'vda', name: 'golden.qcow2', size: 206608});
    await d.zero(0, 65536);
    await d.finish();
    const p = await w.commit();
    const got = await readAll(await (await repo.openRestorePoint(p.id)).openDisk('vda'));
    expect(got.subarray(0, 65536).every((b) => b === 0)).toBe(true);
    expect((await repo.stats()).restorePoints).toBe(3);
    // A full backup of new data: new chunks in this repository's own layout and chunk format.
    const image = Buffer.concat([textLike(65536, 71), textLike(65536, 72), Buffer.alloc(65536)]);
    const w2 = await repo.beginRestorePoint({vmId: 'another-vm', vmName: 'another', platform: 'libvirt'});
    const d2 = await w2.addDisk({key: 'vdb', name: 'b.raw', size: image.length});
    await putAll(d2, image, 65536);
    expect((await d2.finish()).newChunks).toBe(2);
    const p2 = await w2.commit();
    await expectContent(repo, p2.id, 'vdb', image);
    const digits = version === 1 ? 4 : 2;
    if (version < 3) {
      for (const hex of [sha(image.subarray(0, 65536)), sha(image.subarray(65536, 131072))]) {
        const f = await readFile(join(path, 'chunks', hex.slice(0, digits), hex));
        expect(f[4]).toBe(version);
      }
    }
    // Every chunk file, old and new, is of the repository's own chunk format.
    for (const f of await chunkFiles(path)) expect((await readFile(join(path, 'chunks', f.slice(0, digits), f)))[4]).toBe(version);
    for (const dir of await readdir(join(path, 'chunks'))) expect(dir).toMatch(version === 1 ? /^[0-9a-f]{4}$/ : /^[0-9a-f]{2}$/);
    // Prune the new point, age everything, collect: its two chunks go, the golden ones stay.
    expect((await repo.verify()).ok).toBe(true);
    const w3 = await repo.beginRestorePoint({vmId: 'another-vm', vmName: 'another', platform: 'libvirt'});
    await (await w3.addDisk({key: 'vdb', name: 'b.raw', size: image.length})).finish();
    await w3.commit();
    expect((await repo.prune({keepLast: 1}, {vmId: 'another-vm'})).removed.map((x) => x.id)).toEqual([p2.id]);
    await ageChunks(path, 3_600_000);
    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(2);
    expect((await chunkFiles(path)).length).toBe(4);
    expect((await repo.verify()).ok).toBe(true);
    await expectContent(repo, FULL, 'vda', await readAll(await (await (await openRepository(FIXTURE)).openRestorePoint(FULL)).openDisk('vda')));
    const again = await openRepository(path);
    expect(again.formatVersion).toBe(version);
    expect(JSON.parse(await readFile(join(path, 'vmbackup-repository.json'), 'utf8')).version).toBe(version);
    expect((await stat(join(path, 'chunks'))).isDirectory()).toBe(true);
  });

  it('reads with an independent reader written from docs/repository-format.md alone', async () => {
    // Nothing from src/: only the byte layouts the format document gives.
    const cfg = JSON.parse(await readFile(join(FIXTURE, 'vmbackup-repository.json'), 'utf8'));
    expect(cfg.format).toBe('vmbackup-repository');
    expect(cfg.version).toBe(version);
    // Version 1: chunks/<4 hex>/, 16-byte header with a CRC-32 of the payload.
    // Version 2: chunks/<2 hex>/, 12-byte header, no CRC (the SHA-256 is the check).
    // Version 3: as 2, encrypted: "Encrypted repositories (version 3)".
    const digits = cfg.version === 1 ? 4 : 2;
    const headerSize = cfg.version === 1 ? 16 : 12;
    let E: Buffer | undefined;
    let M: Buffer | undefined;
    if (cfg.version === 3) {
      const k = cfg.encryption.kdf;
      const kek = scryptSync(passphrase!.normalize('NFC'), Buffer.from(k.salt, 'base64'), 32, {N: k.N, r: k.r, p: k.p, maxmem: 256 << 20});
      const wrapped = Buffer.from(cfg.encryption.key, 'base64');
      const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(cfg.encryption.nonce, 'base64'));
      d.setAAD(Buffer.from(`vmbackup repository key ${cfg.id}`, 'utf8'));
      d.setAuthTag(wrapped.subarray(64));
      const master = Buffer.concat([d.update(wrapped.subarray(0, 64)), d.final()]);
      [E, M] = [master.subarray(0, 32), master.subarray(32)];
    }
    /** A sealed index or manifest opened (version 3), else the file as it is. */
    const open = (file: Buffer, purpose: string): Buffer => {
      if (!E) return file;
      expect(file.subarray(0, 8).toString('latin1')).toBe('VBENC\0\0\0');
      const d = createDecipheriv('aes-256-gcm', E, file.subarray(8, 20));
      d.setAAD(Buffer.concat([file.subarray(0, 8), Buffer.from(purpose, 'utf8')]));
      d.setAuthTag(file.subarray(file.length - 16));
      return Buffer.concat([d.update(file.subarray(20, file.length - 16)), d.final()]);
    };
    const points = [];
    for (const rp of await readdir(join(FIXTURE, 'points'))) {
      const m = JSON.parse(open(await readFile(join(FIXTURE, 'points', rp, 'manifest.json')), `manifest ${rp}`).toString('utf8'));
      points.push(m);
    }
    points.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
    const sums = [];
    for (const m of points) {
      const disk = m.disks[0];
      const stored = await readFile(join(FIXTURE, 'points', m.id, disk.index));
      expect(sha(stored)).toBe(disk.indexSha256);
      const idx = open(stored, `index ${m.id}/${disk.index}`);
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
        const f = await readFile(join(FIXTURE, 'chunks', hex.slice(0, digits), hex));
        expect(f.subarray(0, 4).toString('latin1')).toBe('VBCK');
        expect(f[4]).toBe(cfg.version);
        expect(f.readUInt16LE(6)).toBe(0);
        let flags: number;
        let plainLength: number;
        let payload: Buffer;
        if (E) {
          const d = createDecipheriv('aes-256-gcm', E, f.subarray(8, 20));
          d.setAAD(Buffer.concat([f.subarray(0, 20), id]));
          d.setAuthTag(f.subarray(f.length - 16));
          const inner = Buffer.concat([d.update(f.subarray(20, f.length - 16)), d.final()]);
          [flags, plainLength, payload] = [inner[0]!, inner.readUInt32LE(4), inner.subarray(8)];
        } else {
          [flags, plainLength, payload] = [f[5]!, f.readUInt32LE(8), f.subarray(headerSize)];
          if (cfg.version === 1) expect(crc32(payload)).toBe(f.readUInt32LE(12));
        }
        const plain = flags & 1 ? (uncompressSync(payload) as Buffer) : payload;
        expect(plain.length).toBe(plainLength);
        expect(plain.length).toBe(len);
        expect(M ? createHmac('sha256', M).update(plain).digest('hex') : sha(plain)).toBe(hex);
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
