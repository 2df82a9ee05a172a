import {describe, expect, it} from 'vitest';
import {crc32} from 'node:zlib';
import {ChunkDecodeError, decodeChunk, encodeChunk, chunkId} from '../../src/repository/chunk-file.js';
import {decodeIndex, encodeIndexHeader} from '../../src/repository/index-file.js';
import {slugify, newPointId} from '../../src/repository/names.js';
import {pseudoRandom, textLike} from './helpers.js';

describe('chunk files', () => {
  it('compresses compressible data and stores random data raw, both decode back', async () => {
    for (const [plain, lz4] of [[textLike(65536, 1), true], [pseudoRandom(65536, 1), false]] as const) {
      const {header, payload} = await encodeChunk(plain);
      expect(header.subarray(0, 4).toString('latin1')).toBe('VBCK');
      expect(header[4]).toBe(1);
      expect(header[5]! & 1).toBe(lz4 ? 1 : 0);
      expect(header.readUInt32LE(8)).toBe(plain.length);
      expect(header.readUInt32LE(12)).toBe(crc32(payload));
      expect(payload.length < plain.length).toBe(lz4);
      expect((await decodeChunk(Buffer.concat([header, payload]))).equals(plain)).toBe(true);
    }
  });

  it('detects a flipped bit, a truncated file and a foreign file', async () => {
    const {header, payload} = await encodeChunk(textLike(4096, 2));
    const file = Buffer.concat([header, payload]);
    const flipped = Buffer.from(file);
    flipped[20]! ^= 1;
    await expect(decodeChunk(flipped)).rejects.toBeInstanceOf(ChunkDecodeError);
    await expect(decodeChunk(file.subarray(0, file.length - 1))).rejects.toThrow(/checksum/);
    await expect(decodeChunk(file.subarray(0, 8))).rejects.toThrow(/shorter/);
    await expect(decodeChunk(Buffer.from('hello world, not a chunk'))).rejects.toThrow(/magic/);
  });

  it('uses SHA-256 of the plain data as the id', () => {
    expect(chunkId(Buffer.from('abc')).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('index files', () => {
  it('round-trips and rejects truncation and bit flips', () => {
    const ids = Buffer.concat([pseudoRandom(32, 1), Buffer.alloc(32), pseudoRandom(32, 2)]);
    const h = encodeIndexHeader(3 * 65536 - 10, 65536, ids);
    const file = Buffer.concat([h, ids]);
    const d = decodeIndex(file);
    expect(d).toEqual({size: 3 * 65536 - 10, chunkSize: 65536, ids});
    expect(decodeIndex(file.subarray(0, file.length - 32))).toEqual({error: expect.stringMatching(/truncated/)});
    expect(decodeIndex(file.subarray(0, 30))).toEqual({error: expect.stringMatching(/truncated/)});
    const bad = Buffer.from(file);
    bad[100]! ^= 0x80;
    expect(decodeIndex(bad)).toEqual({error: 'checksum mismatch'});
    const badSize = Buffer.from(file);
    badSize[16]! ^= 1; // the size is covered by the checksum too
    expect('error' in decodeIndex(badSize)).toBe(true);
  });
});

describe('restore point ids', () => {
  it('are safe slugs whatever the VM name', () => {
    expect(slugify('Web Server "01"; drop')).toBe('web-server-01-drop');
    expect(slugify('Ωμέγα 😀')).toBe('vm');
    expect(slugify('Crème brûlée')).toBe('creme-brulee');
    expect(newPointId('a b', new Date('2026-01-02T03:04:05.678Z'))).toMatch(/^a-b-20260102t030405z-[0-9a-f]{6}$/);
  });
});
