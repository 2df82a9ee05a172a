/**
 * Test-bed helper: the sshd on 127.0.0.1:2222 from test/setup.d/30-sshd.sh, standing in for a
 * remote libvirt host. ensureSshd() runs that (idempotent) script so a test file can start what
 * it needs by itself.
 */
import {execa} from 'execa';
import {fileURLToPath} from 'node:url';
import type {LibvirtHostConfig} from '../../src/platforms/libvirt/index.js';
import type {SshTarget} from '../../src/transports/ssh-args.js';

export const SSHD_DIR = '/var/lib/vmbackup-test/sshd';
export const SSHD_PORT = 2222;
const SCRIPT = fileURLToPath(new URL('../setup.d/30-sshd.sh', import.meta.url));

export async function ensureSshd(): Promise<void> {
  await execa('bash', [SCRIPT]);
}

/** A libvirt host configuration for the test sshd, named `name`. */
export function testSshHost(name: string, overrides: Partial<SshTarget> = {}): LibvirtHostConfig {
  const t = testSshTarget(overrides);
  return {name, connection: {kind: 'ssh', host: t.host, port: t.port, user: t.user, identityFile: t.identityFile, knownHostsFile: t.knownHostsFile}};
}

export function testSshTarget(overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    host: '127.0.0.1',
    port: SSHD_PORT,
    user: 'root',
    identityFile: `${SSHD_DIR}/client_ed25519`,
    knownHostsFile: `${SSHD_DIR}/known_hosts`,
    connectTimeoutSec: 5,
    ...overrides,
  };
}
