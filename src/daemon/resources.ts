/**
 * The live objects behind the configuration: one open Repository per configured repository and
 * one PlatformAdapter per connection (built on first use, rebuilt when the configuration of that
 * object changes), and the inventory cache per connection.
 */
import {mkdir, writeFile} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import type {ConnectionConfig, MorpheusConnectionConfig, RepositoryConfig} from '../config/schema.js';
import type {ConfigStore} from '../config/store.js';
import {buildPlatform} from '../platforms/registry.js';
import type {InventoryVm, PlatformAdapter} from '../platforms/types.js';
import {createRepository, openRepository, type Repository, type S3Credentials, type SshRepositoryAccess} from '../repository/index.js';
import {isSshUrl, parseSshUrl} from '../util/ssh-url.js';
import {isS3Url} from '../util/s3-url.js';
import {diskSpace} from './disk-space.js';
import {applianceKeyPath} from './appliance-key.js';
import {ExitCode, UserError, errnoCode, explainIoError} from '../util/errors.js';
import type {DaemonLog} from './log.js';
import {parallelFor} from '../util/parallel-for.js';

export interface InventoryEntry {
  at: string;
  vms: InventoryVm[];
}

export class Resources {
  private readonly repos = new Map<string, {access: string; repo: Repository}>();
  private readonly platforms = new Map<string, {json: string; platform: PlatformAdapter}>();
  private readonly inventories = new Map<string, InventoryEntry>();
  /** Free space of repositories on other appliances, asked at most every SPACE_TTL_MS (each ask is an SSH session). */
  private readonly farSpace = new Map<string, {at: number; space: {freeBytes: number; totalBytes: number} | undefined}>();
  private readonly askingSpace = new Map<string, Promise<{freeBytes: number; totalBytes: number} | undefined>>();

  constructor(
    private readonly store: ConfigStore,
    private readonly log: DaemonLog,
  ) {}

  async repository(id: string): Promise<Repository> {
    const cfg = this.store.get('repositories', id);
    const cached = this.repos.get(id);
    const access = JSON.stringify([cfg.path, cfg.passphrase, cfg.s3, cfg.ssh]);
    if (cached && cached.access === access) return cached.repo;
    if (cached) void cached.repo.close().catch(() => undefined);
    const repo = await Resources.open(cfg, this.store.stateDir);
    this.repos.set(id, {access, repo});
    return repo;
  }

  /**
   * Free and total bytes where repository `id` lives: the local file system's, the far
   * appliance's disk (asked over SSH, remembered for a few minutes), undefined for a bucket (no
   * fixed size) or when it cannot be read. `wait: false` (the status the console polls) never
   * waits for the far appliance: it answers what is known and asks again in the background.
   */
  async space(id: string, opts: {wait?: boolean} = {}): Promise<{freeBytes: number; totalBytes: number} | undefined> {
    const cfg = this.store.get('repositories', id);
    if (isS3Url(cfg.path)) return undefined;
    if (!isSshUrl(cfg.path)) return diskSpace(cfg.path);
    const known = this.farSpace.get(id);
    if (known && Date.now() - known.at < SPACE_TTL_MS) return known.space;
    let asking = this.askingSpace.get(id);
    if (!asking) {
      asking = this.repository(id)
        .then((repo) => repo.backend.space())
        .catch(() => undefined)
        .then((space) => {
          this.farSpace.set(id, {at: Date.now(), space});
          return space;
        })
        .finally(() => this.askingSpace.delete(id));
      this.askingSpace.set(id, asking);
    }
    return opts.wait === false ? known?.space : asking;
  }

  /**
   * Opens the repository at `cfg.path` with its passphrase. A plain repository with a passphrase
   * configured is refused: whoever set one believes the data encrypted.
   */
  private static async open(cfg: RepoAccessConfig, stateDir: string): Promise<Repository> {
    const repo = await openRepository(cfg.path, await access(cfg, stateDir));
    if (cfg.passphrase !== undefined && !repo.encrypted) {
      throw new UserError(`The repository at ${cfg.path} is not encrypted, yet a passphrase is configured for it.`, {
        hint: 'Remove the passphrase from this repository, or choose a new, empty directory to make an encrypted repository there (then copy the restore points with "vmbackup repo copy").',
        exitCode: ExitCode.invalidInput,
      });
    }
    return repo;
  }

  /** Opens the repository at `cfg.path`, creating one there (encrypted with its passphrase, if any) when the directory is new or empty. */
  static async openOrCreate(cfg: RepoAccessConfig, stateDir: string): Promise<Repository> {
    try {
      return await Resources.open(cfg, stateDir);
    } catch (err) {
      if (!(err instanceof UserError) || err.exitCode !== ExitCode.notARepository) throw err;
      try {
        return await createRepository(cfg.path, await access(cfg, stateDir));
      } catch (createErr) {
        if (createErr instanceof UserError) throw createErr;
        if (errnoCode(createErr) === 'EEXIST') throw err;
        const explained = explainIoError(createErr, cfg.path, 'creating the repository');
        if (explained instanceof UserError) throw explained;
        const code = errnoCode(createErr);
        if (!code) throw createErr;
        // On a read-only file system (the systemd sandbox) mkdir may report EROFS or ENOENT.
        throw new UserError(`Cannot create a repository at ${cfg.path}: ${createErr instanceof Error ? createErr.message : String(createErr)}`, {
          hint: `Check that the parent directory exists and is writable. Under systemd, vmbackupd may only write its ReadWritePaths (a read-only file system otherwise): add the path with "systemctl edit vmbackupd" ([Service] ReadWritePaths=${cfg.path}) and restart it.`,
          exitCode: ExitCode.invalidInput,
          cause: createErr,
        });
      }
    }
  }

  platform(connectionId: string): PlatformAdapter {
    const cfg = this.store.get('connections', connectionId);
    const {checkpointPrefix, hostScratchDir} = this.store.data.settings;
    const json = JSON.stringify({cfg, checkpointPrefix, hostScratchDir});
    const cached = this.platforms.get(connectionId);
    if (cached && cached.json === json) return cached.platform;
    if (cached) void cached.platform.close().catch(() => {});
    const platform = this.build(cfg);
    this.platforms.set(connectionId, {json, platform});
    this.inventories.delete(connectionId);
    return platform;
  }

  /** A platform built from an unsaved configuration (the "test" action); the caller closes it. */
  build(cfg: ConnectionConfig): PlatformAdapter {
    return buildPlatform(cfg, {
      knownHostsFile: (connection, host) => this.knownHostsPath(connection, host),
      commandLog: (line, connection) => this.log('debug', line, {connection}),
      checkpointPrefix: this.store.data.settings.checkpointPrefix,
      scratchDir: this.store.data.settings.hostScratchDir,
      trustedCheckpoints: (vmId) => this.trustedCheckpoints(vmId),
    });
  }

  private knownHostsPath(connection: string, host: string): string {
    return join(this.store.stateDir, 'known_hosts.d', `${connection}--${host.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  }

  /** Writes the known_hosts files for host keys given in the configuration (ssh reads files only). */
  async writeKnownHosts(cfg: ConnectionConfig): Promise<void> {
    if (cfg.kind !== 'morpheus') return;
    for (const c of cfg.clusters)
      for (const h of c.hosts) {
        if (h.connection.kind !== 'ssh' || !h.connection.hostKey || h.connection.knownHostsFile) continue;
        await writeKnownHostsFile(this.knownHostsPath(cfg.id, h.name), h.connection.host, h.connection.port, h.connection.hostKey);
      }
  }

  async inventory(connectionId: string, refresh = false): Promise<InventoryEntry> {
    const platform = this.platform(connectionId);
    const cached = this.inventories.get(connectionId);
    if (cached && !refresh) return cached;
    const cfg = this.store.get('connections', connectionId);
    // A VM deleted while the inventory is being read makes one pass fail: read again.
    let list: InventoryVm[] | undefined;
    for (let attempt = 1; !list; attempt++) {
      try {
        list = await platform.inventory();
      } catch (err) {
        if (attempt >= 3) throw err;
        this.log('debug', `Inventory of ${cfg.name} failed (attempt ${attempt}), reading again: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
    const vms = list.map((vm) => withCluster(cfg, vm));
    const entry = {at: new Date().toISOString(), vms};
    this.inventories.set(connectionId, entry);
    return entry;
  }

  /**
   * The VMs `ids` of a connection, each described on its own (platform.findVm): what a job that
   * picks VMs by id needs, at a cost that does not grow with the other VMs on the hosts. VMs that
   * are not there are left out; one whose description fails is in `failed` with the error.
   */
  async findVms(connectionId: string, ids: readonly string[]): Promise<{vms: InventoryVm[]; failed: {id: string; error: unknown}[]}> {
    const platform = this.platform(connectionId);
    const cfg = this.store.get('connections', connectionId);
    const vms: InventoryVm[] = [];
    const failed: {id: string; error: unknown}[] = [];
    await parallelFor(ids.length, 8, async (i) => {
      try {
        const vm = await platform.findVm(ids[i]!);
        if (vm && vm.id === ids[i]) vms.push(withCluster(cfg, vm));
      } catch (error) {
        failed.push({id: ids[i]!, error});
      }
    });
    return {vms, failed};
  }

  /** Checkpoint ids that committed restore points in any repository recorded for the VM. */
  /**
   * The checkpoints that committed restore points recorded for a VM: cleanup keeps these and may
   * delete the appliance's other checkpoints of that VM. `undefined` means "do not touch this VM":
   * it has no restore point here (not ours to manage), or a repository could not be read (then we
   * cannot know which checkpoint a restore point still needs, and deleting it would force a full).
   */
  async trustedCheckpoints(vmId: string): Promise<string[] | undefined> {
    const ids: string[] = [];
    let points = 0;
    for (const r of this.store.list('repositories')) {
      try {
        const repo = await this.repository(r.id);
        for (const p of await repo.listRestorePoints({vmId})) {
          points += 1;
          if (p.checkpoint) ids.push(p.checkpoint.id);
        }
      } catch (err) {
        this.log('warn', `Cannot read repository ${r.name} while collecting trusted checkpoints; leaving the checkpoints of VM ${vmId} alone`, {error: String(err)});
        return undefined;
      }
    }
    return points > 0 ? ids : undefined;
  }

  async close(): Promise<void> {
    for (const {platform} of this.platforms.values()) await platform.close().catch(() => {});
    this.platforms.clear();
  }
}

/** libvirt knows hosts, not clusters: the cluster comes from the connection's configuration. */
function withCluster(cfg: ConnectionConfig, vm: InventoryVm): InventoryVm {
  if (cfg.kind !== 'morpheus' || vm.cluster) return vm;
  const cluster = (cfg as MorpheusConnectionConfig).clusters.find((c) => c.hosts.some((h) => h.name === vm.host));
  return cluster ? {...vm, cluster: cluster.name} : vm;
}

const SPACE_TTL_MS = 5 * 60_000;

/** A known_hosts file (0600, in a 0700 directory) that holds `hostKey` for host:port only: ssh reads host keys from files alone. */
async function writeKnownHostsFile(file: string, host: string, port: number, hostKey: string): Promise<void> {
  await mkdir(dirname(file), {recursive: true, mode: 0o700});
  await writeFile(file, `${port === 22 ? host : `[${host}]:${port}`} ${hostKey}\n`, {mode: 0o600});
}

type RepoAccessConfig = Pick<RepositoryConfig, 'id' | 'path' | 'passphrase' | 's3' | 'ssh'>;

/**
 * What opens the repository: its passphrase, its S3 credentials, or how to log in to the appliance
 * that keeps it (the appliance's own key unless another is configured; the far host key pinned in
 * a known_hosts file of its own, as ssh reads only files).
 */
async function access(cfg: RepoAccessConfig, stateDir: string): Promise<{passphrase?: string; s3?: S3Credentials; ssh?: SshRepositoryAccess}> {
  let ssh: SshRepositoryAccess | undefined;
  const where = cfg.ssh ? parseSshUrl(cfg.path) : undefined;
  if (cfg.ssh && where) {
    const knownHostsFile = join(stateDir, 'known_hosts.d', `repository--${cfg.id.replace(/[^A-Za-z0-9._-]/g, '_')}`);
    await writeKnownHostsFile(knownHostsFile, where.host, where.port, cfg.ssh.hostKey);
    ssh = {identityFile: cfg.ssh.identityFile ?? applianceKeyPath(stateDir), knownHostsFile, ...(cfg.ssh.remoteVmbackup ? {command: [cfg.ssh.remoteVmbackup]} : {})};
  }
  return {
    ...(cfg.passphrase !== undefined ? {passphrase: cfg.passphrase} : {}),
    ...(cfg.s3 ? {s3: {accessKeyId: cfg.s3.accessKeyId, secretAccessKey: cfg.s3.secretAccessKey, region: cfg.s3.region, ...(cfg.s3.caFile ? {caFile: cfg.s3.caFile} : {})}} : {}),
    ...(ssh ? {ssh} : {}),
  };
}
