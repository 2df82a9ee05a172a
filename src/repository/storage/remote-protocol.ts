/**
 * The stream between the SSH storage backend (ssh.ts, on the appliance that writes) and
 * `vmbackup repo serve` (serve.ts, on the appliance that keeps the repository): frames
 * (util/frames.ts) over the stdin/stdout of one SSH session. Each request names one operation of
 * the storage contract (backend.ts) and gets one reply; many are in flight at once.
 *
 * Appliance → server                               Server → appliance
 *   hello {protocol, path}                           hello {protocol, path, now, host, pid}
 *   q {id, op, …arguments} (+ body: put data)        r {id, found: true} + body: the data of a get
 *                                                    r {id, json: true} + body: the value, as JSON
 *                                                    r {id}: done, no value
 *                                                    r {id, err: {message, hint?, exitCode?}}
 *   cancel {of}   (a lock wait the caller gave up)
 *
 * Both ends distrust the other: the server checks every key (the local backend refuses keys that
 * leave its directory) and serves only the directory it was started for; the appliance checks
 * every reply's shape, sizes and names before it believes it.
 */
import {ExitCode, UserError, type ExitCodeValue} from '../../util/errors.js';

export const REMOTE_PROTOCOL = 1;
/**
 * The largest request the server accepts: an object of 1 GiB (an index of a 32 TiB disk in 1 MiB
 * chunks) plus headers. The appliance accepts a reply only as large as what it asked for allows
 * (a get's `max`) plus REMOTE_HEADROOM: a far side cannot make it buffer more.
 */
export const REMOTE_MAX_FRAME = (1 << 30) + 65536;
export const REMOTE_HEADROOM = 65536;

export const OPS = [
  'get', 'stat', 'list', 'put', 'putIfAbsent', 'append', 'touch', 'delete', 'deleteTree', 'deleteIfOlder', 'rename', 'sync',
  'lock', 'unlock', 'leftovers', 'readLeftover', 'restoreLeftover', 'removeLeftover', 'makeDir', 'space',
] as const;
export type Op = (typeof OPS)[number];

export interface WireError {
  message: string;
  hint?: string;
  exitCode?: number;
}

const EXIT_CODES = new Set<number>(Object.values(ExitCode));

/** An error as the other end will read it (a UserError keeps its hint and exit code). */
export function toWire(err: unknown): WireError {
  if (err instanceof UserError) return {message: err.message, ...(err.hint !== undefined ? {hint: err.hint} : {}), exitCode: err.exitCode};
  return {message: err instanceof Error ? err.message : String(err)};
}

/** The error the far end sent, bounded and checked (an exit code must be one of ours). */
export function fromWire(w: unknown, where: string): Error {
  const o = (typeof w === 'object' && w !== null ? w : {}) as Record<string, unknown>;
  const message = typeof o.message === 'string' ? o.message.slice(0, 4000) : `an error without a message from ${where}`;
  const hint = typeof o.hint === 'string' ? o.hint.slice(0, 4000) : undefined;
  if (typeof o.exitCode === 'number' && EXIT_CODES.has(o.exitCode)) {
    return new UserError(message, {exitCode: o.exitCode as ExitCodeValue, ...(hint !== undefined ? {hint} : {})});
  }
  return new Error(message);
}
