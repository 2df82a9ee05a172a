/**
 * The oVirt / OLVM platform adapter: `new OvirtPlatform({url, user, password, caPem, log?})`.
 *
 * Wires the engine client (REST + SSO) and the imageio client into the PlatformAdapter seam:
 * inventory, backups (backup.ts), restores (restore.ts, file-sink.ts) and cleanup of what the
 * appliance left behind (cleanup.ts). One engine login per adapter; close() revokes it.
 */
import type {BackupOptions, Logger, PlatformAdapter, RestoreSource, RestoreTarget, VmBackup, VmRestore} from '../types.js';
import {openOvirtBackup} from './backup.js';
import {cleanupLeftovers, cleanupVmBackups} from './cleanup.js';
import {EngineClient} from './engine-client.js';
import {openFileRestore} from './file-sink.js';
import {engineVersion, listVms, type EngineVersion} from './inventory.js';
import type {PollOptions} from './poll.js';
import {openOvirtRestore} from './restore.js';

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
  /** imageio connections per disk, capped by the server's max_readers (default 4, like the reference client). */
  maxConnections?: number;
}

export class OvirtPlatform implements PlatformAdapter {
  readonly kind = 'ovirt' as const;
  readonly client: EngineClient;
  private readonly poll: PollOptions;
  private readonly inactivityTimeout: number;
  private readonly maxConnections: number;

  constructor(private readonly o: OvirtPlatformOptions) {
    this.client = new EngineClient({url: o.url, user: o.user, password: o.password, caPem: o.caPem});
    this.poll = {intervalMs: o.pollIntervalMs ?? 1000, timeoutMs: o.phaseTimeoutMs ?? 10 * 60_000};
    this.inactivityTimeout = o.transferInactivityTimeout ?? 600;
    this.maxConnections = o.maxConnections ?? 4;
  }

  /** Engine version (product_info) for feature checks and the console's "about" line. */
  version(): Promise<EngineVersion> {
    return engineVersion(this.client);
  }

  inventory() {
    return listVms(this.client);
  }

  openBackup(vmId: string, opts: BackupOptions): Promise<VmBackup> {
    return openOvirtBackup({
      client: this.client, poll: this.poll, inactivityTimeout: this.inactivityTimeout, maxConnections: this.maxConnections,
      cleanupVm: (id, log) => cleanupVmBackups(this.client, id, this.poll, log),
    }, vmId, opts);
  }

  openRestore(source: RestoreSource, target: RestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
    if (target.mode === 'disks-to-files') {
      const disks = opts.disks ? source.disks.filter((d) => opts.disks!.includes(d.key)) : source.disks;
      return openFileRestore(disks, target.directory, target.format);
    }
    return openOvirtRestore({client: this.client, poll: this.poll, inactivityTimeout: this.inactivityTimeout, maxConnections: this.maxConnections},
      source, target, opts);
  }

  cleanupLeftovers(log: Logger): Promise<void> {
    return cleanupLeftovers(this.client, this.poll, log);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
