/**
 * A small disk kept as a plain file, not an image: the UEFI variable store (NVRAM) a libvirt VM's
 * restore point carries as its disk `nvram` (details.role 'nvram'). A restore collects its bytes
 * in memory (MemoryDiskSink) and writes the file in one go through a command runner, so on the
 * appliance or on a host over SSH: mode 0600, binary-safe through dd's stdin.
 */
import {randomBytes} from 'node:crypto';
import type {CommandRunner} from '../../transports/command-runner.js';
import type {DiskSink} from '../types.js';

/** The key of the varstore disk in a restore point. */
export const NVRAM_KEY = 'nvram';
/** A varstore larger than this is not a varstore: it is neither read into memory nor restored. */
export const MAX_PLAIN_FILE_BYTES = 64 * 1024 * 1024;

/** True for the restore point disk that holds a UEFI variable store (restored as a plain file). */
export function isNvramDisk(d: {key: string; details?: Record<string, unknown>}): boolean {
  return d.key === NVRAM_KEY || d.details?.['role'] === 'nvram';
}

/** A sink that collects a small disk (the varstore) in memory; the restore writes the file in one go. */
export class MemoryDiskSink implements DiskSink {
  readonly maxParallelWrites = 1;
  readonly maxWriteSize = 8 * 1024 * 1024;
  readonly startsZeroed = true;
  readonly data: Buffer;

  constructor(
    readonly key: string,
    readonly size: number,
  ) {
    if (size > MAX_PLAIN_FILE_BYTES) throw new Error(`${key}: ${size} bytes is too large for a UEFI variable store (at most ${MAX_PLAIN_FILE_BYTES})`);
    this.data = Buffer.alloc(size);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.check(offset, data.length);
    data.copy(this.data, offset);
  }

  async zero(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    this.data.fill(0, offset, offset + length);
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) throw new Error(`${this.key}: write of ${length} bytes at ${offset} is outside its ${this.size} bytes`);
  }
}

/**
 * Writes `data` as the file `path` on the runner's machine, mode 0600, binary-safe (dd reads the
 * bytes from stdin). `exclusive`: fail when the file exists (never overwrite something that is
 * not ours); `created` is called once the file exists (the caller removes it on failure).
 * Otherwise an existing varstore is replaced atomically: the bytes go to a temporary file beside
 * it, renamed over it only when complete, so a failed write leaves the old varstore as it was.
 */
export async function writePlainFile(runner: CommandRunner, path: string, data: Buffer, opts: {exclusive: boolean; created?: () => void}): Promise<void> {
  if (opts.exclusive) {
    await fill(runner, path, data, true);
    opts.created?.();
    await fill(runner, path, data, false);
    return;
  }
  const tmp = `${path}.vmbackup-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fill(runner, tmp, data, true);
    await fill(runner, tmp, data, false);
    await runner.run(['mv', '-f', '-T', '--', tmp, path]);
  } catch (err) {
    await runner.run(['rm', '-f', '--', tmp], {allowFailure: true}).catch(() => undefined);
    throw err;
  }
}

/** create: an empty file, exclusively, made 0600 (the bytes never sit in a file others can read); else the bytes, checked by size. */
async function fill(runner: CommandRunner, path: string, data: Buffer, create: boolean): Promise<void> {
  if (create) {
    await runner.run(['dd', 'if=/dev/null', `of=${path}`, 'conv=excl', 'status=none']);
    await runner.run(['chmod', '0600', '--', path]);
    return;
  }
  await runner.run(['dd', `of=${path}`, 'bs=1M', 'iflag=fullblock', 'conv=fsync', 'status=none'], {input: data});
  const check = await runner.run(['stat', '-c', '%s', '--', path]);
  if (Number(check.stdout.trim()) !== data.length) {
    throw new Error(`writing the UEFI variable store ${path} on ${runner.where} left ${check.stdout.trim()} bytes instead of ${data.length}`);
  }
}
