/**
 * The initial_size of a restored qcow2 disk on block storage (qcow2-measure.ts) against the real
 * `qemu-img measure -O qcow2`: raw images of several virtual sizes with data in a few places.
 */
import {mkdtemp, open, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {qcow2FullyAllocated, qcow2Required} from '../../../src/platforms/ovirt/qcow2-measure.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-measure-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('qcow2 measure', () => {
  const cases: {size: number; data: [number, number][]}[] = [
    {size: 64 * MiB, data: []},
    {size: 64 * MiB, data: [[0, 2 * MiB], [20 * MiB, 640 * KiB]]},
    {size: 3 * MiB + 512, data: [[MiB, 64 * KiB]]},
    {size: 10 * GiB, data: [[100 * 64 * KiB, 3 * 64 * KiB], [9 * GiB, 4 * MiB]]},
    {size: 1000 * GiB, data: [[0, MiB], [999 * GiB, MiB]]},
    {size: 513 * MiB, data: [[0, 513 * MiB]]},
  ];
  for (const c of cases) {
    it(`matches qemu-img for ${c.size} bytes with ${c.data.length} data ranges`, async () => {
      const file = join(dir, `img-${c.size}-${c.data.length}.raw`);
      const fh = await open(file, 'w');
      await fh.truncate(c.size);
      for (const [at, len] of c.data) await fh.write(Buffer.alloc(len, 0xa5), 0, len, at);
      await fh.close();
      const {stdout} = await execa('qemu-img', ['measure', '-O', 'qcow2', '--output=json', '-f', 'raw', file]);
      const real = JSON.parse(stdout) as {required: number; 'fully-allocated': number};
      const data = c.data.reduce((n, [, len]) => n + len, 0);
      expect(qcow2Required(c.size, data)).toBe(real.required);
      expect(qcow2FullyAllocated(c.size)).toBe(real['fully-allocated']);
      await rm(file);
    });
  }
});
