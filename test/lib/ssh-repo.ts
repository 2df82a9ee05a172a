/**
 * Test-bed helper: repositories "on another appliance" — the test bed's sshd (127.0.0.1:2222,
 * test/lib/sshd.ts) logs in as root on this machine and runs this checkout's compiled CLI as the far
 * side's `vmbackup repo serve` (through a one-line wrapper, the way an installed vmbackup is one
 * command). Real ssh, real sshd, the real server: only the machine is the same.
 */
import {chmod, mkdtemp, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {SshRepositoryAccess} from '../../src/repository/storage/ssh.js';
import {CLI_MAIN} from './dist.js';
import {ensureSshd, SSHD_PORT, testSshTarget} from './sshd.js';

let wrapper: Promise<string> | undefined;

/** An executable `vmbackup` for the far side: this checkout's dist/cli/main.js under this Node. */
export function remoteVmbackup(): Promise<string> {
  wrapper ??= (async () => {
    await ensureSshd();
    const dir = await mkdtemp(join(tmpdir(), 'vmb-remote-bin-'));
    await chmod(dir, 0o755);
    const file = join(dir, 'vmbackup');
    await writeFile(file, `#!/bin/sh\nexec '${process.execPath}' '${CLI_MAIN}' "$@"\n`, {mode: 0o755});
    return file;
  })();
  return wrapper;
}

/** The address of directory `dir` of "the far appliance". */
export function sshRepoUrl(dir: string): string {
  return `ssh://root@127.0.0.1:${SSHD_PORT}${dir}`;
}

export async function sshRepoAccess(): Promise<SshRepositoryAccess> {
  const t = testSshTarget();
  return {identityFile: t.identityFile, knownHostsFile: t.knownHostsFile, command: [await remoteVmbackup()]};
}

/** The CLI options that reach it (repo create/copy/info … ssh://…). */
export async function sshRepoArgs(): Promise<string[]> {
  const a = await sshRepoAccess();
  return ['--ssh-key', a.identityFile, '--ssh-known-hosts', a.knownHostsFile, '--remote-vmbackup', a.command![0]!];
}
