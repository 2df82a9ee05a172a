/**
 * Thin file-system helpers for the repository: durable atomic replace, directory fsync, and
 * turning system errors into errors that name the file.
 *
 * Durability rule (docs/repository-format.md "Commit protocol"): a file becomes visible under
 * its final name only after its bytes are on disk (write temp, fsync, rename); a rename is
 * durable only after the directory is fsynced.
 */
import {randomBytes} from 'node:crypto';
import {lstat, open, rename, unlink} from 'node:fs/promises';
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
  try {
    await writeNewFile(tmp, parts);
    await opts.beforeRename?.();
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(err, path, action);
  }
  if (opts.syncDir !== undefined) await fsyncDir(opts.syncDir);
}

/**
 * Creates `path` (it must not exist), writes `parts` and fsyncs it; a failure leaves the file
 * for the caller to remove. 0600 whatever the umask: a repository holds VM disk contents
 * (docs/security.md).
 */
export async function writeNewFile(path: string, parts: Uint8Array[]): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writev(parts);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function corrupt(file: string, detail: string, hint?: string): UserError {
  return new UserError(`Repository file is damaged: ${file}: ${detail}.`, {
    hint: hint ?? 'Run "vmbackup repo verify <path>" on the repository; the restore points that use this file cannot be restored as they are. The next backup of the VM writes good data again.',
    exitCode: ExitCode.corrupt,
  });
}

/**
 * Reads a whole repository file of at most `max` bytes. A larger file is refused before it is
 * read (a hostile repository must not make the appliance allocate what it likes), and so is a
 * file reached through a symbolic link. Errors name the file.
 */
export async function readFileCapped(path: string, max: number, what: string): Promise<Buffer> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) throw corrupt(path, `the ${what} is a symbolic link; a repository holds plain files only`);
  if (!st.isFile()) throw corrupt(path, `the ${what} is not a plain file`);
  if (st.size > max) throw corrupt(path, `the ${what} is ${st.size} bytes, more than the ${max} bytes such a file can have`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buf.length) {
      const {bytesRead} = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** The first `max` bytes of a small text file (lock files, writer registrations): never more. */
export async function readHead(path: string, max = 64 << 10): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const {bytesRead} = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}
