/**
 * The oVirt / OLVM platform adapter: `new OvirtPlatform({url, user, password, caPem, log?})`.
 *
 * Wires the engine client (REST + SSO) and the imageio client into the PlatformAdapter seam:
 * inventory, backups (backup.ts), restores into VMs (restore.ts; image files are the shared target in ../targets/files.ts) and cleanup of what the
 * appliance left behind (cleanup.ts). One engine login per adapter; close() revokes it.
 */
import type {BackupOptions, InventoryVm, Logger, PlatformAdapter, RestorePlan, RestoreSource, VmBackup, VmRestore, VmRestoreTarget} from '../types.js';
import {openOvirtBackup} from './backup.js';
import {cleanupLeftovers, cleanupVmBackups} from './cleanup.js';
import {EngineClient} from './engine-client.js';
import {Ownership} from './ownership.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {atLeast, engineVersion, findVm, listVms, type EngineVersion} from './inventory.js';
import type {PollOptions} from './poll.js';
import {openOvirtRestore, prepareOvirtRestore, type RestoreContext} from './restore.js';

export interface OvirtPlatformOptions {
  /** Engine address: https://engine.example.com[/ovirt-engine]. */
  url: string;
  user: string;
  password: string;
  /** The engine CA the administrator confirmed (fetchEngineCa), PEM; may be a bundle. */
  caPem: string;
  log?: Logger;
  /** How often to poll engine phases (default 1000 ms, like the SDK). */
  pollIntervalMs?: number;
  /** How long to wait for one engine phase change (default 10 minutes). */
  phaseTimeoutMs?: number;
  /** inactivity_timeout of every image transfer, seconds (default 600; the engine's 60 is too short, gotcha 13). */
  transferInactivityTimeout?: number;
  /**
   * How long a new backup waits for the previous one of the same VM that is still finalizing (a
   * hybrid backup's snapshot merge; default 60 minutes).
   */
  finalizingWaitMs?: number;
  /** imageio connections per disk, capped by the server's max_readers (default 4, like the reference client). */
  maxConnections?: number;
  /**
   * Names this appliance in the descriptions of its backups, checkpoints and restore disks
   * ("vmbackup@<id> ..."); default the host name. Keep it stable: it decides what is "own".
   */
  applianceId?: string;
}

export class OvirtPlatform implements PlatformAdapter {
  readonly kind = 'ovirt' as const;
  readonly client: EngineClient;
  private readonly poll: PollOptions;
  private readonly inactivityTimeout: number;
  private readonly maxConnections: number;
  private backupApiChecked: Promise<void> | undefined;
  private readonly ownership: Ownership;
  private readonly finalizingWaitMs: number;

  constructor(private readonly o: OvirtPlatformOptions) {
    this.poll = {intervalMs: o.pollIntervalMs ?? 1000, timeoutMs: o.phaseTimeoutMs ?? 10 * 60_000};
    this.client = new EngineClient({
      url: o.url, user: o.user, password: o.password, caPem: o.caPem,
      lockRetry: {intervalMs: this.poll.intervalMs, timeoutMs: Math.min(this.poll.timeoutMs, 2 * 60_000)},
    });
    this.inactivityTimeout = o.transferInactivityTimeout ?? 600;
    this.maxConnections = o.maxConnections ?? 4;
    this.ownership = new Ownership(o.applianceId);
    this.finalizingWaitMs = o.finalizingWaitMs ?? 60 * 60_000;
  }

  /** Engine version (product_info) for feature checks and the console's "about" line. */
  version(): Promise<EngineVersion> {
    return engineVersion(this.client);
  }

  /** The backup API is usable from oVirt 4.4 / OLVM 4.4 on (§1.7); checked once per adapter. */
  private requireBackupApi(): Promise<void> {
    this.backupApiChecked ??= this.version().then((v) => {
      if (!atLeast(v, 4, 4)) {
        throw new UserError(`The engine runs oVirt ${v.full || `${v.major}.${v.minor}`}; incremental backup needs oVirt / OLVM 4.4 or later.`, {
          hint: 'Upgrade the engine and the cluster compatibility level to 4.4 or later.', exitCode: ExitCode.platformFailed,
        });
      }
    }).catch((err) => {
      this.backupApiChecked = undefined;
      throw err;
    });
    return this.backupApiChecked;
  }

  inventory() {
    return listVms(this.client);
  }

  findVm(nameOrId: string): Promise<InventoryVm | undefined> {
    return findVm(this.client, nameOrId);
  }

  async openBackup(vmId: string, opts: BackupOptions): Promise<VmBackup> {
    await this.requireBackupApi();
    return openOvirtBackup({
      client: this.client, poll: this.poll, inactivityTimeout: this.inactivityTimeout, maxConnections: this.maxConnections,
      ownership: this.ownership,
      cleanupVm: (id, log) => cleanupVmBackups(this.client, this.ownership, id, this.poll, log, {finalizingWaitMs: this.finalizingWaitMs}),
    }, vmId, opts);
  }

  async planRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]}): Promise<RestorePlan> {
    return (await prepareOvirtRestore(this.restoreContext(), source, target, opts)).plan;
  }

  openRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
    return openOvirtRestore(this.restoreContext(), source, target, opts);
  }

  private restoreContext(): RestoreContext {
    return {client: this.client, poll: this.poll, inactivityTimeout: this.inactivityTimeout, maxConnections: this.maxConnections, ownership: this.ownership};
  }

  cleanupLeftovers(log: Logger): Promise<void> {
    return cleanupLeftovers(this.client, this.ownership, this.poll, log);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
