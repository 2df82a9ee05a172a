/**
 * One libvirt host as the adapter uses it: a command runner (local, or SSH to the host), virsh
 * against that host's qemu:///system, small file operations in the host's scratch directory, and
 * the NBD endpoints exports listen on, and a way to reach them from the appliance.
 *
 * NBD transport: by default exports listen on a unix socket in the session directory; the
 * appliance connects to it directly (local host) or through an SSH-forwarded socket (remote
 * host: encrypted and authenticated by the same SSH trust). `nbd: {transport: 'tcp'}` makes
 * exports listen on TCP instead (a random port of a range, per export): faster, but plain NBD
 * has no authentication, so only for a trusted, isolated backup network.
 *
 * Why virsh runs on the host through the SSH runner instead of `virsh -c qemu+ssh://...`: the
 * qemu-img and qemu-nbd calls must run on the host anyway, so one SSH path with one trust rule
 * (our known_hosts, BatchMode, strict host keys) covers everything; qemu+ssh would add a second
 * ssh invocation that libvirt builds itself, needs virt-ssh-helper or nc on the host, and cannot
 * be given our ssh options. The cost (one SSH session per command) is small next to a backup.
 */
import {randomBytes} from 'node:crypto';
import {mkdirSync} from 'node:fs';
import {mkdir, rm} from 'node:fs/promises';
import {basename, join} from 'node:path';
import {LocalRunner, type CommandLog, type CommandRunner, type RunOptions, type RunResult} from '../../transports/command-runner.js';
import {sshControlExitArgv, type SshTarget} from '../../transports/ssh-args.js';
import {SshRunner} from '../../transports/ssh-runner.js';
import type {NbdAddress} from '../../transports/nbd/index.js';
import {CheckpointNaming} from './plan.js';

export type HostConnection =
  | {kind: 'local'}
  | {kind: 'ssh'; host: string; port?: number; user: string; identityFile: string; knownHostsFile: string};

export type NbdTransportSetting =
  | {transport: 'unix'}
  | {
      transport: 'tcp';
      /** Address the exports listen on (the host's backup-network address). */
      bindAddress: string;
      /** Address the appliance connects to (default: bindAddress). */
      connectAddress?: string;
      /** Port range for exports, inclusive (default 10809-10999). */
      ports?: [number, number];
    };

export interface LibvirtHostConfig {
  name: string;
  connection: HostConnection;
  /** How NBD data travels from the host to the appliance (default: unix socket, over SSH when remote). */
  nbd?: NbdTransportSetting;
}

/** Where an NBD export listens, on the host. */
export type NbdEndpoint = {kind: 'unix'; path: string} | {kind: 'tcp'; address: string; port: number};

export function isPortInUse(message: string): boolean {
  return /Address already in use|EADDRINUSE/i.test(message);
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
  readonly nbd: NbdTransportSetting;
  /** How this appliance names (and recognises) its checkpoints. */
  readonly naming: CheckpointNaming;

  constructor(
    config: LibvirtHostConfig,
    opts: {runner?: CommandRunner; scratchDir: string; localScratchDir: string; log?: CommandLog; naming?: CheckpointNaming},
  ) {
    this.name = config.name;
    this.scratchDir = opts.scratchDir;
    this.localScratchDir = opts.localScratchDir;
    this.log = opts.log;
    this.nbd = config.nbd ?? {transport: 'unix'};
    this.naming = opts.naming ?? new CheckpointNaming();
    if (config.connection.kind === 'ssh') {
      const {host, port, user, identityFile, knownHostsFile} = config.connection;
      // One master connection per LibvirtHost, never shared with another instance: close() ends
      // it with `ssh -O exit`, which must not cut the commands of another platform (a connection
      // test, a CLI run, a configuration just replaced) that talks to the same host.
      const controlDir = join(opts.localScratchDir, `ssh-${randomBytes(4).toString('hex')}`);
      this.ssh = {host, port, user, identityFile, knownHostsFile, controlDir};
      mkdirSync(controlDir, {recursive: true, mode: 0o700});
      this.runner = opts.runner ?? new SshRunner(this.ssh, {log: opts.log});
    } else {
      this.ssh = undefined;
      this.runner = opts.runner ?? new LocalRunner({log: opts.log});
    }
  }

  /** Ends this host's SSH master connection, if any, and removes its control directory. */
  async close(): Promise<void> {
    if (!this.ssh?.controlDir) return;
    // execa and the tunnel module load only for SSH hosts (~50 ms of start-up a local host does not need).
    const {execa} = await import('execa');
    await execa(sshControlExitArgv(this.ssh)[0]!, sshControlExitArgv(this.ssh).slice(1), {reject: false});
    await rm(this.ssh.controlDir, {recursive: true, force: true}).catch(() => {});
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

  /** A new endpoint for one export: a socket in `dir`, or a random TCP port of the range. */
  nbdEndpoint(dir: string, name: string): NbdEndpoint {
    if (this.nbd.transport === 'unix') return {kind: 'unix', path: join(dir, `${name}.sock`)};
    const [from, to] = this.nbd.ports ?? [10809, 10999];
    return {kind: 'tcp', address: this.nbd.bindAddress, port: from + Math.floor(Math.random() * (to - from + 1))};
  }

  /** The address the appliance connects to for an export (opening an SSH tunnel when needed). */
  async connect(endpoint: NbdEndpoint): Promise<{address: NbdAddress; close(): Promise<void>}> {
    if (endpoint.kind === 'tcp') {
      const host = this.nbd.transport === 'tcp' ? (this.nbd.connectAddress ?? endpoint.address) : endpoint.address;
      return {address: {host, port: endpoint.port}, close: async () => {}};
    }
    const s = await this.reach(endpoint.path);
    return {address: {socketPath: s.path}, close: () => s.close()};
  }

  /** Makes a unix socket on the host connectable from the appliance. */
  async reach(remoteSocket: string): Promise<ReachableSocket> {
    if (!this.ssh) return {path: remoteSocket, close: async () => {}};
    await mkdir(this.localScratchDir, {recursive: true, mode: 0o700});
    const local = join(this.localScratchDir, `t-${randomBytes(4).toString('hex')}-${basename(remoteSocket)}`);
    const {openSocketTunnel} = await import('../../transports/ssh-tunnel.js');
    const tunnel = await openSocketTunnel({...this.ssh, controlDir: undefined}, local, remoteSocket, {log: this.log});
    return {path: tunnel.localPath, close: () => tunnel.close()};
  }
}
