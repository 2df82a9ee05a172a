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
import {rm} from 'node:fs/promises';
import {basename, join} from 'node:path';
import {LocalRunner, type CommandLog, type CommandRunner, type RunOptions, type RunResult} from '../../transports/command-runner.js';
import {sshControlExitArgv, type SshTarget} from '../../transports/ssh-args.js';
import {SshRunner} from '../../transports/ssh-runner.js';
import type {NbdAddress} from '../../transports/nbd/index.js';
import {CheckpointNaming} from './plan.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {ensurePrivateDirSync, privateTempDirSync} from '../../util/private-dir.js';
import {leaseAlive, parseLease, SELF_LEASE, type ProcessLease} from '../../util/process-lease.js';
import type {NbdEndpoint} from '../image/qemu-nbd.js';
import type {HostRead} from '../types.js';
import type {SshHostAccess} from '../../transports/ssh-host.js';

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
export {isPortInUse, type NbdEndpoint} from '../image/qemu-nbd.js';

export const LIBVIRT_URI = 'qemu:///system';

export interface ReachableSocket {
  /** The path to connect to on the appliance. */
  path: string;
  close(): Promise<void>;
}

/** The file that marks a scratch directory as the appliance's own (cleanup.ts removes only those). */
export const SCRATCH_MARKER = '.vmbackup-scratch';

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
      const controlDir = privateTempDirSync(opts.localScratchDir, 'ssh-');
      this.ssh = {host, port, user, identityFile, knownHostsFile, controlDir};
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

  /** Writes a new file (O_EXCL: never through a file or link that is already there). */
  async writeFile(path: string, content: string): Promise<void> {
    await this.runner.run(['dd', `of=${path}`, 'conv=excl', 'status=none'], {input: content});
  }

  async mkdirp(path: string): Promise<void> {
    await this.runner.run(['mkdir', '-p', '-m', '0700', '--', path]);
  }

  private scratchRoot: Promise<void> | undefined;

  /**
   * Creates the appliance's scratch directory on the host (0700) or checks the one there: a real
   * directory owned by the user the appliance runs as there, reachable by nobody else. /var/tmp
   * is world-writable; a local user who made the directory first, or put a link there, would
   * otherwise have root write sockets and files where they like. Checked once per instance.
   */
  ensureScratchRoot(): Promise<void> {
    this.scratchRoot ??= (async () => {
      await this.runner.run(['mkdir', '-p', '-m', '0700', '--', this.scratchDir]);
      const [st, id] = await Promise.all([this.runner.run(['stat', '-c', '%u %a %F', '--', this.scratchDir]), this.runner.run(['id', '-u'])]);
      const [uid, mode, ...type] = st.stdout.trim().split(' ');
      const problem =
        type.join(' ') !== 'directory'
          ? `is a ${type.join(' ')}, not a directory`
          : uid !== id.stdout.trim()
            ? `belongs to uid ${uid}, not to uid ${id.stdout.trim()} that vmbackup runs as there`
            : undefined;
      if (problem) {
        throw new UserError(`The scratch directory ${this.scratchDir} on ${this.name} ${problem}, so vmbackup does not use it.`, {
          hint: `Check who made it and why, then remove it on ${this.name} (vmbackup creates it itself, mode 0700), and run the backup again.`,
          exitCode: ExitCode.invalidInput,
        });
      }
      // Ours, but reachable by others (made by an older version or by hand): tighten it.
      if ((parseInt(mode ?? '777', 8) & 0o077) !== 0) await this.runner.run(['chmod', '0700', '--', this.scratchDir]);
    })().catch((err: unknown) => {
      this.scratchRoot = undefined;
      throw err;
    });
    return this.scratchRoot;
  }

  /** Removes a directory tree, but only one inside this appliance's scratch directory. */
  async removeScratch(path: string): Promise<void> {
    if (!path.startsWith(`${this.scratchDir}/`) || path.includes('/../')) throw new Error(`refusing to remove ${path}: outside ${this.scratchDir}`);
    await this.runner.run(['rm', '-rf', '--', path]);
    this.activeScratch.delete(path);
  }

  /** A fresh directory on the host for one session's sockets and scratch files. */
  /** The names in the scratch directory (none when it cannot be listed). */
  async scratchEntries(): Promise<string[]> {
    const ls = await this.runner.run(['ls', '-1', '--', this.scratchDir], {allowFailure: true});
    return ls.exitCode === 0 ? ls.stdout.split('\n').filter((l) => l.trim() !== '') : [];
  }

  /**
   * The marker of a session directory (sessionDir): undefined when it has none (not provably the
   * appliance's); without `lease` when an older vmbackup wrote it (a line of text, no lease).
   */
  async sessionMarker(dir: string): Promise<{lease?: ProcessLease; vm?: string; tag?: string} | undefined> {
    const marker = await this.runner.run(['cat', '--', join(dir, SCRATCH_MARKER)], {allowFailure: true});
    if (marker.exitCode !== 0) return undefined;
    const lease = parseLease(marker.stdout.trim());
    if (!lease) return {};
    const o = JSON.parse(marker.stdout) as {vm?: unknown; tag?: unknown};
    return {lease, ...(typeof o.vm === 'string' ? {vm: o.vm} : {}), ...(typeof o.tag === 'string' ? {tag: o.tag} : {})};
  }

  /** Live sessions of this appliance (their process runs) that work on VM `uuid`, from their markers. */
  async liveSessionsOf(uuid: string): Promise<{dir: string; pid: number; tag: string}[]> {
    const out: {dir: string; pid: number; tag: string}[] = [];
    for (const entry of await this.scratchEntries()) {
      const dir = join(this.scratchDir, entry);
      const m = await this.sessionMarker(dir);
      if (m?.lease && m.vm === uuid && m.lease.host === SELF_LEASE.host && leaseAlive(m.lease)) out.push({dir, pid: m.lease.pid, tag: m.tag ?? ''});
    }
    return out;
  }

  async sessionDir(tag: string, about: {vm?: string} = {}): Promise<string> {
    await this.ensureScratchRoot();
    // mktemp: a new directory (0700, O_EXCL) with an unpredictable name; the marker file says it
    // is the appliance's, and start-up cleanup removes nothing without it.
    const dir = (await this.runner.run(['mktemp', '-d', '-p', this.scratchDir, `${tag}-${Date.now().toString(36)}-XXXXXXXXXX`])).stdout.trim();
    if (!dir.startsWith(`${this.scratchDir}/`)) throw new Error(`mktemp on ${this.name} returned ${JSON.stringify(dir)}, outside ${this.scratchDir}`);
    this.activeScratch.add(dir);
    // The lease: which process of which appliance uses it. Cleanup leaves it alone while that
    // process runs (a CLI backup while the daemon restarts, another appliance's session).
    await this.writeFile(join(dir, SCRATCH_MARKER), `${JSON.stringify({...SELF_LEASE, tag, ...about})}\n`);
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

  /** This host as a worker reaches it (transports/ssh-host.ts): only an SSH host has workers. */
  workerAccess(): SshHostAccess | undefined {
    if (!this.ssh) return undefined;
    return {
      hostName: this.name,
      runner: this.runner,
      ssh: this.ssh,
      scratchDir: this.scratchDir,
      ensureScratchRoot: () => this.ensureScratchRoot(),
      scratchEntries: () => this.scratchEntries(),
      localScratchDir: this.localScratchDir,
    };
  }

  /** How a worker on this host reads an export on `endpoint` (types.ts HostRead): only a unix socket of an SSH host. */
  hostRead(endpoint: NbdEndpoint, exportName: string): HostRead | undefined {
    const access = this.workerAccess();
    return access && endpoint.kind === 'unix' ? {...access, socketPath: endpoint.path, exportName} : undefined;
  }

  /** Makes a unix socket on the host connectable from the appliance. */
  async reach(remoteSocket: string): Promise<ReachableSocket> {
    if (!this.ssh) return {path: remoteSocket, close: async () => {}};
    ensurePrivateDirSync(this.localScratchDir);
    const local = join(this.localScratchDir, `t-${randomBytes(4).toString('hex')}-${basename(remoteSocket)}`);
    const {openSocketTunnel} = await import('../../transports/ssh-tunnel.js');
    const tunnel = await openSocketTunnel({...this.ssh, controlDir: undefined}, local, remoteSocket, {log: this.log});
    return {path: tunnel.localPath, close: () => tunnel.close()};
  }
}
