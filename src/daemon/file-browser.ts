/**
 * File-level restore for the console: browsing sessions over a restore point's file systems
 * (engine/guest-files.ts: the point's disks over NBD, read by libguestfs). A session is opened
 * once (libguestfs starts its appliance: seconds with KVM, 15–20 s without), then lists
 * directories in milliseconds and copies chosen paths to a directory on the appliance. It ends
 * when the console closes it, after IDLE_MS without a call, or when the daemon stops; each end
 * stops guestfish and its appliance and releases the restore point's hold.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {copyOut, openRestorePointFiles, type CopyOutResult, type GuestEntry, type RestorePointFiles} from '../engine/guest-files.js';
import type {FileSessionInfo} from '../api/contract.js';
import {ExitCode, UserError} from '../util/errors.js';
import {privateTempDirSync} from '../util/private-dir.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';

/** A browsing session ends after this long without a call. */
export const IDLE_MS = 10 * 60_000;
/** At most this many sessions at once (each is a small VM). */
const MAX_SESSIONS = 4;

interface Session {
  info: FileSessionInfo;
  files: RestorePointFiles;
  scratch: string;
  timer: NodeJS.Timeout;
  busy: number;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v) throw new UserError(`${field}: required`, {exitCode: ExitCode.invalidInput});
  return v;
}

export class FileBrowsers {
  private readonly sessions = new Map<string, Session>();
  private opening = 0;

  constructor(private readonly deps: {resources: Pick<Resources, 'repository'>; log: DaemonLog; idleMs?: number}) {}

  /** Opens a session (resolves once libguestfs has started and mounted the file systems). */
  async open(input: unknown): Promise<FileSessionInfo> {
    const r = (input ?? {}) as Record<string, unknown>;
    const repository = str(r.repository, 'repository');
    const restorePointId = str(r.restorePointId, 'restorePointId');
    if (r.disks !== undefined && (!Array.isArray(r.disks) || r.disks.some((d) => typeof d !== 'string'))) throw new UserError('disks: a list of disk keys', {exitCode: ExitCode.invalidInput});
    if (r.filesystem !== undefined && typeof r.filesystem !== 'string') throw new UserError('filesystem: a device name, e.g. /dev/sda1', {exitCode: ExitCode.invalidInput});
    if (this.sessions.size + this.opening >= MAX_SESSIONS) {
      throw new UserError(`${MAX_SESSIONS} file browsers are open already.`, {hint: 'Close one (or wait: an idle one closes after 10 minutes).', exitCode: ExitCode.locked});
    }
    this.opening++;
    const scratch = privateTempDirSync(join(tmpdir(), `vmbackup-${process.getuid?.() ?? 0}`), 'browse-');
    try {
      const repo = await this.deps.resources.repository(repository);
      const files = await openRestorePointFiles({
        repository: repo,
        restorePointId,
        scratchDir: scratch,
        ...(r.disks ? {disks: r.disks as string[]} : {}),
        ...(typeof r.filesystem === 'string' ? {filesystem: r.filesystem} : {}),
      });
      const id = `files-${randomBytes(6).toString('hex')}`;
      const info: FileSessionInfo = {id, repository, restorePointId, vmName: files.point.vmName, time: files.point.time, disks: files.disks, layout: files.fs.layout};
      const s: Session = {info, files, scratch, busy: 0, timer: setTimeout(() => void this.close(id, 'idle'), this.deps.idleMs ?? IDLE_MS)};
      s.timer.unref();
      this.sessions.set(id, s);
      this.deps.log('info', `file browser ${id} opened on ${files.point.vmName} (${restorePointId})`);
      return info;
    } catch (err) {
      await rm(scratch, {recursive: true, force: true});
      throw err;
    } finally {
      this.opening--;
    }
  }

  /** Runs `fn` on a session, keeping it from the idle timeout meanwhile. */
  private async use<T>(id: string, fn: (s: Session) => Promise<T>): Promise<T> {
    const s = this.sessions.get(id);
    if (!s) throw new UserError('This file browser has ended (closed, or idle for 10 minutes).', {hint: 'Open the restore point again.', exitCode: ExitCode.notFound});
    s.busy++;
    try {
      return await fn(s);
    } finally {
      s.busy--;
      s.timer.refresh();
    }
  }

  ls(id: string, path: string): Promise<{path: string; entries: GuestEntry[]}> {
    return this.use(id, async (s) => ({path, entries: await s.files.fs.ls(path)}));
  }

  get(id: string, input: unknown): Promise<CopyOutResult> {
    const r = (input ?? {}) as Record<string, unknown>;
    if (!Array.isArray(r.paths) || r.paths.length === 0 || r.paths.some((p) => typeof p !== 'string')) throw new UserError('paths: a list of paths in the guest', {exitCode: ExitCode.invalidInput});
    const to = str(r.to, 'to');
    if (!to.startsWith('/')) throw new UserError('to: an absolute directory path on the appliance', {exitCode: ExitCode.invalidInput});
    return this.use(id, async (s) => {
      // The console's destination is made when missing (0700: what lands there may be private).
      await mkdir(to, {recursive: true, mode: 0o700});
      const result = await copyOut(s.files, r.paths as string[], to, s.scratch);
      this.deps.log('info', `file browser ${id}: ${result.copied.map((c) => c.path).join(', ')} copied to ${to}`);
      return result;
    });
  }

  async close(id: string, why: 'asked' | 'idle' | 'stopping' = 'asked'): Promise<{closed: boolean}> {
    const s = this.sessions.get(id);
    if (!s) return {closed: false};
    if (why === 'idle' && s.busy > 0) {
      s.timer.refresh();
      return {closed: false};
    }
    this.sessions.delete(id);
    clearTimeout(s.timer);
    await s.files.close().catch(() => {});
    await rm(s.scratch, {recursive: true, force: true});
    this.deps.log('info', `file browser ${id} closed${why === 'idle' ? ' (idle)' : ''}`);
    return {closed: true};
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, 'stopping')));
  }
}
