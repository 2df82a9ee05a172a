/**
 * 'disks-to-files' restore target for oVirt: each disk becomes an image file on the appliance.
 *
 * Interim implementation until the shared DiskSink over local images (src/platforms/image-file.ts)
 * lands: data is written to a sparse raw file with positional writes (zeros become holes by not
 * being written); for `qcow2` the raw file is converted with `qemu-img convert` in finish() and
 * removed. abort() removes every file this restore created.
 */
import {open, rm, stat, type FileHandle} from 'node:fs/promises';
import {join} from 'node:path';
import {LocalRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError, explainIoError} from '../../util/errors.js';
import type {DiskSink, VmRestore} from '../types.js';

class RawFileSink implements DiskSink {
  readonly maxParallelWrites = 4;
  readonly maxWriteSize = 32 * 2 ** 20;
  private constructor(readonly key: string, readonly size: number, readonly path: string, private fh: FileHandle) {}

  static async create(key: string, size: number, path: string): Promise<RawFileSink> {
    let fh: FileHandle;
    try {
      // 'wx': never overwrite a file the administrator already has.
      fh = await open(path, 'wx', 0o600);
      await fh.truncate(size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UserError(`The file ${path} already exists.`, {hint: 'Choose another directory or move the file away.', exitCode: ExitCode.invalidInput});
      }
      throw explainIoError(err, path, 'creating a restored disk image');
    }
    return new RawFileSink(key, size, path, fh);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset + data.length > this.size) throw new RangeError(`write beyond disk ${this.key}`);
    try {
      let done = 0;
      while (done < data.length) done += (await this.fh.write(data, done, data.length - done, offset + done)).bytesWritten;
    } catch (err) {
      throw explainIoError(err, this.path, 'writing a restored disk image');
    }
  }

  async zero(offset: number, length: number): Promise<void> {
    // Nothing to write: the file was created sparse (truncate) and a restore writes every range
    // once, so a zero range is already a hole that reads as zeros.
    if (offset < 0 || offset + length > this.size) throw new RangeError(`zero beyond disk ${this.key}`);
  }

  async flush(): Promise<void> {
    await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

export async function openFileRestore(
  disks: {key: string; name: string; size: number}[],
  directory: string,
  format: 'qcow2' | 'raw',
): Promise<VmRestore> {
  try {
    if (!(await stat(directory)).isDirectory()) throw Object.assign(new Error('not a directory'), {code: 'ENOTDIR'});
  } catch (err) {
    throw new UserError(`The restore directory ${directory} does not exist or is not a directory.`, {
      hint: 'Create it first or choose another directory.', exitCode: ExitCode.invalidInput, cause: err,
    });
  }
  const created: string[] = [];
  const sinks: RawFileSink[] = [];
  const safe = (s: string) => s.replace(/[/\0]/g, '_');
  try {
    for (const d of disks) {
      const base = join(directory, `${safe(d.name)}-${safe(d.key)}`);
      const sink = await RawFileSink.create(d.key, d.size, format === 'raw' ? `${base}.raw` : `${base}.raw.part`);
      created.push(sink.path);
      sinks.push(sink);
    }
  } catch (err) {
    for (const s of sinks) await s.close();
    for (const p of created) await rm(p, {force: true});
    throw err;
  }
  return {
    sinks,
    async finish() {
      const files: string[] = [];
      for (const s of sinks) {
        await s.flush();
        await s.close();
        if (format === 'raw') {
          files.push(s.path);
        } else {
          const out = s.path.replace(/\.raw\.part$/, '.qcow2');
          created.push(out);
          await new LocalRunner().run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', s.path, out]);
          await rm(s.path, {force: true});
          files.push(out);
        }
      }
      return {files};
    },
    async abort() {
      for (const s of sinks) await s.close();
      for (const p of created) await rm(p, {force: true});
    },
  };
}
