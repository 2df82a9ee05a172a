/**
 * NbdClient against a real qemu-nbd: handshake, block sizes, base:allocation, dirty bitmaps,
 * large reads compared with `qemu-img convert`, writes checked with `qemu-img compare`, TCP,
 * odd socket paths and parallel connections.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {NbdClient, TransmissionFlag, allocationToExtents, dirtyToExtents, mergeExtents, walkExtents} from '../../../src/transports/nbd/index.js';
import type {SourceExtent} from '../../../src/platforms/types.js';
import {qemuImg, qemuIo, startQemuNbd, tempDir, type RunningServer} from './servers.js';

const MiB = 1024 * 1024;
const KiB = 1024;

let t: Awaited<ReturnType<typeof tempDir>>;
let image: string;
let rawCopy: Buffer;
let server: RunningServer;

/** A 96 MiB qcow2: random data at 1M (64k) and 8M (40M, more than one 32 MiB request), zeros at 70M. */
async function buildSparseImage(dir: string): Promise<string> {
  const raw = path.join(dir, 'src.raw');
  await qemuImg('create', '-f', 'raw', raw, '96M');
  const fh = await import('node:fs/promises').then((fs) => fs.open(raw, 'r+'));
  await fh.write(randomBytes(64 * KiB), 0, 64 * KiB, 1 * MiB);
  await fh.write(randomBytes(40 * MiB), 0, 40 * MiB, 8 * MiB);
  await fh.close();
  const img = path.join(dir, 'sparse.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, img);
  // Allocated, then zeroed in place: ZERO flag set over a range that was once data.
  await qemuIo(img, 'qcow2', 'write -P 0x11 70M 2M', 'write -z 70M 2M');
  return img;
}

beforeAll(async () => {
  t = await tempDir();
  image = await buildSparseImage(t.dir);
  const out = path.join(t.dir, 'expected.raw');
  await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', image, out);
  rawCopy = await readFile(out);
  server = await startQemuNbd({image, socketPath: path.join(t.dir, 'ro.sock'), readOnly: true});
});

afterAll(async () => {
  await server?.stop();
  await t?.remove();
});

describe('NbdClient with qemu-nbd (read-only qcow2 over a unix socket)', () => {
  it('negotiates size, flags, block sizes and meta contexts', async () => {
    const c = await NbdClient.connect({address: server.address, exportName: '', metaContexts: ['base:allocation']});
    try {
      expect(c.size).toBe(96 * MiB);
      expect(c.readOnly).toBe(true);
      expect(c.exportFlags & TransmissionFlag.hasFlags).toBeTruthy();
      expect(c.canMultiConn).toBe(true); // qemu ≥ 4.2 on a shared read-only export
      expect(c.blockSize.minimum).toBeGreaterThanOrEqual(1);
      expect(c.blockSize.maximum).toBe(32 * MiB);
      expect(c.maxPayload).toBe(32 * MiB);
      expect([...c.metaContexts.keys()]).toEqual(['base:allocation']);
    } finally {
      await c.close();
    }
  });

  it('reads the whole export (several 32 MiB requests) exactly as qemu-img convert does', async () => {
    const c = await NbdClient.connect({address: server.address, exportName: ''});
    try {
      const all = await c.read(0, c.size);
      expect(all.equals(rawCopy)).toBe(true);
      // Into a caller's buffer, at odd offsets and lengths, across the data/hole border.
      const into = Buffer.alloc(5 * MiB + 3, 0xee);
      const got = await c.read(8 * MiB - 777, 5 * MiB + 1, into);
      expect(got.length).toBe(5 * MiB + 1);
      expect(got.equals(rawCopy.subarray(8 * MiB - 777, 13 * MiB - 776))).toBe(true);
      expect(into[5 * MiB + 1]).toBe(0xee);
      expect((await c.read(0, 0)).length).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('pipelines many requests on one connection and matches replies by cookie', async () => {
    const c = await NbdClient.connect({address: server.address, exportName: ''});
    try {
      const offsets = Array.from({length: 64}, (_, i) => ((i * 7919) % 95) * MiB + (i % 3) * 4096);
      const reads = await Promise.all(offsets.map((o) => c.read(o, 256 * KiB)));
      reads.forEach((b, i) => expect(b.equals(rawCopy.subarray(offsets[i], offsets[i]! + 256 * KiB))).toBe(true));
    } finally {
      await c.close();
    }
  });

  it('reports base:allocation extents that agree with qemu-img map', async () => {
    const c = await NbdClient.connect({address: server.address, exportName: '', metaContexts: ['base:allocation']});
    let ours: SourceExtent[];
    try {
      const entries = await c.blockStatus(0, c.size, 'base:allocation');
      // Contiguous and exactly covering the export.
      let pos = 0;
      for (const e of entries) {
        expect(e.offset).toBe(pos);
        pos += e.length;
      }
      expect(pos).toBe(c.size);
      ours = allocationToExtents(entries, {offset: 0});
      const walked: SourceExtent[] = [];
      for await (const e of walkExtents(c, {windowBytes: 5 * MiB})) walked.push(e);
      expect(walked).toEqual(ours);
      // A window in the middle of an extent is clipped to the window.
      const win = await c.blockStatus(9 * MiB, 1 * MiB, 'base:allocation');
      expect(win).toEqual([{offset: 9 * MiB, length: 1 * MiB, flags: 0}]);
    } finally {
      await c.close();
    }
    const {stdout} = await execa('qemu-img', ['map', '--output=json', '-f', 'qcow2', image]);
    const map = JSON.parse(stdout) as {start: number; length: number; zero: boolean; data: boolean}[];
    const expected = mergeExtents(map.map((m) => ({offset: m.start, length: m.length, kind: m.zero ? 'zero' : 'data'})));
    expect(ours).toEqual(expected);
    // And the layout we built: data where written, zero elsewhere.
    const kindAt = (o: number) => ours.find((e) => e.offset <= o && o < e.offset + e.length)!.kind;
    expect(kindAt(1 * MiB)).toBe('data');
    expect(kindAt(8 * MiB)).toBe('data');
    expect(kindAt(47 * MiB)).toBe('data');
    expect(kindAt(60 * MiB)).toBe('zero');
    expect(kindAt(71 * MiB)).toBe('zero');
  });

  it('works over TCP', async () => {
    const tcp = await startQemuNbd({image, readOnly: true, exportName: 'disk0'});
    try {
      expect('port' in tcp.address).toBe(true);
      const c = await NbdClient.connect({address: tcp.address, exportName: 'disk0'});
      expect((await c.read(7 * MiB, 3 * MiB)).equals(rawCopy.subarray(7 * MiB, 10 * MiB))).toBe(true);
      await c.close();
    } finally {
      await tcp.stop();
    }
  });

  it('works over a unix socket whose path holds spaces, quotes, ; and unicode', async () => {
    const dir = path.join(t.dir, `a b'c";d ü€`);
    await mkdir(dir);
    const srv = await startQemuNbd({image, socketPath: path.join(dir, 'n ü.sock'), readOnly: true, exportName: 'disk ü;1'});
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: 'disk ü;1'});
      expect((await c.read(1 * MiB, 64 * KiB)).equals(rawCopy.subarray(1 * MiB, 1 * MiB + 64 * KiB))).toBe(true);
      await c.close();
    } finally {
      await srv.stop();
    }
  });

  it('serves several connections reading in parallel', async () => {
    const clients = await Promise.all(Array.from({length: 4}, () => NbdClient.connect({address: server.address, exportName: ''})));
    try {
      const quarter = 24 * MiB;
      const parts = await Promise.all(clients.map((c, i) => c.read(i * quarter, quarter)));
      expect(Buffer.concat(parts).equals(rawCopy)).toBe(true);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('close() is idempotent and later calls reject clearly', async () => {
    const c = await NbdClient.connect({address: server.address, exportName: ''});
    const pending = c.read(0, 1 * MiB);
    const closing = c.close();
    await expect(pending).resolves.toHaveLength(1 * MiB); // close waits for outstanding requests
    await closing;
    await c.close();
    await expect(c.read(0, 4096)).rejects.toThrow(/closed/);
  });
});

describe('dirty bitmaps (qemu-nbd --bitmap)', () => {
  it('reports exactly the writes made after the bitmap was added, combined with allocation', async () => {
    const img = path.join(t.dir, 'inc.qcow2');
    await qemuImg('create', '-f', 'qcow2', img, '64M');
    await qemuIo(img, 'qcow2', 'write -P 0x01 0 8M', 'write -P 0x02 32M 1M'); // before the checkpoint
    await qemuImg('bitmap', '--add', img, 'ckpt-1');
    await qemuIo(
      img,
      'qcow2',
      'write -P 0x55 1M 64k', // one granule
      'write -P 0x66 5M 200k', // rounds up to 256k of 64k granules
      'write -z 32M 128k', // dirty but reads as zeros now
      'write -P 0x77 40M 64k', // dirty over a previously unallocated range
    );
    const srv = await startQemuNbd({image: img, socketPath: path.join(t.dir, 'inc.sock'), readOnly: true, bitmap: 'ckpt-1'});
    const ctx = 'qemu:dirty-bitmap:ckpt-1';
    const c = await NbdClient.connect({address: srv.address, exportName: '', metaContexts: ['base:allocation', ctx]});
    try {
      expect([...c.metaContexts.keys()].sort()).toEqual(['base:allocation', ctx]);
      const dirty = await c.blockStatus(0, c.size, ctx);
      expect(dirty.filter((e) => e.flags & 1).map(({offset, length}) => ({offset, length}))).toEqual([
        {offset: 1 * MiB, length: 64 * KiB},
        {offset: 5 * MiB, length: 256 * KiB},
        {offset: 32 * MiB, length: 128 * KiB},
        {offset: 40 * MiB, length: 64 * KiB},
      ]);
      const alloc = await c.blockStatus(0, c.size, 'base:allocation');
      const extents = dirtyToExtents(dirty, alloc);
      const U = 'unchanged';
      expect(extents).toEqual([
        {offset: 0, length: 1 * MiB, kind: U},
        {offset: 1 * MiB, length: 64 * KiB, kind: 'data'},
        {offset: 1 * MiB + 64 * KiB, length: 4 * MiB - 64 * KiB, kind: U},
        {offset: 5 * MiB, length: 256 * KiB, kind: 'data'},
        {offset: 5 * MiB + 256 * KiB, length: 27 * MiB - 256 * KiB, kind: U},
        {offset: 32 * MiB, length: 128 * KiB, kind: 'zero'},
        {offset: 32 * MiB + 128 * KiB, length: 8 * MiB - 128 * KiB, kind: U},
        {offset: 40 * MiB, length: 64 * KiB, kind: 'data'},
        {offset: 40 * MiB + 64 * KiB, length: 24 * MiB - 64 * KiB, kind: U},
      ]);
      // Walking in 3 MiB windows (borders inside extents) yields the same, merged across windows.
      const walked: SourceExtent[] = [];
      for await (const e of walkExtents(c, {dirtyContext: ctx, windowBytes: 3 * MiB})) walked.push(e);
      expect(walked).toEqual(extents);
      // The dirty data reads back as written.
      expect((await c.read(5 * MiB, 200 * KiB)).equals(Buffer.alloc(200 * KiB, 0x66))).toBe(true);
    } finally {
      await c.close();
      await srv.stop();
    }
  });
});

describe('writes (writable qemu-nbd)', () => {
  it('WRITE, WRITE_ZEROES (with and without NO_HOLE), TRIM and FLUSH give the expected image', async () => {
    const img = path.join(t.dir, 'target.qcow2');
    await qemuImg('create', '-f', 'qcow2', img, '80M');
    // --discard=unmap lets WRITE_ZEROES without NO_HOLE free the clusters, so the flag is observable.
    const srv = await startQemuNbd({image: img, socketPath: path.join(t.dir, 'rw.sock'), extraArgs: ['--discard=unmap']});
    const expected = Buffer.alloc(80 * MiB);
    const c = await NbdClient.connect({address: srv.address, exportName: ''});
    try {
      expect(c.readOnly).toBe(false);
      expect(c.exportFlags & TransmissionFlag.sendWriteZeroes).toBeTruthy();
      const big = randomBytes(40 * MiB); // more than one 32 MiB request
      await c.write(2 * MiB, big);
      big.copy(expected, 2 * MiB);
      const small = randomBytes(12345);
      await c.write(50 * MiB + 7, small);
      small.copy(expected, 50 * MiB + 7);
      await c.writeZeroes(4 * MiB, 3 * MiB);
      expected.fill(0, 4 * MiB, 7 * MiB);
      await c.writeZeroes(10 * MiB, 1 * MiB, {noHole: true});
      expected.fill(0, 10 * MiB, 11 * MiB);
      await c.write(60 * MiB, Buffer.alloc(1 * MiB, 0x42));
      expected.fill(0x42, 60 * MiB, 61 * MiB);
      await c.trim(70 * MiB, 1 * MiB); // unwritten: stays zero whatever the server does
      await c.flush();
      expect((await c.read(2 * MiB, 40 * MiB)).equals(expected.subarray(2 * MiB, 42 * MiB))).toBe(true);
    } finally {
      await c.close();
      await srv.stop();
    }
    const exp = path.join(t.dir, 'target-expected.raw');
    await writeFile(exp, expected);
    const cmp = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', img, exp], {reject: false});
    expect(cmp.stdout + cmp.stderr).toContain('Images are identical');
    expect(cmp.exitCode).toBe(0);
    // Both read as zeros; NO_HOLE kept the host clusters (an offset), the plain one freed them.
    const {stdout} = await execa('qemu-img', ['map', '--output=json', '-f', 'qcow2', img]);
    const map = JSON.parse(stdout) as {start: number; length: number; zero: boolean; offset?: number}[];
    const at = (o: number) => map.find((m) => m.start <= o && o < m.start + m.length)!;
    expect(at(10 * MiB)).toMatchObject({zero: true});
    expect(at(10 * MiB).offset).toBeDefined();
    expect(at(4 * MiB)).toMatchObject({zero: true});
    expect(at(4 * MiB).offset).toBeUndefined();
  });
});
