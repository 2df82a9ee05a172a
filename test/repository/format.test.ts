import {describe, expect, it} from 'vitest';
import {crc32} from 'node:zlib';
import {ChunkDecodeError, decodeChunk, encodeChunk, chunkId} from '../../src/repository/chunk-file.js';
import {decodeIndex, encodeIndexHeader} from '../../src/repository/index-file.js';
import {slugify, newPointId} from '../../src/repository/names.js';
import {pseudoRandom, textLike} from './helpers.js';

describe('chunk files', () => {
  it('format 1: compresses compressible data and stores random data raw, both decode back', () => {
    for (const [plain, lz4] of [[textLike(65536, 1), true], [pseudoRandom(65536, 1), false]] as const) {
      const {header, payload} = encodeChunk(plain, 1);
      expect(header.length).toBe(16);
      expect(header.subarray(0, 4).toString('latin1')).toBe('VBCK');
      expect(header[4]).toBe(1);
      expect(header[5]! & 1).toBe(lz4 ? 1 : 0);
      expect(header.readUInt32LE(8)).toBe(plain.length);
      expect(header.readUInt32LE(12)).toBe(crc32(payload));
      expect(payload.length < plain.length).toBe(lz4);
      expect(decodeChunk(Buffer.concat([header, payload])).equals(plain)).toBe(true);
    }
  });

  it('format 2: a 12-byte header without CRC; compresses or stores raw, both decode back', () => {
    for (const [plain, lz4] of [[textLike(65536, 1), true], [pseudoRandom(65536, 1), false]] as const) {
      const {header, payload} = encodeChunk(plain, 2);
      expect(header.length).toBe(12);
      expect(header.subarray(0, 4).toString('latin1')).toBe('VBCK');
      expect(header[4]).toBe(2);
      expect(header[5]).toBe(lz4 ? 1 : 0);
      expect(header.readUInt16LE(6)).toBe(0);
      expect(header.readUInt32LE(8)).toBe(plain.length);
      expect(payload.length < plain.length).toBe(lz4);
      expect(decodeChunk(Buffer.concat([header, payload]), chunkId(plain)).equals(plain)).toBe(true);
      expect(decodeChunk(Buffer.concat([header, payload]), chunkId(plain).toString('hex')).equals(plain)).toBe(true);
    }
  });

  it('format 1: detects a flipped bit, a truncated file and a foreign file', () => {
    const {header, payload} = encodeChunk(textLike(4096, 2), 1);
    const file = Buffer.concat([header, payload]);
    const flipped = Buffer.from(file);
    flipped[20]! ^= 1;
    expect(() => decodeChunk(flipped)).toThrow(ChunkDecodeError);
    expect(() => decodeChunk(file.subarray(0, file.length - 1))).toThrow(/checksum/);
    expect(() => decodeChunk(file.subarray(0, 8))).toThrow(/shorter/);
    expect(() => decodeChunk(Buffer.from('hello world, not a chunk'))).toThrow(/magic/);
  });

  it('format 2: the SHA-256 against the id catches what the CRC caught; unknown versions and flags are refused', () => {
    for (const plain of [textLike(4096, 2), pseudoRandom(4096, 3)]) {
      const id = chunkId(plain);
      const {header, payload} = encodeChunk(plain, 2);
      const file = Buffer.concat([header, payload]);
      // A flipped bit anywhere in the payload never yields wrong data: either the decode fails,
      // or (a bit LZ4 does not use, such as the high bytes of its size prefix) the data is right.
      let caught = 0;
      for (let at = 12; at < file.length; at += Math.max(1, Math.floor(file.length / 64))) {
        const flipped = Buffer.from(file);
        flipped[at]! ^= 0x10;
        try {
          expect(decodeChunk(flipped, id).equals(plain)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(ChunkDecodeError);
          caught++;
        }
      }
      expect(caught).toBeGreaterThan(40);
      expect(() => decodeChunk(file, chunkId(Buffer.from('other')))).toThrow(/checksum/);
      expect(() => decodeChunk(file.subarray(0, 11), id)).toThrow(/shorter/);
      const v3 = Buffer.from(file);
      v3[4] = 4;
      expect(() => decodeChunk(v3, id)).toThrow(/version 4/);
      const flags = Buffer.from(file);
      flags[5] = 0x82;
      expect(() => decodeChunk(flags, id)).toThrow(/flags/);
    }
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
