/**
 * Putting the worker onto a host and taking it off again, over the host's SSH connection.
 *
 * The bundle (bundle.ts) goes to `<scratch>/worker-<id16>` in the appliance's scratch directory on
 * the host (0700, owned by the SSH user, checked by the platform before use): copied once per
 * version as a tar stream over SSH into a temporary directory, checked there with sha256sum
 * against its SHA256SUMS, and renamed into place; before a start the same check runs again, at
 * most every ten minutes per host and process (version-checked: a file changed on the host is a
 * refusal, then a fresh copy). Older versions
 * are removed when a new one lands. remove() takes every version off the host.
 *
 * Only x86-64 Linux hosts get a worker (the runtime is the appliance's own build); any other is
 * reported so that placement falls back to the appliance's data mover with that reason.
 */
import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import type {SshHostAccess} from '../transports/ssh-host.js';
import {sshStreamArgv, type SshTarget} from '../transports/ssh-args.js';
import {ExitCode, UserError} from '../util/errors.js';
import {workerBundle, WORKER_ENTRY, type WorkerBundle} from './bundle.js';

const VERSION_DIR = /^worker-[0-9a-f]{16}(\.part-[0-9a-f]+)?$/;

/**
 * When this process last found a host's worker intact (host + directory → time): within
 * RECHECK_MS the check (sha256sum over ~123 MiB: ~0.4 CPU s on the host) is not run again for
 * every VM of a session. A worker that cannot start is still caught: placement falls back.
 */
const checkedAt = new Map<string, number>();
const RECHECK_MS = 10 * 60_000;

export interface Deployed {
  /** The worker's directory on the host. */
  dir: string;
  bundle: WorkerBundle;
  /** Whether this call copied it (false: the host had this version already). */
  copied: boolean;
}

/** Deployments under way in this process, by host and directory: the VMs of a session that start together share one. */
const deploying = new Map<string, Promise<Deployed>>();

/**
 * Makes sure the host has this appliance's worker, intact: checks, copies when missing or
 * changed, checks again. Throws a UserError saying why a worker cannot run there. Concurrent calls
 * for one host share one deployment (several VMs of a session start at once on a fresh host).
 */
export async function deployWorker(host: SshHostAccess, opts: {recheck?: boolean} = {}): Promise<Deployed> {
  const arch = (await host.runner.run(['uname', '-sm'])).stdout.trim();
  if (arch !== 'Linux x86_64') {
    throw new UserError(`No worker for ${host.hostName}: it is "${arch}", and the worker runs on x86-64 Linux only.`, {
      hint: 'Its disks are read by the appliance itself (through the SSH tunnel); nothing needs to be done.',
      exitCode: ExitCode.platformFailed,
    });
  }
  await host.ensureScratchRoot();
  const bundle = await workerBundle(host.localScratchDir);
  const version = `worker-${bundle.id.slice(0, 16)}`;
  const dir = join(host.scratchDir, version);
  const key = `${host.ssh.user}@${host.ssh.host}:${host.ssh.port ?? 22}:${dir}`;
  if (opts.recheck) checkedAt.delete(key);
  if (Date.now() - (checkedAt.get(key) ?? 0) < RECHECK_MS) return {dir, bundle, copied: false};
  let p = deploying.get(key);
  if (!p) {
    p = deploy(host, bundle, dir, version, key).finally(() => deploying.delete(key));
    deploying.set(key, p);
  }
  return p;
}

async function deploy(host: SshHostAccess, bundle: WorkerBundle, dir: string, version: string, key: string): Promise<Deployed> {
  if (await intact(host, dir)) {
    checkedAt.set(key, Date.now());
    return {dir, bundle, copied: false};
  }
  const part = `${dir}.part-${randomBytes(4).toString('hex')}`;
  await host.runner.run(['rm', '-rf', '--', dir]);
  await host.runner.run(['mkdir', '-m', '0700', '--', part]);
  try {
    await upload(host.ssh, bundle.dir, part);
    await host.runner.run(['mv', '-T', '--', part, dir]);
  } catch (err) {
    await host.runner.run(['rm', '-rf', '--', part], {allowFailure: true}).catch(() => undefined);
    throw err;
  }
  if (!(await intact(host, dir))) {
    throw new UserError(`The worker copied to ${host.hostName} (${dir}) does not match what was sent.`, {
      hint: `Check the host's disk and memory; the backup goes on without a worker (the appliance reads the disks itself).`,
      exitCode: ExitCode.platformFailed,
    });
  }
  checkedAt.set(key, Date.now());
  // Other versions are of no further use (this version's copies under way elsewhere are left alone).
  for (const name of await host.scratchEntries()) {
    if (VERSION_DIR.test(name) && !name.startsWith(version)) await host.runner.run(['rm', '-rf', '--', join(host.scratchDir, name)], {allowFailure: true});
  }
  return {dir, bundle, copied: true};
}

/** Removes every version of the worker from the host; the names it removed. */
export async function removeWorker(host: SshHostAccess): Promise<string[]> {
  checkedAt.clear();
  const removed: string[] = [];
  for (const name of await host.scratchEntries()) {
    if (!VERSION_DIR.test(name)) continue;
    await host.runner.run(['rm', '-rf', '--', join(host.scratchDir, name)]);
    removed.push(join(host.scratchDir, name));
  }
  return removed;
}

/** The argv (on the appliance) that starts the deployed worker in an SSH session of its own. */
export function workerCommand(ssh: SshTarget, dir: string): string[] {
  return sshStreamArgv(ssh, [join(dir, 'node'), '--max-old-space-size=256', join(dir, WORKER_ENTRY)]);
}

/** sha256sum over the bundle's SHA256SUMS, in its directory: every file there and unchanged. */
async function intact(host: SshHostAccess, dir: string): Promise<boolean> {
  const r = await host.runner.run(['env', '-C', dir, 'sha256sum', '--quiet', '--strict', '-c', 'SHA256SUMS'], {allowFailure: true, timeoutMs: 120_000});
  return r.exitCode === 0;
}

/** tar of the staging directory (links followed) into `dest` on the host, over SSH. */
async function upload(ssh: SshTarget, staging: string, dest: string): Promise<void> {
  const tar = spawn('tar', ['-C', staging, '--dereference', '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', '.'], {stdio: ['ignore', 'pipe', 'pipe']});
  const argv = sshStreamArgv(ssh, ['tar', '--no-same-owner', '--no-same-permissions', '-xf', '-', '-C', dest]);
  const remote = spawn(argv[0]!, argv.slice(1), {stdio: ['pipe', 'ignore', 'pipe'], env: {...process.env, LC_ALL: 'C.UTF-8'}});
  tar.stdout.pipe(remote.stdin);
  remote.stdin.on('error', () => tar.kill());
  const stderr: string[] = [];
  tar.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
  remote.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exit = (p: ReturnType<typeof spawn>) => new Promise<number>((res) => p.on('close', (code) => res(code ?? -1)));
  const [a, b] = await Promise.all([exit(tar), exit(remote)]);
  if (a !== 0 || b !== 0) {
    throw new UserError(`Copying the worker to ${ssh.host} failed: ${stderr.join('').trim().split('\n').slice(-2).join(' / ') || `tar exited ${a}, ssh ${b}`}.`, {
      hint: 'Check free space in the scratch directory on the host (about 130 MiB are needed); the backup goes on without a worker.',
      exitCode: ExitCode.platformFailed,
    });
  }
}
