/**
 * File-level restore: the files of a restore point, read without restoring its disks. The
 * point's disks are served read-only over NBD from the repository (transports/nbd/server.ts, on
 * a unix socket in a private directory), and libguestfs reads the file systems on them
 * (transports/guestfish.ts). While open, the point is held (prune keeps it, forget refuses it).
 *
 * copyOut() brings files and directories back with their owners (numeric), modes, times,
 * symbolic links, extended attributes and ACLs: a directory through `tar-out` into GNU tar on the
 * appliance (via a FIFO: nothing is staged), a file through `download`. It never overwrites: a
 * destination that exists is refused.
 */
import {execa} from 'execa';
import {chmod, chown, lchown, lstat, lutimes, mkdir, rename, rm, symlink, utimes} from 'node:fs/promises';
import {join, posix} from 'node:path';
import {isNvramDisk} from '../platforms/image/plain-file.js';
import type {Repository, RestorePointSummary} from '../repository/index.js';
import {GuestFs, guestPath, type GuestEntry} from '../transports/guestfish.js';
import {NbdServer} from '../transports/nbd/server.js';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';

export type {GuestEntry, GuestLayout} from '../transports/guestfish.js';

export interface RestorePointFiles {
  readonly fs: GuestFs;
  readonly point: RestorePointSummary;
  /** The disks read (keys). */
  readonly disks: string[];
  close(): Promise<void>;
}

/** Opens the file systems of a restore point's disks (all but a UEFI variable store, or the chosen ones). */
export async function openRestorePointFiles(opts: {
  repository: Repository;
  restorePointId: string;
  disks?: string[];
  filesystem?: string;
  /** A private directory (0700) of this session: the NBD socket, listings, FIFOs. */
  scratchDir: string;
  env?: NodeJS.ProcessEnv;
}): Promise<RestorePointFiles> {
  const point = await opts.repository.openRestorePoint(opts.restorePointId);
  const all = point.summary.disks.filter((d) => !isNvramDisk(d));
  const chosen = opts.disks?.length ? point.summary.disks.filter((d) => opts.disks!.includes(d.key)) : all;
  const unknown = (opts.disks ?? []).filter((k) => !point.summary.disks.some((d) => d.key === k));
  if (unknown.length) {
    throw new UserError(`Restore point ${point.summary.id} has no disk ${unknown.join(', ')}.`, {exitCode: ExitCode.notFound, hint: `Its disks: ${point.summary.disks.map((d) => d.key).join(', ')}.`});
  }
  if (chosen.length === 0) throw new UserError(`Restore point ${point.summary.id} has no disk to read files from.`, {exitCode: ExitCode.notFound});
  const hold = await opts.repository.holdRestorePoint(point.summary.id, 'a file-level restore');
  const exports = [];
  for (const d of chosen) {
    const reader = await point.openDisk(d.key);
    exports.push({name: d.key, source: reader, preferredBlockSize: reader.chunkSize});
  }
  const server = new NbdServer({exports});
  const socket = join(opts.scratchDir, 'nbd.sock');
  let fs: GuestFs | undefined;
  try {
    await server.listenUnix(socket);
    fs = await GuestFs.open({drives: chosen.map((d) => ({exportName: d.key, socket})), filesystem: opts.filesystem, scratchDir: opts.scratchDir, env: opts.env});
  } catch (err) {
    await server.close();
    await hold.release();
    throw err;
  }
  const opened = fs;
  return {
    fs: opened,
    point: point.summary,
    disks: chosen.map((d) => d.key),
    async close() {
      await opened.close();
      await server.close();
      await hold.release();
    },
  };
}

/** "drwxr-xr-x" for a mode. */
export function modeString(e: Pick<GuestEntry, 'mode' | 'type'>): string {
  const t = e.type === 'dir' ? 'd' : e.type === 'link' ? 'l' : e.type === 'file' ? '-' : '?';
  const m = e.mode;
  const rwx = (shift: number, special: number, ch: string) =>
    `${m & (4 << shift) ? 'r' : '-'}${m & (2 << shift) ? 'w' : '-'}${m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? 'x' : '-'}`;
  return t + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

export interface CopyOutResult {
  /** What was written, one per path asked for. */
  copied: {path: string; to: string; type: GuestEntry['type']}[];
  /** Paths skipped (devices, sockets, FIFOs). */
  skipped: string[];
}

/** The name a guest path lands under in the destination directory. */
export function destinationName(p: string): string {
  return p === '/' ? 'root' : posix.basename(p);
}

async function assertDirectory(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UserError(`${dir} is not a directory on this appliance.`, {hint: 'Create it first, or choose an existing directory.', exitCode: ExitCode.notFound});
}

/** What copyOut would refuse, told before libguestfs starts (it takes a while): no directory, two paths of one name, a name already there. */
export async function checkDestinations(paths: string[], to: string): Promise<void> {
  await assertDirectory(to);
  const names = new Set<string>();
  for (const p of paths) {
    const name = destinationName(guestPath(p));
    if (names.has(name)) throw new UserError(`Two of the paths would both land as ${join(to, name)}.`, {hint: 'Copy them into different directories (one command each).', exitCode: ExitCode.usage});
    names.add(name);
    if (await lstat(join(to, name)).then(() => true, () => false)) {
      throw new UserError(`${join(to, name)} already exists; files are never restored over existing ones.`, {hint: 'Choose an empty directory (--to), or move that one aside.', exitCode: ExitCode.invalidInput});
    }
  }
}

/** Copies guest paths into `toDir` (which must exist), each as toDir/<its name>; refuses to overwrite. */
export async function copyOut(files: RestorePointFiles, paths: string[], toDir: string, scratchDir: string): Promise<CopyOutResult> {
  await assertDirectory(toDir);
  const result: CopyOutResult = {copied: [], skipped: []};
  for (const raw of paths) {
    const p = guestPath(raw);
    const e = await files.fs.stat(p);
    const name = destinationName(p);
    const to = join(toDir, name);
    if (await lstat(to).then(() => true, (err: unknown) => errnoCode(err) !== 'ENOENT')) {
      throw new UserError(`${to} already exists; files are never restored over existing ones.`, {hint: 'Choose an empty directory (--to), or move that one aside.', exitCode: ExitCode.invalidInput});
    }
    if (e.type === 'dir') {
      await mkdir(to, {mode: 0o700});
      const fifo = join(scratchDir, `tar-${Date.now().toString(36)}`);
      await execa('mkfifo', ['-m', '0600', '--', fifo]);
      try {
        // GNU tar restores "./" (the directory itself), owners (numeric), modes, times, xattrs, ACLs;
        // --ignore-zeros: it reads to the end of the stream (it would otherwise stop at the end-of-archive
        // blocks and leave guestfish writing the record's padding into a broken pipe).
        const tar = execa('tar', ['-x', '--ignore-zeros', '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '--acls', '-f', fifo, '-C', to], {reject: false, stdin: 'ignore'});
        const [t, out] = await Promise.allSettled([tar, files.fs.tarOut(p, fifo)]);
        // When tar stops reading, guestfish only sees a broken pipe: tar's own words come first.
        const tarResult = t.status === 'fulfilled' ? t.value : undefined;
        if (tarResult && tarResult.exitCode !== 0) {
          throw new UserError(`Extracting ${p} into ${to} failed: ${String(tarResult.stderr).trim().split('\n').slice(-3).join(' ')}`, {exitCode: ExitCode.ioFailed});
        }
        if (out.status === 'rejected') throw out.reason;
      } finally {
        await rm(fifo, {force: true});
      }
    } else if (e.type === 'file') {
      const tmp = `${to}.vmbackup-${process.pid}.tmp`;
      try {
        await files.fs.download(p, tmp);
        await chown(tmp, e.uid, e.gid);
        await chmod(tmp, e.mode & 0o7777);
        await utimes(tmp, e.atimeMs / 1000, e.mtimeMs / 1000);
        await rename(tmp, to);
      } catch (err) {
        await rm(tmp, {force: true});
        throw err;
      }
    } else if (e.type === 'link') {
      await symlink(e.target ?? '', to);
      await lchown(to, e.uid, e.gid);
      await lutimes(to, e.atimeMs / 1000, e.mtimeMs / 1000);
    } else {
      result.skipped.push(p);
      continue;
    }
    result.copied.push({path: p, to, type: e.type});
  }
  return result;
}
