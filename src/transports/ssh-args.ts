/**
 * Pure pieces of the SSH transport: the ssh argv for a host, the remote command string, and what
 * an ssh failure means. No I/O here, so every rule has a unit test.
 *
 * Trust rules: BatchMode (never a prompt), StrictHostKeyChecking=yes against the appliance's own
 * known_hosts file only (the global one is ignored), one identity file and nothing else.
 */
import {createHash} from 'node:crypto';
import {shellQuote} from './command-runner.js';
import {ExitCode, UserError} from '../util/errors.js';

export interface SshTarget {
  host: string;
  port?: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** Seconds to wait for the TCP connection (default 15). */
  connectTimeoutSec?: number;
  /**
   * A private (0700) directory for an SSH control socket: commands then share one connection
   * (ControlMaster), which saves a handshake per virsh/qemu-img call. Unset: one connection each.
   */
  controlDir?: string;
}

export function describeTarget(t: SshTarget): string {
  return `${t.user}@${t.host}:${t.port ?? 22}`;
}

/** Rejects values that ssh would read as options or that cannot be a host/user name. */
export function validateTarget(t: SshTarget): void {
  const bad = (what: string, value: string) =>
    new UserError(`The SSH ${what} "${value}" is not valid.`, {
      hint: `Give a plain ${what} (no spaces, not starting with "-").`,
      exitCode: ExitCode.invalidInput,
    });
  if (!/^[A-Za-z0-9._:[\]%-]+$/.test(t.host) || t.host.startsWith('-')) throw bad('host', t.host);
  if (!/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(t.user)) throw bad('user', t.user);
  if (t.port !== undefined && (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)) throw bad('port', String(t.port));
}

/** The options every ssh invocation of the appliance uses (commands and tunnels alike). */
export function sshOptions(t: SshTarget): string[] {
  return [
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', `ConnectTimeout=${t.connectTimeoutSec ?? 15}`,
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=4',
    '-o', 'LogLevel=ERROR',
    '-F', '/dev/null',
    '-i', t.identityFile,
    '-p', String(t.port ?? 22),
    ...(t.controlDir ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlPath(t)}`, '-o', 'ControlPersist=120'] : []),
  ];
}

/**
 * The control socket is keyed by everything that decides trust (host, port, user, key, known_hosts),
 * not by ssh's %C (host, port, user only): a changed known_hosts or key must never reuse a
 * connection that was verified under the old settings.
 */
export function controlPath(t: SshTarget): string {
  const id = createHash('sha256')
    .update(JSON.stringify([t.host, t.port ?? 22, t.user, t.identityFile, t.knownHostsFile]))
    .digest('hex')
    .slice(0, 20);
  return `${t.controlDir}/${id}`;
}

/** `ssh -O exit`: ends a shared master connection (see controlDir). */
export function sshControlExitArgv(t: SshTarget): string[] {
  return ['ssh', ...sshOptions(t), '-O', 'exit', `${t.user}@${t.host}`];
}

/**
 * The remote shell joins ssh's arguments into one string and parses it again, so each argument
 * is single-quoted: spaces, quotes, `;`, `$`, backslashes and unicode arrive as they were.
 */
export function remoteCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * The command runs under `env LC_ALL=C.UTF-8` on the host: the adapter reads virsh's English
 * output (states, job info, messages), which a localized host would translate; UTF-8 keeps
 * unicode names intact (a host without that locale falls back to C, still English).
 */
export function sshCommandArgv(t: SshTarget, argv: readonly string[]): string[] {
  return ['ssh', ...sshOptions(t), `${t.user}@${t.host}`, '--', remoteCommand(['env', 'LC_ALL=C.UTF-8', ...argv])];
}

/** The ciphers of connections that carry bulk data: AES-GCM uses AES-NI, about 1.7x the throughput of chacha20 (docs/reference/libvirt-backup.md §8). */
const BULK_CIPHERS = ['-o', 'Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com'];

/**
 * A command whose stdin/stdout carry bulk data (the worker's stream): a connection of its own,
 * never the shared control master (whose cipher the first command chose, and whose `ssh -O exit`
 * would cut it), with the bulk ciphers.
 */
export function sshStreamArgv(t: SshTarget, argv: readonly string[]): string[] {
  return ['ssh', ...sshOptions({...t, controlDir: undefined}), ...BULK_CIPHERS, `${t.user}@${t.host}`, '--', remoteCommand(['env', 'LC_ALL=C.UTF-8', ...argv])];
}

/** `ssh -N -L local:remote`: forwards a unix socket on the host to one on the appliance. */
export function sshForwardArgv(t: SshTarget, localSocket: string, remoteSocket: string): string[] {
  return [
    'ssh', ...sshOptions(t),
    '-o', 'StreamLocalBindUnlink=yes',
    '-o', 'ExitOnForwardFailure=yes',
    ...BULK_CIPHERS,
    '-N', '-L', `${localSocket}:${remoteSocket}`,
    `${t.user}@${t.host}`,
  ];
}

/** `ssh -N -R remote:local`: a socket on the host whose connections reach a socket on the appliance. */
export function sshReverseForwardArgv(t: SshTarget, remoteSocket: string, localSocket: string): string[] {
  return [
    'ssh', ...sshOptions(t),
    '-o', 'StreamLocalBindUnlink=yes',
    '-o', 'ExitOnForwardFailure=yes',
    ...BULK_CIPHERS,
    // A dead appliance must not leave a socket QEMU waits on for long: the host notices within a minute.
    '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4',
    '-N', '-R', `${remoteSocket}:${localSocket}`,
    `${t.user}@${t.host}`,
  ];
}

export type SshFailure = 'untrusted' | 'auth' | 'unreachable' | 'other';

/** What an ssh exit 255 means, from ssh's own stderr (LC_ALL=C). */
export function classifySshFailure(stderr: string): SshFailure {
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known|host key for .* has changed/i.test(stderr)) {
    return 'untrusted';
  }
  if (/Permission denied|Too many authentication failures|no such identity|Load key .*: (invalid format|No such file)/i.test(stderr)) return 'auth';
  if (/Connection refused|No route to host|Could not resolve hostname|Connection timed out|Network is unreachable|Operation timed out|Connection closed by .* port|Name or service not known|kex_exchange_identification/i.test(stderr)) {
    return 'unreachable';
  }
  return 'other';
}

/** Turns an ssh failure into the UserError an administrator can act on. */
export function sshFailureError(t: SshTarget, kind: SshFailure, stderr: string, fingerprints?: string[]): UserError {
  const where = describeTarget(t);
  const said = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-2).join(' / ');
  switch (kind) {
    case 'untrusted': {
      const fp = fingerprints && fingerprints.length > 0 ? ` The host presents: ${fingerprints.join(', ')}.` : '';
      return new UserError(`The SSH host key of ${where} is unknown or has changed, so the connection was refused.${fp}`, {
        hint: `Compare the fingerprint with the one on the host (run "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" there, on its console). If it matches, trust the key in the host settings (it is stored in ${t.knownHostsFile}); if it does not match, do not connect: someone may be intercepting.`,
        exitCode: ExitCode.untrusted,
      });
    }
    case 'auth':
      return new UserError(`SSH authentication to ${where} failed (${said}).`, {
        hint: `Add the appliance's public key (${t.identityFile}.pub) to ~${t.user}/.ssh/authorized_keys on the host, and check the user name.`,
        exitCode: ExitCode.authFailed,
      });
    case 'unreachable':
      return new UserError(`The host ${where} cannot be reached over SSH (${said}).`, {
        hint: 'Check the host name or address, the port, that sshd runs on the host, and any firewall in between.',
        exitCode: ExitCode.unreachable,
      });
    default:
      return new UserError(`SSH to ${where} failed (${said}).`, {
        hint: 'Try "ssh" to the host by hand with the same user and key to see what is wrong.',
        exitCode: ExitCode.unreachable,
      });
  }
}

/** Parses `ssh-keygen -lf -` output: "256 SHA256:abc [127.0.0.1]:2222 (ED25519)". */
export function parseFingerprints(text: string): {bits: number; fingerprint: string; type: string}[] {
  const out: {bits: number; fingerprint: string; type: string}[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(SHA256:\S+)\s+.*\((\S+)\)\s*$/.exec(line.trim());
    if (m) out.push({bits: Number(m[1]), fingerprint: m[2]!, type: m[3]!});
  }
  return out;
}
