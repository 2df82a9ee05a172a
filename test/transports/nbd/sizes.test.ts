/**
 * Size constraints and short answers: an export with a 4 KiB minimum and 64 KiB maximum block
 * size that refuses unaligned requests (nbdkit blocksize-policy), and a server whose
 * BLOCK_STATUS replies cover only 4 KiB each (nbdkit eval), which the client must loop over.
 */
import {randomBytes} from 'node:crypto';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {NbdClient, TransmissionFlag, allocationToExtents} from '../../../src/transports/nbd/index.js';
import {startNbdkit, tempDir} from './servers.js';

const KiB = 1024;
let t: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  t = await tempDir();
});
afterAll(async () => {
  await t?.remove();
});

describe('block size constraints', () => {
  it('splits to the maximum payload, widens unaligned reads and refuses unaligned writes', async () => {
    const srv = await startNbdkit(
      path.join(t.dir, 'bs.sock'),
      ['memory', '16M', 'blocksize-minimum=4096', 'blocksize-preferred=16384', 'blocksize-maximum=65536', 'blocksize-error-policy=error'],
      ['blocksize-policy'],
    );
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: ''});
      expect(c.blockSize).toEqual({minimum: 4096, preferred: 16384, maximum: 65536});
      expect(c.maxPayload).toBe(65536);
      const data = randomBytes(1024 * KiB);
      await c.write(64 * KiB, data); // 16 requests of 64 KiB
      expect((await c.read(64 * KiB, 1024 * KiB)).equals(data)).toBe(true);
      // Unaligned start and length: read as the covering aligned span, sliced.
      expect((await c.read(64 * KiB + 100, 5000)).equals(data.subarray(100, 5100))).toBe(true);
      const into = Buffer.alloc(70 * KiB + 1, 0xff);
      await c.read(64 * KiB + 4095, 70 * KiB + 1, into);
      expect(into.equals(data.subarray(4095, 4095 + 70 * KiB + 1))).toBe(true);
      await expect(c.write(100, Buffer.alloc(4096))).rejects.toThrow(/not aligned to the 4096-byte minimum block size/);
      await c.close();
    } finally {
      await srv.stop();
    }
  });
});

describe('short BLOCK_STATUS replies', () => {
  it('loops until the whole range is covered', async () => {
    // Every reply covers only the first 4 KiB asked for; alternate data and hole+zero.
    const srv = await startNbdkit(path.join(t.dir, 'ev.sock'), [
      'eval',
      'get_size=echo 1048576',
      'pread=dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null',
      'can_extents=exit 0',
      'extents=echo $4 4096 $(( ($4/4096)%2 ? 3 : 0 ))',
    ]);
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: '', metaContexts: ['base:allocation']});
      const entries = await c.blockStatus(8192, 64 * KiB, 'base:allocation');
      expect(entries).toHaveLength(16);
      expect(entries[0]).toEqual({offset: 8192, length: 4096, flags: 0});
      expect(entries[1]).toEqual({offset: 12288, length: 4096, flags: 3});
      expect(entries[15]).toEqual({offset: 8192 + 15 * 4096, length: 4096, flags: 3});
      expect(allocationToExtents(entries, {offset: 8192})).toHaveLength(16);
      await c.close();
    } finally {
      await srv.stop();
    }
  });
});

describe('servers without WRITE_ZEROES', () => {
  it('writes zeros with plain WRITEs', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'nozero.sock'), ['memory', '16M', 'zeromode=none'], ['nozero']);
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: ''});
      expect(c.exportFlags & TransmissionFlag.sendWriteZeroes).toBe(0);
      await c.write(0, Buffer.alloc(3 * 1024 * KiB, 0xab));
      await c.writeZeroes(512 * KiB, 2 * 1024 * KiB);
      const back = await c.read(0, 3 * 1024 * KiB);
      const expected = Buffer.alloc(3 * 1024 * KiB, 0xab).fill(0, 512 * KiB, 2560 * KiB);
      expect(back.equals(expected)).toBe(true);
      await c.close();
    } finally {
      await srv.stop();
    }
  });
});
