/**
 * Thin file-system helpers for the repository: durable atomic replace, directory fsync, and
 * turning system errors into errors that name the file.
 *
 * Durability rule (docs/repository-format.md "Commit protocol"): a file becomes visible under
 * its final name only after its bytes are on disk (write temp, fsync, rename); a rename is
 * durable only after the directory is fsynced.
 */
import {randomBytes} from 'node:crypto';
import {open, rename, unlink} from 'node:fs/promises';
import {UserError, explainIoError, ExitCode} from '../util/errors.js';

/** Suffix of every temporary file the repository writes; GC removes old ones. */
export const TEMP_MARK = '.tmp-';

export function tempName(path: string): string {
  return `${path}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Wraps an I/O error so that its message names the file; ENOSPC/EACCES/EROFS become UserErrors.
 * `action` reads like "writing a chunk".
 */
export function ioError(err: unknown, path: string, action: string): Error {
  const explained = explainIoError(err, path, action);
  if (explained instanceof UserError) return explained;
  if (explained instanceof Error) {
    const wrapped = new Error(`${explained.message} while ${action} (${path})`, {cause: err});
    (wrapped as {code?: unknown}).code = (explained as {code?: unknown}).code;
    return wrapped;
  }
  return new Error(`I/O error while ${action} (${path}): ${String(explained)}`);
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    throw ioError(err, dir, 'syncing a directory');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Writes `parts` to a temp file next to `path`, fsyncs it, and renames it into place; with
 * `syncDir`, fsyncs that directory after the rename. `beforeRename` lets crash tests stop there.
 */
export async function writeFileAtomic(
  path: string,
  parts: Uint8Array[],
  action: string,
  opts: {syncDir?: string; beforeRename?: () => Promise<void>} = {},
): Promise<void> {
  const tmp = tempName(path);
  let fh;
  try {
    fh = await open(tmp, 'wx', 0o644);
    await fh.writev(parts);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await opts.beforeRename?.();
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw ioError(err, path, action);
  }
  if (opts.syncDir !== undefined) await fsyncDir(opts.syncDir);
}

export function corrupt(file: string, detail: string, hint?: string): UserError {
  return new UserError(`Repository file is damaged: ${file}: ${detail}.`, {
    hint: hint ?? 'Run "vmbackup repo verify <path>" on the repository; the restore points that use this file cannot be restored as they are. The next backup of the VM writes good data again.',
    exitCode: ExitCode.corrupt,
  });
}
