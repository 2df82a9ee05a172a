/**
 * A read-only look into a disk's file systems with libguestfs (`guestfish`, Debian
 * libguestfs-tools): partitions (MBR, GPT), LVM, ext2/3/4, xfs, btrfs, NTFS … — whatever the
 * libguestfs appliance's kernel and tools read. We never parse a file system ourselves.
 *
 * One guestfish process per session, its commands written to its stdin and each answer read from
 * its stdout up to a marker line (`echo <marker>`): the appliance (a small VM, ~15–20 s to start
 * under TCG) starts once and then answers in about a millisecond per call. guestfish reading a
 * pipe is in script mode: the first failing command ends it with `libguestfs: error: …` on
 * stderr, which becomes the session's error. Closing stdin ends guestfish and its appliance, so a
 * session whose owner dies leaves nothing running.
 *
 * Names from the guest are hostile: they come back NUL-separated (`ls0`), are handed to guestfish
 * only inside double quotes with every byte outside printable ASCII (and `"`, `\`) escaped as
 * \xHH, and are never split on newlines. Drives are NBD exports on unix sockets (`vmbackup export`
 * of a restore point), added read-only.
 */
import {randomBytes} from 'node:crypto';
import {readFile, rm} from 'node:fs/promises';
import {join, posix} from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {ExitCode, UserError} from '../util/errors.js';

export interface GuestEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  /** Permission bits and the file type bits, as st_mode. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, ISO 8601. */
  mtime: string;
  mtimeMs: number;
  atimeMs: number;
  /** A symbolic link's target. */
  target?: string;
}

export interface GuestMount {
  mountpoint: string;
  device: string;
  type?: string;
}

export interface GuestLayout {
  /** 'os': the guest's own layout (inspection found an OS); 'filesystems': each file system under /<device>. */
  kind: 'os' | 'filesystem' | 'filesystems';
  /** The operating system inspection found (product name), for 'os'. */
  os?: string;
  mounts: GuestMount[];
  /** Every file system guestfish saw (device → type). */
  filesystems: {device: string; type: string}[];
}

/** A drive: an NBD export on a unix socket. */
export interface GuestDrive {
  exportName: string;
  socket: string;
}

/** `s` as one double-quoted guestfish argument, every unusual byte escaped. */
export function gfQuote(s: string | Buffer): string {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  let out = '"';
  for (const b of bytes) {
    if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** An absolute guest path, normalized, without a trailing slash (except "/"). */
export function guestPath(p: string): string {
  if (!p.startsWith('/') || p.includes('\0')) {
    throw new UserError(`A path in the guest starts with /: '${p}'.`, {exitCode: ExitCode.usage});
  }
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const S_IFMT = 0o170000;
function typeOf(mode: number): GuestEntry['type'] {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'link';
    default:
      return 'other';
  }
}

/** The `st_*` blocks of one or more lstatns answers. */
function parseStats(text: string): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  let cur: Record<string, number> | undefined;
  for (const line of text.split('\n')) {
    const m = /^st_([a-z0-9_]+): (-?\d+)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === 'dev') out.push((cur = {}));
    if (cur) cur[m[1]!] = Number(m[2]);
  }
  return out;
}

function entryOf(name: string, st: Record<string, number>): GuestEntry {
  const mtimeMs = (st.mtime_sec ?? 0) * 1000 + Math.floor((st.mtime_nsec ?? 0) / 1e6);
  return {
    name,
    type: typeOf(st.mode ?? 0),
    size: st.size ?? 0,
    mode: st.mode ?? 0,
    uid: st.uid ?? 0,
    gid: st.gid ?? 0,
    mtime: new Date(mtimeMs).toISOString(),
    mtimeMs,
    atimeMs: (st.atime_sec ?? 0) * 1000 + Math.floor((st.atime_nsec ?? 0) / 1e6),
  };
}

/** The last `libguestfs: error: …` line (guestfish's advice to enable debugging is not the error). */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n');
  const e = lines.filter((l) => /libguestfs: error: /.test(l)).pop() ?? lines.filter((l) => /error/i.test(l) && !/enable debugging/.test(l)).pop() ?? '';
  return e.replace(/^.*libguestfs: error: /, '').trim();
}

/** What a failed guestfish start means, in the administrator's words. */
function launchError(stderr: string): UserError {
  const line = errorLine(stderr);
  if (/supermin exited/.test(stderr)) {
    return new UserError(`libguestfs cannot build its appliance (${line}).`, {
      hint: 'It boots a Linux kernel of this machine: check that one is installed (apt install linux-image-amd64), and run libguestfs-test-tool for details.',
      exitCode: ExitCode.platformFailed,
    });
  }
  if (/suitable kernel|find.*kernel/i.test(stderr)) {
    return new UserError('libguestfs cannot start its appliance: it found no Linux kernel on this machine.', {
      hint: 'Install one (apt install linux-image-amd64), or point SUPERMIN_KERNEL and SUPERMIN_MODULES at one; then try again.',
      exitCode: ExitCode.platformFailed,
    });
  }
  return new UserError(`libguestfs could not read the disk: ${line}`, {hint: 'The disk may hold no file system libguestfs knows, or be damaged.', exitCode: ExitCode.platformFailed});
}

export class GuestFs {
  private out = '';
  private err = '';
  private exited = false;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private readonly marker = `@@vmbackup-${randomBytes(8).toString('hex')}@@`;
  private wake: (() => void) | undefined;
  /** guestfish itself could not be run (not installed). */
  private missing = false;
  layout!: GuestLayout;

  private constructor(
    private readonly child: ResultPromise,
    private readonly scratch: string,
  ) {
    child.stdout!.on('data', (d: Buffer) => {
      this.out += d.toString('latin1');
      this.wake?.();
    });
    // A guestfish that died mid-write: the write fails (EPIPE) here, the command by its exit.
    child.stdin!.on('error', () => {});
    child.stderr!.on('data', (d: Buffer) => {
      this.err = (this.err + d.toString('utf8')).slice(-16384);
    });
    void child.then(
      (r) => {
        if ((r as {code?: string}).code === 'ENOENT') this.missing = true;
      },
      () => undefined,
    ).finally(() => {
      this.exited = true;
      this.wake?.();
    });
  }

  /**
   * Starts guestfish on the drives, then mounts read-only: `filesystem` alone at / when given;
   * else the guest's own layout when inspection finds an OS; else the only file system at /; else
   * each file system at /<device name> (e.g. /sda1, /vg0-data).
   */
  static async open(opts: {drives: GuestDrive[]; filesystem?: string; scratchDir: string; env?: NodeJS.ProcessEnv}): Promise<GuestFs> {
    let child: ResultPromise;
    try {
      // The direct backend: libguestfs starts its own QEMU (never a libvirt domain the appliance would see).
      child = execa('guestfish', ['--ro'], {stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: false, env: {LIBGUESTFS_BACKEND: 'direct', ...opts.env}});
    } catch (err) {
      throw new UserError(`guestfish could not be started: ${(err as Error).message}`, {hint: 'Install libguestfs-tools (apt install libguestfs-tools).', exitCode: ExitCode.platformFailed});
    }
    const g = new GuestFs(child, opts.scratchDir);
    try {
      const adds = opts.drives.map((d) => `add-drive ${gfQuote(d.exportName)} protocol:nbd ${gfQuote(`server:unix:${d.socket}`)} format:raw readonly:true`);
      await g.cmd([...adds, 'run'], 'launch');
      g.layout = await g.mountAll(opts.filesystem);
      return g;
    } catch (err) {
      await g.close();
      throw err;
    }
  }

  /** Runs command lines; resolves with their stdout (latin1: bytes as they came) up to the marker. */
  private cmd(lines: string[], what = 'a command'): Promise<string> {
    const run = async (): Promise<string> => {
      if (this.exited) throw this.failure(what);
      const mark = `${this.marker}${++this.seq}`;
      const from = this.out.length;
      this.child.stdin!.write(`${lines.join('\n')}\necho ${mark}\n`);
      for (;;) {
        const at = this.out.indexOf(`${mark}\n`, from);
        if (at >= 0) {
          const text = this.out.slice(from, at);
          this.out = this.out.slice(at + mark.length + 1);
          return text;
        }
        if (this.exited) throw this.failure(what);
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private failure(what: string): UserError {
    if (this.missing) return new UserError('guestfish is not installed on this appliance.', {hint: 'Install libguestfs-tools (apt install libguestfs-tools).', exitCode: ExitCode.platformFailed});
    if (what === 'launch') return launchError(this.err);
    const line = errorLine(this.err) || 'guestfish ended';
    return new UserError(`Reading the guest's files failed: ${line}`, {
      exitCode: /No such file or directory/.test(line) ? ExitCode.notFound : ExitCode.platformFailed,
    });
  }

  private async mountAll(only?: string): Promise<GuestLayout> {
    const filesystems = (await this.cmd(['list-filesystems']))
      .split('\n')
      .map((l) => /^(\S+): (.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({device: m[1]!, type: m[2]!.trim()}));
    const mountable = filesystems.filter((f) => !['swap', 'unknown', ''].includes(f.type));
    if (only) {
      const f = filesystems.find((x) => x.device === only);
      if (!f) {
        throw new UserError(`The disk has no file system ${only}.`, {hint: `Its file systems: ${filesystems.map((x) => `${x.device} (${x.type})`).join(', ') || 'none'}.`, exitCode: ExitCode.notFound});
      }
      await this.cmd([`mount-ro ${gfQuote(f.device)} /`]);
      return {kind: 'filesystem', mounts: [{mountpoint: '/', device: f.device, type: f.type}], filesystems};
    }
    const roots = (await this.cmd(['inspect-os'])).split('\n').map((l) => l.trim()).filter(Boolean);
    if (roots.length > 0) {
      const root = roots[0]!;
      const os = (await this.cmd([`inspect-get-product-name ${gfQuote(root)}`])).trim();
      const mounts = (await this.cmd([`inspect-get-mountpoints ${gfQuote(root)}`]))
        .split('\n')
        .map((l) => /^(\/\S*): (\S+)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({mountpoint: m[1]!, device: m[2]!}))
        .sort((a, b) => a.mountpoint.length - b.mountpoint.length);
      // A mount that fails (a file system listed in fstab but unreadable) is left out, not fatal.
      await this.cmd(mounts.map((m) => `-mount-ro ${gfQuote(m.device)} ${gfQuote(m.mountpoint)}`));
      return {kind: 'os', os, mounts, filesystems};
    }
    if (mountable.length === 0) {
      throw new UserError('No file system was found on the disk(s) of this restore point.', {hint: 'Choose another disk (--disk), or restore the disk itself.', exitCode: ExitCode.notFound});
    }
    if (mountable.length === 1) {
      await this.cmd([`mount-ro ${gfQuote(mountable[0]!.device)} /`]);
      return {kind: 'filesystem', mounts: [{mountpoint: '/', device: mountable[0]!.device, type: mountable[0]!.type}], filesystems};
    }
    const mounts = mountable.map((f) => ({mountpoint: `/${f.device.replace(/^\/dev\//, '').replace(/[^A-Za-z0-9._-]/g, '-')}`, device: f.device, type: f.type}));
    await this.cmd(mounts.flatMap((m) => [`mkmountpoint ${gfQuote(m.mountpoint)}`, `-mount-ro ${gfQuote(m.device)} ${gfQuote(m.mountpoint)}`]));
    return {kind: 'filesystems', mounts, filesystems};
  }

  /** One entry (not followed when it is a link). */
  async stat(path: string): Promise<GuestEntry> {
    const p = guestPath(path);
    if ((await this.cmd([`exists ${gfQuote(p)}`])).trim() !== 'true') {
      throw new UserError(`There is no ${p} in this restore point.`, {exitCode: ExitCode.notFound});
    }
    const st = parseStats(await this.cmd([`lstatns ${gfQuote(p)}`]))[0];
    if (!st) throw new UserError(`guestfish said nothing about ${p}.`, {exitCode: ExitCode.platformFailed});
    const e = entryOf(p === '/' ? '/' : posix.basename(p), st);
    if (e.type === 'link') e.target = Buffer.from(await this.cmd([`readlink ${gfQuote(p)}`]), 'latin1').toString('utf8').replace(/\n$/, '');
    return e;
  }

  /** The entries of a directory, sorted by name. */
  async ls(path: string): Promise<GuestEntry[]> {
    const p = guestPath(path);
    if ((await this.cmd([`is-dir ${gfQuote(p)}`])).trim() !== 'true') {
      const exists = (await this.cmd([`exists ${gfQuote(p)}`])).trim() === 'true';
      throw new UserError(exists ? `${p} is not a directory.` : `There is no ${p} in this restore point.`, {exitCode: exists ? ExitCode.invalidInput : ExitCode.notFound});
    }
    const list = join(this.scratch, `ls-${this.seq}`);
    await this.cmd([`ls0 ${gfQuote(p)} ${gfQuote(list)}`]);
    const raw = await readFile(list);
    await rm(list, {force: true});
    const names = [];
    let start = 0;
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === 0) {
        if (i > start) names.push(raw.subarray(start, i));
        start = i + 1;
      }
    }
    if (start < raw.length) names.push(raw.subarray(start));
    const base = Buffer.from(p === '/' ? '/' : `${p}/`, 'utf8');
    const out: GuestEntry[] = [];
    // Batches keep each answer small; every lstatns answers one block.
    for (let i = 0; i < names.length; i += 256) {
      const batch = names.slice(i, i + 256);
      const stats = parseStats(await this.cmd(batch.map((n) => `lstatns ${gfQuote(Buffer.concat([base, n]))}`)));
      if (stats.length !== batch.length) throw new UserError(`guestfish answered ${stats.length} of ${batch.length} entries of ${p}.`, {exitCode: ExitCode.platformFailed});
      batch.forEach((n, j) => out.push(entryOf(n.toString('utf8'), stats[j]!)));
      const links = batch.map((n, j) => ({n, e: out[i + j]!})).filter((x) => x.e.type === 'link');
      for (const l of links) l.e.target = Buffer.from(await this.cmd([`readlink ${gfQuote(Buffer.concat([base, l.n]))}`]), 'latin1').toString('utf8').replace(/\n$/, '');
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A directory as a tar stream (numeric owners, modes, times, xattrs, ACLs) into a local file or FIFO. */
  async tarOut(path: string, to: string): Promise<void> {
    await this.cmd([`tar-out ${gfQuote(guestPath(path))} ${gfQuote(to)} numericowner:true xattrs:true acls:true`]);
  }

  /** A file's content into a local file or FIFO. */
  async download(path: string, to: string): Promise<void> {
    await this.cmd([`download ${gfQuote(guestPath(path))} ${gfQuote(to)}`]);
  }

  /** Ends guestfish (and its appliance). */
  async close(): Promise<void> {
    if (!this.exited) {
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await this.child.catch(() => undefined);
      clearTimeout(timer);
    }
  }
}
