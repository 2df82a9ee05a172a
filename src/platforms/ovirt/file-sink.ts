/**
 * 'disks-to-files' restore target for oVirt: each disk becomes an image file on the appliance,
 * written through the shared ImageFileSink (qemu-img create + a writable qemu-nbd export).
 *
 * Files are named "<disk name>-<disk id>.<format>" in the chosen directory; an existing file is
 * never overwritten. finish() flushes and closes every sink and returns the files; abort() closes
 * them and removes every file this restore created.
 */
import {mkdtemp, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {LocalRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {ImageFileSink} from '../image-file.js';
import type {VmRestore} from '../types.js';

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
  const runner = new LocalRunner();
  // A short private directory for the qemu-nbd sockets (unix socket paths are limited to 108 bytes).
  const scratch = await mkdtemp(join(tmpdir(), 'vmb-ovirt-restore-'));
  const sinks: ImageFileSink[] = [];
  const safe = (s: string) => s.replace(/[/\0]/g, '_');
  const removeAll = async () => {
    for (const s of sinks) await s.close().catch(() => undefined);
    for (const s of sinks) await rm(s.path, {force: true});
    await rm(scratch, {recursive: true, force: true});
  };
  try {
    for (const d of disks) {
      sinks.push(await ImageFileSink.create({
        runner, path: join(directory, `${safe(d.name)}-${safe(d.key)}.${format}`), format, size: d.size, key: d.key, scratchDir: scratch,
      }));
    }
  } catch (err) {
    await removeAll();
    throw err;
  }
  return {
    sinks,
    async finish() {
      for (const s of sinks) {
        await s.flush();
        await s.close();
      }
      await rm(scratch, {recursive: true, force: true});
      return {files: sinks.map((s) => s.path)};
    },
    abort: removeAll,
  };
}
