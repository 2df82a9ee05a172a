/**
 * Forwards a unix socket on a libvirt host (an NBD export) to a unix socket on the appliance with
 * `ssh -N -L local:remote` (and the reverse, `-R`, for an export the appliance serves to a
 * host). The tunnel is open once the local socket exists; close() ends ssh and removes the local
 * socket. Connections are made lazily by ssh, so the remote socket only has to
 * exist when a client connects.
 */
import {stat, unlink} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa, type ResultPromise} from 'execa';
import {classifySshFailure, sshFailureError, sshForwardArgv, sshReverseForwardArgv, validateTarget, type SshTarget} from './ssh-args.js';
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
  const tunnel = await runTunnel(target, sshForwardArgv(target, localPath, remotePath), remotePath, () => isSocket(localPath), opts);
  return {
    localPath,
    async close() {
      await tunnel.close();
      await unlink(localPath).catch(() => {});
    },
  };
}

/**
 * The other way round: a unix socket on the host (`remotePath`, made by sshd as the SSH user,
 * mode 0600 by StreamLocalBindMask) whose connections reach `localPath` on the appliance
 * (`ssh -N -R remote:local`), for QEMU on a host reading an export the appliance serves. Open
 * once `exists()` (asked on the host) says the remote socket is there; close() ends ssh (sshd
 * removes nothing: the caller removes the remote socket).
 */
export async function openReverseSocketTunnel(
  target: SshTarget,
  remotePath: string,
  localPath: string,
  opts: {exists: () => Promise<boolean>; log?: CommandLog; timeoutMs?: number},
): Promise<{close(): Promise<void>}> {
  validateTarget(target);
  return runTunnel(target, sshReverseForwardArgv(target, remotePath, localPath), remotePath, opts.exists, opts);
}

async function runTunnel(target: SshTarget, argv: string[], remotePath: string, ready: () => Promise<boolean>, opts: {log?: CommandLog; timeoutMs?: number}): Promise<{close(): Promise<void>}> {
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
    if (await ready()) break;
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
    async close() {
      if (!exited) child.kill('SIGTERM');
      await done;
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
