/**
 * Forwards a unix socket on a libvirt host (an NBD export) to a unix socket on the appliance with
 * `ssh -N -L local:remote`. The tunnel is open once the local socket exists; close() ends ssh and
 * removes the local socket. Connections are made lazily by ssh, so the remote socket only has to
 * exist when a client connects.
 */
import {stat, unlink} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa, type ResultPromise} from 'execa';
import {classifySshFailure, sshFailureError, sshForwardArgv, validateTarget, type SshTarget} from './ssh-args.js';
import type {CommandLog} from './command-runner.js';
import {ExitCode, UserError} from '../util/errors.js';

export interface SocketTunnel {
  readonly localPath: string;
  close(): Promise<void>;
}

export async function openSocketTunnel(
  target: SshTarget,
  localPath: string,
  remotePath: string,
  opts: {log?: CommandLog; timeoutMs?: number} = {},
): Promise<SocketTunnel> {
  validateTarget(target);
  const argv = sshForwardArgv(target, localPath, remotePath);
  opts.log?.(`$ ${argv.join(' ')}`);
  const child: ResultPromise = execa(argv[0]!, argv.slice(1), {reject: false, stdin: 'ignore', buffer: {stdout: false, stderr: true}});
  let exited = false;
  const done = child.then((r) => {
    exited = true;
    return r;
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      const r = await done;
      const stderr = String(r.stderr ?? '');
      const kind = classifySshFailure(stderr);
      if (kind !== 'other') throw sshFailureError(target, kind, stderr);
      throw new UserError(`The SSH tunnel to ${remotePath} on ${target.host} could not be opened: ${stderr.trim()}`, {
        hint: 'Check that the appliance may forward unix sockets (AllowStreamLocalForwarding in the host sshd_config).',
        exitCode: ExitCode.unreachable,
      });
    }
    if (await isSocket(localPath)) break;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      await done;
      throw new UserError(`The SSH tunnel to ${target.host} did not open within ${(opts.timeoutMs ?? 30_000) / 1000} s.`, {
        hint: 'Check the network to the host and that sshd answers.',
        exitCode: ExitCode.unreachable,
      });
    }
    await sleep(25);
  }
  return {
    localPath,
    async close() {
      if (!exited) child.kill('SIGTERM');
      await done;
      await unlink(localPath).catch(() => {});
    },
  };
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}
