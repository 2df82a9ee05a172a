/**
 * NbdPool against qemu-nbd (read-only: several connections), nbdkit memory without multi-conn
 * (writable: one connection) and nbdkit memory with CAN_MULTI_CONN (writable: several).
 */
import {randomBytes} from 'node:crypto';
import {open, readFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {NbdPool} from '../../../src/transports/nbd/index.js';
import {qemuImg, startNbdkit, startQemuNbd, tempDir, type RunningServer} from './servers.js';

const MiB = 1024 * 1024;
let t: Awaited<ReturnType<typeof tempDir>>;
let raw: string;
let content: Buffer;
let ro: RunningServer;

beforeAll(async () => {
  t = await tempDir();
  raw = path.join(t.dir, 'disk.raw');
  await qemuImg('create', '-f', 'raw', raw, '72M');
  const fh = await open(raw, 'r+');
  await fh.write(randomBytes(70 * MiB), 0, 70 * MiB, 1 * MiB);
  await fh.close();
  content = await readFile(raw);
  ro = await startQemuNbd({image: raw, format: 'raw', socketPath: path.join(t.dir, 'ro.sock'), readOnly: true});
});

afterAll(async () => {
  await ro?.stop();
  await t?.remove();
});

describe('NbdPool', () => {
  it('opens several connections to a read-only export and reads through all of them', async () => {
    const pool = await NbdPool.open({address: ro.address, exportName: '', connections: 4, maxInFlight: 2, metaContexts: ['base:allocation']});
    try {
      expect(pool.connections).toBe(4);
      expect(pool.size).toBe(72 * MiB);
      expect((await pool.read(0, pool.size)).equals(content)).toBe(true);
      // Many concurrent callers, more than connections × maxInFlight.
      const offsets = Array.from({length: 60}, (_, i) => i * MiB + (i % 5) * 512);
      const parts = await Promise.all(offsets.map((o) => pool.read(o, 1 * MiB)));
      parts.forEach((p, i) => expect(p.equals(content.subarray(offsets[i], offsets[i]! + MiB))).toBe(true));
      const status = await pool.blockStatus(0, pool.size, 'base:allocation');
      expect(status.reduce((n, e) => n + e.length, 0)).toBe(pool.size);
    } finally {
      await pool.close();
      await pool.close();
    }
    await expect(pool.read(0, 1)).rejects.toThrow(/closed/);
  });

  it('keeps one connection to a writable export without CAN_MULTI_CONN', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'single.sock'), ['memory', '8M', 'multi-conn-mode=disable'], ['multi-conn']);
    try {
      const pool = await NbdPool.open({address: srv.address, exportName: '', connections: 4});
      expect(pool.canMultiConn).toBe(false);
      expect(pool.connections).toBe(1);
      await pool.write(0, Buffer.alloc(MiB, 7));
      await pool.flush();
      expect((await pool.read(0, MiB)).equals(Buffer.alloc(MiB, 7))).toBe(true);
      await pool.close();
    } finally {
      await srv.stop();
    }
  });

  it('writes in parallel over several connections when the export allows multi-conn', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'mem.sock'), ['memory', '256M']);
    try {
      const pool = await NbdPool.open({address: srv.address, exportName: '', connections: 3});
      expect(pool.canMultiConn).toBe(true);
      expect(pool.connections).toBe(3);
      const data = randomBytes(80 * MiB);
      await pool.write(10 * MiB, data);
      await pool.writeZeroes(20 * MiB, MiB);
      data.fill(0, 10 * MiB, 11 * MiB);
      await pool.flush();
      expect((await pool.read(10 * MiB, 80 * MiB)).equals(data)).toBe(true);
      await pool.close();
    } finally {
      await srv.stop();
    }
  });

  it('fails to open with a clear error and leaves nothing open', async () => {
    await expect(NbdPool.open({address: ro.address, exportName: 'nope', connections: 2})).rejects.toThrow(/NBD export 'nope' does not exist/);
    await expect(NbdPool.open({address: ro.address, exportName: '', connections: 0})).rejects.toThrow(RangeError);
  });
});
