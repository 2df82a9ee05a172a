/**
 * One libvirt host as the adapter uses it: a command runner (local, or SSH to the host), virsh
 * against that host's qemu:///system, small file operations in the host's scratch directory, and
 * a way to reach a unix socket on the host from the appliance (itself when local, an SSH-forwarded
 * socket when remote).
 *
 * Why virsh runs on the host through the SSH runner instead of `virsh -c qemu+ssh://...`: the
 * qemu-img and qemu-nbd calls must run on the host anyway, so one SSH path with one trust rule
 * (our known_hosts, BatchMode, strict host keys) covers everything; qemu+ssh would add a second
 * ssh invocation that libvirt builds itself, needs virt-ssh-helper or nc on the host, and cannot
 * be given our ssh options. The cost (one SSH session per command) is small next to a backup.
 */
import {randomBytes} from 'node:crypto';
import {mkdirSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {basename, join} from 'node:path';
import {LocalRunner, type CommandLog, type CommandRunner, type RunOptions, type RunResult} from '../../transports/command-runner.js';
import {execa} from 'execa';
import {sshControlExitArgv, type SshTarget} from '../../transports/ssh-args.js';
import {SshRunner} from '../../transports/ssh-runner.js';
import {openSocketTunnel} from '../../transports/ssh-tunnel.js';

export type HostConnection =
  | {kind: 'local'}
  | {kind: 'ssh'; host: string; port?: number; user: string; identityFile: string; knownHostsFile: string};

export interface LibvirtHostConfig {
  name: string;
  connection: HostConnection;
}

export const LIBVIRT_URI = 'qemu:///system';

export interface ReachableSocket {
  /** The path to connect to on the appliance. */
  path: string;
  close(): Promise<void>;
}

export class LibvirtHost {
  readonly name: string;
  readonly runner: CommandRunner;
  readonly ssh: SshTarget | undefined;
  /** Directory on the host for sockets, scratch files, pid files of this appliance. */
  readonly scratchDir: string;
  /** Directory on the appliance for forwarded sockets. */
  readonly localScratchDir: string;
  private readonly log: CommandLog | undefined;
  /** Session directories this instance is using right now; cleanup never touches these. */
  readonly activeScratch = new Set<string>();

  constructor(config: LibvirtHostConfig, opts: {runner?: CommandRunner; scratchDir: string; localScratchDir: string; log?: CommandLog}) {
    this.name = config.name;
    this.scratchDir = opts.scratchDir;
    this.localScratchDir = opts.localScratchDir;
    this.log = opts.log;
    if (config.connection.kind === 'ssh') {
      const {host, port, user, identityFile, knownHostsFile} = config.connection;
      this.ssh = {host, port, user, identityFile, knownHostsFile, controlDir: join(opts.localScratchDir, 'ssh')};
      mkdirSync(this.ssh.controlDir!, {recursive: true, mode: 0o700});
      this.runner = opts.runner ?? new SshRunner(this.ssh, {log: opts.log});
    } else {
      this.ssh = undefined;
      this.runner = opts.runner ?? new LocalRunner({log: opts.log});
    }
  }

  /** Ends the shared SSH connection, if any. */
  async close(): Promise<void> {
    if (this.ssh?.controlDir) await execa(sshControlExitArgv(this.ssh)[0]!, sshControlExitArgv(this.ssh).slice(1), {reject: false});
  }

  virsh(args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return this.runner.run(['virsh', '-q', '-c', LIBVIRT_URI, ...args], opts);
  }

  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return this.runner.run(argv, opts);
  }

  async writeFile(path: string, content: string): Promise<void> {
    await this.runner.run(['dd', `of=${path}`, 'status=none'], {input: content});
  }

  async mkdirp(path: string): Promise<void> {
    await this.runner.run(['mkdir', '-p', '-m', '0700', '--', path]);
  }

  /** Removes a directory tree, but only one inside this appliance's scratch directory. */
  async removeScratch(path: string): Promise<void> {
    if (!path.startsWith(`${this.scratchDir}/`) || path.includes('/../')) throw new Error(`refusing to remove ${path}: outside ${this.scratchDir}`);
    await this.runner.run(['rm', '-rf', '--', path]);
    this.activeScratch.delete(path);
  }

  /** A fresh directory on the host for one session's sockets and scratch files. */
  async sessionDir(tag: string): Promise<string> {
    const dir = join(this.scratchDir, `${tag}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`);
    this.activeScratch.add(dir);
    await this.mkdirp(dir);
    return dir;
  }

  /** Makes a unix socket on the host connectable from the appliance. */
  async reach(remoteSocket: string): Promise<ReachableSocket> {
    if (!this.ssh) return {path: remoteSocket, close: async () => {}};
    await mkdir(this.localScratchDir, {recursive: true, mode: 0o700});
    const local = join(this.localScratchDir, `t-${randomBytes(4).toString('hex')}-${basename(remoteSocket)}`);
    const tunnel = await openSocketTunnel({...this.ssh, controlDir: undefined}, local, remoteSocket, {log: this.log});
    return {path: tunnel.localPath, close: () => tunnel.close()};
  }
}
