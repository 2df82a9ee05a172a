/**
 * Lock files and writer registrations: owner records that another process can judge.
 *
 * A lock is a file created with O_EXCL holding {pid, pidStart, host, since, purpose}. It is
 * stale when its host is this host and that pid is gone (or now belongs to another process:
 * pidStart is the kernel's start time of the process, from /proc/<pid>/stat). A stale lock is
 * taken over by renaming it aside first, so two processes that both find it stale cannot both
 * win. Locks of other hosts are never judged stale: the repository may sit on shared storage.
 */
import {hostname} from 'node:os';
import {readFileSync} from 'node:fs';
import {open, rename, unlink} from 'node:fs/promises';
import {randomBytes} from 'node:crypto';
import {setTimeout as sleep} from 'node:timers/promises';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import {ioError, readHead} from './fsio.js';
import {leaseAlive, SELF_LEASE} from '../util/process-lease.js';
import type {Lock, Owner} from './storage/backend.js';

export type {Owner};

const SELF_START = SELF_LEASE.pidStart;
const HOST = SELF_LEASE.host;

export function selfOwner(purpose: string, since = Date.now()): Owner {
  return {pid: process.pid, pidStart: SELF_START, host: HOST, since, purpose};
}

export function isAlive(o: Owner): boolean {
  return leaseAlive(o);
}

export function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (typeof o.pid !== 'number' || typeof o.since !== 'number') return undefined;
    return {pid: o.pid, pidStart: String(o.pidStart ?? ''), host: String(o.host ?? ''), since: o.since, purpose: String(o.purpose ?? '')};
  } catch {
    return undefined;
  }
}

export async function readOwner(path: string): Promise<Owner | undefined | 'missing'> {
  try {
    return parseOwner(await readHead(path));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'missing';
    throw ioError(err, path, 'reading a lock file');
  }
}

export type {Lock};

async function tryCreate(path: string, owner: Owner): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw ioError(err, path, 'creating a lock file');
  }
  try {
    await fh.writeFile(JSON.stringify(owner));
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw ioError(err, path, 'writing a lock file');
  }
  await fh.close();
  return true;
}

/** Removes `path` if it still holds the stale owner seen; true when the caller may retry at once. */
async function breakStale(path: string, seen: string): Promise<boolean> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return true;
    throw ioError(err, path, 'removing a stale lock');
  }
  // Someone may have replaced the stale lock by a live one between our read and our rename.
  const moved = await readHead(aside).catch(() => '');
  if (moved !== seen) {
    await rename(aside, path).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

/**
 * Takes the lock at `path`, waiting up to timeoutMs for a live owner; throws UserError(locked)
 * that says who holds it. `what` describes the lock for messages ("backup of VM web01").
 */
export async function acquireLock(path: string, purpose: string, opts: {timeoutMs: number; what: string; hint: string; signal?: AbortSignal}): Promise<Lock> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 20;
  for (;;) {
    if (opts.signal?.aborted) {
      throw new UserError(`Stopped while waiting for the ${opts.what}.`, {hint: 'Nothing was written.', exitCode: ExitCode.cancelled});
    }
    const owner = selfOwner(purpose);
    if (await tryCreate(path, owner)) {
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch((err: unknown) => {
            if (errnoCode(err) !== 'ENOENT') throw ioError(err, path, 'releasing a lock');
          });
        },
      };
    }
    let text = '';
    try {
      text = await readHead(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw ioError(err, path, 'reading a lock file');
    }
    const held = parseOwner(text);
    // An unreadable lock file is a half-written one from a crash during tryCreate: treat as stale.
    if (held === undefined || !isAlive(held)) {
      if (await breakStale(path, text)) continue;
    }
    if (Date.now() >= deadline) {
      const by = held ? `process ${held.pid} on ${held.host} (${held.purpose}) since ${new Date(held.since).toISOString()}` : 'another process';
      throw new UserError(`The ${opts.what} is locked by ${by} (${path}).`, {hint: opts.hint, exitCode: ExitCode.locked});
    }
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 500);
  }
}
