/**
 * A lowdb adapter that survives crashes and power loss: write a temp file (mode 0600), fsync
 * it, rename it over the target, fsync the directory. A reader therefore sees the old content
 * or the new, never a torn file.
 *
 * Why not lowdb's JSONFile / JSONFilePreset: the preset swaps to an in-memory adapter when
 * NODE_ENV is 'test' (vitest sets it), and steno renames without any fsync, so after a power
 * loss the renamed file can be empty (docs/reference/ecosystem.md P4/P5).
 */
import {randomBytes} from 'node:crypto';
import {open, readFile, rename, rm} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import type {Adapter} from 'lowdb';
import {ExitCode, UserError, errnoCode, explainIoError} from '../util/errors.js';

export class DurableJsonFile<T> implements Adapter<T> {
  constructor(readonly path: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw explainIoError(err, this.path, 'reading the configuration');
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new UserError(`The file ${this.path} is not valid JSON.`, {
        hint: 'It was changed by hand or damaged. Restore it from a copy, or move it aside to start with an empty configuration (restore points in the repositories are not affected).',
        exitCode: ExitCode.corrupt,
        cause: err,
      });
    }
  }

  async write(data: T): Promise<void> {
    const dir = dirname(this.path);
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(data, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      // The rename is only durable once the directory entry is on disk.
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      await rm(tmp, {force: true}).catch(() => {});
      throw explainIoError(err, this.path, 'saving the configuration');
    }
  }
}
