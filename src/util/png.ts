/**
 * Screenshots as PNG. QEMU's screendump (what `virsh screenshot` returns) writes binary PPM (P6)
 * unless asked for PNG; a PPM of a 1024×768 screen is 2.3 MB, its PNG a few KB, and only PNG
 * shows in a mail client or a browser. Pure: node:zlib only.
 */
import {crc32, deflateSync} from 'node:zlib';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Larger screens than any display adapter makes are not a screenshot. */
const MAX_SIDE = 16384;

/** A PNG as is, a binary PPM (P6, maxval 255) converted; undefined for anything else. */
export function toPng(image: Uint8Array): Uint8Array | undefined {
  const b = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  if (b.subarray(0, 8).equals(PNG_MAGIC)) return b;
  const ppm = parsePpm(b);
  return ppm ? encodePng(ppm.width, ppm.height, ppm.rgb) : undefined;
}

/** P6 header: "P6", width, height, maxval, each after whitespace (and # comments), one whitespace byte, then RGB. */
function parsePpm(b: Buffer): {width: number; height: number; rgb: Buffer} | undefined {
  if (b.length < 2 || b[0] !== 0x50 || b[1] !== 0x36) return undefined;
  let pos = 2;
  const fields: number[] = [];
  while (fields.length < 3) {
    while (pos < b.length && (isSpace(b[pos]!) || b[pos] === 0x23)) {
      if (b[pos] === 0x23) while (pos < b.length && b[pos] !== 0x0a) pos++;
      else pos++;
    }
    const start = pos;
    while (pos < b.length && b[pos]! >= 0x30 && b[pos]! <= 0x39) pos++;
    if (pos === start || pos - start > 6) return undefined;
    fields.push(Number(b.toString('latin1', start, pos)));
  }
  if (pos >= b.length || !isSpace(b[pos]!)) return undefined;
  pos++;
  const [width, height, maxval] = fields as [number, number, number];
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE || maxval !== 255) return undefined;
  const rgb = b.subarray(pos, pos + width * height * 3);
  return rgb.length === width * height * 3 ? {width, height, rgb} : undefined;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** 8-bit RGB, no interlace; each row with filter 0 (none). */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const row = width * 3;
  const raw = Buffer.alloc((row + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([PNG_MAGIC, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
