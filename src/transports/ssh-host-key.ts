/**
 * Host-key trust on first use, done right: scanHostKey() fetches the keys a host presents and
 * their SHA-256 fingerprints so the console can show them to the admin; only after the admin
 * confirms does trustHostKeys() append them to the appliance's known_hosts file.
 */
import {appendFile, mkdir} from 'node:fs/promises';
import {dirname} from 'node:path';
import {execa} from 'execa';
import {parseFingerprints} from './ssh-args.js';
import {ExitCode, UserError} from '../util/errors.js';

export interface ScannedHostKey {
  /** The key's algorithm as the key names it: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa. */
  type: string;
  /** "SHA256:..." as ssh-keygen -l prints it. */
  fingerprint: string;
  /** The public key without the host name ("ssh-ed25519 AAAA…"): a connection's `hostKey`. */
  publicKey: string;
  /** The known_hosts line to store once the admin confirmed the fingerprint. */
  knownHostsLine: string;
}

export async function scanHostKey(host: string, port = 22, timeoutSec = 10): Promise<ScannedHostKey[]> {
  if (host.startsWith('-')) throw new UserError(`"${host}" is not a host name.`, {exitCode: ExitCode.invalidInput});
  const scan = await execa('ssh-keyscan', ['-p', String(port), '-T', String(timeoutSec), '--', host], {
    reject: false,
    timeout: (timeoutSec + 5) * 1000,
  });
  const lines = String(scan.stdout)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) {
    throw new UserError(`No SSH host key could be read from ${host}:${port}.`, {
      hint: 'Check that the host is up, that sshd listens on that port, and that no firewall blocks it.',
      exitCode: ExitCode.unreachable,
    });
  }
  const keys: ScannedHostKey[] = [];
  for (const line of lines) {
    const fp = await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], {input: `${line}\n`, reject: false});
    const parsed = parseFingerprints(String(fp.stdout))[0];
    // "host[,host…] algorithm base64": ssh-keyscan prints the host names first.
    const [, algorithm, blob] = line.split(/\s+/);
    if (parsed && algorithm && blob) keys.push({type: algorithm, fingerprint: parsed.fingerprint, publicKey: `${algorithm} ${blob}`, knownHostsLine: line});
  }
  return keys;
}

/** Appends confirmed keys to a known_hosts file (created 0600 with its directory when missing). */
export async function trustHostKeys(knownHostsFile: string, keys: readonly ScannedHostKey[]): Promise<void> {
  await mkdir(dirname(knownHostsFile), {recursive: true, mode: 0o700});
  await appendFile(knownHostsFile, keys.map((k) => `${k.knownHostsLine}\n`).join(''), {mode: 0o600});
}
