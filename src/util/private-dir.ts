/**
 * Private directories for scratch files on the appliance (docs/security.md): a directory that
 * holds sockets, pid files or files the appliance writes as root must be a real directory (not a
 * symbolic link), owned by the user the appliance runs as, and reachable by nobody else. A local
 * user who created it first (in /tmp, say) must not get root to write through it: such a
 * directory is refused with an error that says so, never used.
 */
import {chmodSync, lstatSync, mkdirSync, mkdtempSync} from 'node:fs';
import {join} from 'node:path';
import {ExitCode, UserError} from './errors.js';

/** Creates `path` (0700) or checks the one that is there; returns it. */
export function ensurePrivateDirSync(path: string): string {
  mkdirSync(path, {recursive: true, mode: 0o700});
  const st = lstatSync(path);
  const uid = process.getuid?.() ?? 0;
  const problem = st.isSymbolicLink()
    ? 'is a symbolic link'
    : !st.isDirectory()
      ? 'is not a directory'
      : st.uid !== uid
        ? `belongs to uid ${st.uid}, not to uid ${uid} that vmbackup runs as`
        : undefined;
  if (problem) {
    throw new UserError(`The scratch directory ${path} ${problem}: someone else created it, so vmbackup does not use it.`, {
      hint: `Check who made it and why, remove it, and run the command again (vmbackup creates it itself, mode 0700).`,
      exitCode: ExitCode.invalidInput,
    });
  }
  // Ours but wider (an older version, an administrator's chmod): tighten it.
  if ((st.mode & 0o077) !== 0) chmodSync(path, 0o700);
  return path;
}

/** A new directory with an unpredictable name (mkdtemp, 0700) inside the private `parent`. */
export function privateTempDirSync(parent: string, prefix: string): string {
  ensurePrivateDirSync(parent);
  return mkdtempSync(join(parent, prefix));
}
