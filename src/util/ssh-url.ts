/**
 * Addresses of repositories on another machine reached over SSH — another vmbackup appliance
 * that serves a directory with `vmbackup repo serve` (src/repository/storage/ssh.ts):
 * `ssh://USER@HOST[:PORT]/ABSOLUTE/PATH`. A pure parser: the configuration validates with it, the
 * backend connects with it. Every part is checked like a name from outside: the user and host as
 * ssh takes them without reading an option, the path as plain names (no '.', '..' or control
 * characters), so that nothing in it can reach a shell or another directory on the far side.
 */
import {ExitCode, UserError} from './errors.js';

export interface SshLocation {
  user: string;
  host: string;
  port: number;
  /** The repository's directory on the far machine: absolute, normalized (no trailing '/'). */
  path: string;
}

export function isSshUrl(text: string): boolean {
  return /^ssh:\/\//i.test(text.trim());
}

const SEGMENT = /^[A-Za-z0-9._+=@,-]{1,255}$/;

/** The location of an ssh:// address, undefined for another kind of path; a UserError for a bad one. */
export function parseSshUrl(text: string): SshLocation | undefined {
  const t = text.trim();
  if (!isSshUrl(t)) return undefined;
  const m = /^ssh:\/\/([^@/]+)@(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+)(?::(\d{1,5}))?(\/.*)$/i.exec(t);
  if (!m) throw bad(text, 'write it as ssh://USER@HOST[:PORT]/ABSOLUTE/PATH');
  const [, user, host, port, path] = m as unknown as [string, string, string, string | undefined, string];
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(user)) throw bad(text, `"${user}" is not a user name (letters, digits, _ . -)`);
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})$/.test(host)) throw bad(text, `"${host}" is not a host name or address`);
  const portNumber = port === undefined ? 22 : Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) throw bad(text, `${port} is not a port (1–65535)`);
  const segments = path.replace(/\/+$/, '').split('/').slice(1);
  if (segments.length === 0) throw bad(text, 'the path must name a directory below / on the far machine');
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..') throw bad(text, `the path segment "${s}" is not allowed (letters, digits and . _ + = @ , -)`);
  }
  return {user, host: host.replace(/^\[|\]$/g, ''), port: portNumber, path: `/${segments.join('/')}`};
}

/** The canonical address of a location (as messages and the configuration show it). */
export function sshUrl(l: SshLocation): string {
  const host = l.host.includes(':') ? `[${l.host}]` : l.host;
  return `ssh://${l.user}@${host}${l.port === 22 ? '' : `:${l.port}`}${l.path}`;
}

function bad(text: string, why: string): UserError {
  return new UserError(`"${text}" is not a valid SSH repository address: ${why}.`, {
    hint: 'An SSH repository is written ssh://USER@HOST[:PORT]/ABSOLUTE/PATH, e.g. ssh://vmbackup-copy@offsite.example.com/srv/vmbackup/copy.',
    exitCode: ExitCode.invalidInput,
  });
}
