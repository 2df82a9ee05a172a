/**
 * ImageFileSink (restores into a new image file) against real qemu-img and qemu-nbd: when
 * qemu-nbd cannot open the image for direct I/O (a file system without O_DIRECT, or a qemu-nbd
 * without io_uring), the sink starts it once more through the page cache and the restored bytes
 * are the same.
 */
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ImageFileSink} from '../../src/platforms/image/image-file.js';
import {LocalRunner, type CommandRunner} from '../../src/transports/command-runner.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-image-file-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

/** A runner that records every command and runs `qemu-nbd` as `shim` instead. */
function withQemuNbd(shim: string): {runner: CommandRunner; argvs: string[][]} {
  const local = new LocalRunner();
  const argvs: string[][] = [];
  const runner = {
    where: local.where,
    run: (argv: readonly string[], opts?: Parameters<CommandRunner['run']>[1]) => {
      argvs.push([...argv]);
      return local.run(argv[0] === 'qemu-nbd' ? [shim, ...argv.slice(1)] : argv, opts);
    },
  } as CommandRunner;
  return {runner, argvs};
}

describe('ImageFileSink', () => {
  it('falls back to the page cache when qemu-nbd refuses direct I/O, and writes the same bytes', async () => {
    // The real qemu-nbd, except that it fails the way it does where O_DIRECT is not supported.
    const shim = join(dir, 'qemu-nbd-no-direct');
    await writeFile(
      shim,
      '#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = "--cache=none" ]; then echo "qemu-nbd: Failed to blk_new_open: Could not open image: Invalid argument" >&2; exit 1; fi\ndone\nexec qemu-nbd "$@"\n',
    );
    await chmod(shim, 0o755);
    const {runner, argvs} = withQemuNbd(shim);
    const path = join(dir, 'disk "a" ü.qcow2');
    const size = 8 << 20;
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;

    const sink = await ImageFileSink.create({runner, path, format: 'qcow2', size, key: 'vda', scratchDir: join(dir, 'scratch')});
    try {
      await sink.write(2 << 20, data);
      await sink.flush();
    } finally {
      await sink.close();
    }

    const starts = argvs.filter((a) => a[0] === 'qemu-nbd');
    expect(starts).toHaveLength(2);
    expect(starts[0]).toContain('--cache=none');
    expect(starts[1]).not.toContain('--cache=none');
    const raw = join(dir, 'out.raw');
    await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, raw]);
    const image = await readFile(raw);
    expect(image.length).toBe(size);
    expect(image.subarray(2 << 20, 3 << 20).equals(data)).toBe(true);
    expect(image.subarray(0, 2 << 20).equals(Buffer.alloc(2 << 20))).toBe(true);
  });
});
