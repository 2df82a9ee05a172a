/**
 * The image-files restore target, the same for every platform: each chosen disk of a restore
 * point becomes a new image file (qcow2 or raw) in a directory on the appliance, and a UEFI
 * variable store (the `nvram` disk of a libvirt VM) a plain `.fd` file beside them.
 *
 * planFilesRestore() is pure: what will be created, under which names — the list a console or
 * CLI shows before the restore starts. openFilesRestore() carries a plan out: it refuses a file
 * that exists (nothing is ever overwritten), creates the directory when missing, writes images
 * through ImageFileSink (qemu-img create + a writable qemu-nbd export, so the engine's zero runs
 * cost nothing on the fresh image) and the varstore through a memory sink; finish() closes every
 * image and writes the varstore, abort() removes every file this restore created.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {LocalRunner, type CommandRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {ImageFileSink, refuseExisting} from '../image/image-file.js';
import {isNvramDisk, MemoryDiskSink, NVRAM_KEY, writePlainFile} from '../image/plain-file.js';
import {formatBytes} from '../../util/format.js';
import type {DiskSink, Logger, RestorePlan, RestoreSource, VmRestore} from '../types.js';
import {chooseDisks} from './choose-disks.js';

export interface FilesPlan {
  directory: string;
  files: {key: string; size: number; path: string; kind: 'qcow2' | 'raw' | 'plain'}[];
}

/** A name part safe in a path and in a shell: letters (any script), digits, ".", "_", "-". */
export function fileSafe(name: string): string {
  return name.replace(/[^\p{L}\p{N}._-]+/gu, '_').slice(0, 80) || 'vm';
}

/** The files a restore of `disks` (all when undefined) to `directory` creates: "<VM>-<disk key>.<format>". */
export function planFilesRestore(source: RestoreSource, target: {directory: string; format: 'qcow2' | 'raw'}, disks?: readonly string[]): FilesPlan {
  if (!target.directory.startsWith('/')) {
    throw new UserError(`The restore directory ${JSON.stringify(target.directory)} is not an absolute path.`, {exitCode: ExitCode.invalidInput});
  }
  const vm = fileSafe(source.vmName);
  return {
    directory: target.directory,
    files: chooseDisks(source.disks, disks, `The restore point of ${source.vmName}`).map((d) =>
      isNvramDisk(d)
        ? {key: d.key, size: d.size, path: join(target.directory, `${vm}-${NVRAM_KEY}.fd`), kind: 'plain' as const}
        : {key: d.key, size: d.size, path: join(target.directory, `${vm}-${fileSafe(d.key)}.${target.format}`), kind: target.format},
    ),
  };
}

/** The plan as the administrator reads it; refuses, as the restore would, a file that exists already. */
export async function describeFilesPlan(plan: FilesPlan, format: 'qcow2' | 'raw', runner: CommandRunner = new LocalRunner()): Promise<RestorePlan> {
  for (const f of plan.files) await refuseExisting(runner, f.path);
  return {
    target: `${format} image files in ${plan.directory} on this appliance`,
    creates: plan.files.map((f) => (f.kind === 'plain' ? `UEFI variable store ${f.path}` : `disk ${f.key}: ${f.kind} image ${f.path} (${formatBytes(f.size)})`)),
    replaces: [],
    notes: [],
  };
}

export async function openFilesRestore(plan: FilesPlan, opts: {log: Logger; runner?: CommandRunner}): Promise<VmRestore> {
  const runner = opts.runner ?? new LocalRunner();
  await runner.run(['mkdir', '-p', '--', plan.directory]);
  for (const f of plan.files) await refuseExisting(runner, f.path);
  // A short private directory for the qemu-nbd sockets (unix socket paths are limited to 108 bytes).
  const scratch = await mkdtemp(join(tmpdir(), 'vmb-restore-'));
  const images: ImageFileSink[] = [];
  const plain: {sink: MemoryDiskSink; path: string}[] = [];
  const created: string[] = [];
  const removeAll = async () => {
    await Promise.allSettled(images.map((s) => s.close()));
    for (const p of [...images.map((s) => s.path), ...created]) await runner.run(['rm', '-f', '--', p], {allowFailure: true}).catch(() => undefined);
    await rm(scratch, {recursive: true, force: true});
  };
  const sinks: DiskSink[] = [];
  try {
    for (const f of plan.files) {
      if (f.kind === 'plain') {
        const sink = new MemoryDiskSink(f.key, f.size);
        plain.push({sink, path: f.path});
        sinks.push(sink);
        continue;
      }
      const sink = await ImageFileSink.create({runner, path: f.path, format: f.kind, size: f.size, key: f.key, scratchDir: scratch});
      images.push(sink);
      sinks.push(sink);
    }
  } catch (err) {
    await removeAll();
    throw err;
  }
  let done = false;
  return {
    sinks,
    async finish() {
      try {
        await Promise.all(images.map((s) => s.close()));
        for (const p of plain) {
          await writePlainFile(runner, p.path, p.sink.data, {exclusive: true, created: () => created.push(p.path)});
          opts.log({severity: 'info', code: 'nvram-written', message: `UEFI variable store written to ${p.path} (${p.sink.size} bytes)`, disk: p.sink.key});
        }
      } catch (err) {
        done = true;
        await removeAll();
        throw err;
      }
      done = true;
      await rm(scratch, {recursive: true, force: true});
      return {files: plan.files.map((f) => f.path)};
    },
    async abort() {
      if (done) return;
      done = true;
      await removeAll();
    },
  };
}
