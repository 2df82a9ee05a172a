/**
 * The verdict of a restore verification from what a VM read (engine/verify-boot.ts), with the
 * figures measured on the test bed's QEMU/SeaBIOS (test/daemon/instant.test.ts runs them for
 * real), and screenshots as PNG (util/png.ts): QEMU's PPM converted, a PNG kept as it is.
 */
import {crc32, inflateSync} from 'node:zlib';
import {describe, expect, it} from 'vitest';
import {bootLoaderSeen} from '../../src/engine/verify-boot.js';
import {toPng} from '../../src/util/png.js';

describe('bootLoaderSeen', () => {
  it('BIOS: a boot sector that reads on passes; the firmware probing a disk without one does not, however long it retries', () => {
    // Measured: a disk without a boot loader, 512 bytes in 1 request; the test boot sector, 65536 in 3.
    expect(bootLoaderSeen({readBytes: 512, readRequests: 1, uefi: false})).toBe(false);
    expect(bootLoaderSeen({readBytes: 65536, readRequests: 3, uefi: false})).toBe(true);
    // SeaBIOS tries every disk again once a minute: 4 disks for 30 minutes read 60 KiB, one sector per request.
    expect(bootLoaderSeen({readBytes: 4 * 30 * 512, readRequests: 4 * 30, uefi: false})).toBe(false);
    expect(bootLoaderSeen({readBytes: 16 * 1024, readRequests: 2, uefi: false})).toBe(false);
  });

  it('UEFI: the firmware reads the EFI system partition itself, so only a loaded boot loader file (megabytes) passes', () => {
    expect(bootLoaderSeen({readBytes: 65536, readRequests: 3, uefi: true})).toBe(false);
    expect(bootLoaderSeen({readBytes: 3 * 1024 * 1024, readRequests: 400, uefi: true})).toBe(true);
  });
});

describe('toPng', () => {
  it('turns a binary PPM into a PNG whose pixels are the same, and keeps a PNG as it is', () => {
    const rgb = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const ppm = Buffer.concat([Buffer.from('P6\n# QEMU\n3 2\n255\n'), rgb]);
    const png = Buffer.from(toPng(ppm)!);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // Chunks: IHDR (3×2, 8-bit RGB), IDAT, IEND, each with a correct CRC.
    const chunks: {type: string; data: Buffer}[] = [];
    for (let at = 8; at < png.length; ) {
      const len = png.readUInt32BE(at);
      const type = png.toString('latin1', at + 4, at + 8);
      const data = png.subarray(at + 8, at + 8 + len);
      expect(png.readUInt32BE(at + 8 + len)).toBe(crc32(png.subarray(at + 4, at + 8 + len)));
      chunks.push({type, data});
      at += 12 + len;
    }
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect([chunks[0]!.data.readUInt32BE(0), chunks[0]!.data.readUInt32BE(4), chunks[0]!.data[8], chunks[0]!.data[9]]).toEqual([3, 2, 8, 2]);
    const raw = inflateSync(chunks[1]!.data);
    expect(raw).toEqual(Buffer.concat([Buffer.from([0]), rgb.subarray(0, 9), Buffer.from([0]), rgb.subarray(9)]));
    expect(Buffer.from(toPng(png)!)).toEqual(png);
  });

  it('refuses what is not an image it knows: text, a short or a 16-bit PPM, absurd sizes', () => {
    expect(toPng(Buffer.from('hello'))).toBeUndefined();
    expect(toPng(Buffer.from('P6\n2 2\n255\n\x00\x00\x00'))).toBeUndefined();
    expect(toPng(Buffer.from('P6\n1 1\n65535\n\x00\x00\x00\x00\x00\x00'))).toBeUndefined();
    expect(toPng(Buffer.from('P6\n99999999 1\n255\n'))).toBeUndefined();
  });
});
