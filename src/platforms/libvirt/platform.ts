/**
 * The libvirt platform adapter (HPE Morpheus VM Essentials hosts): inventory over the configured
 * hosts, backups of running domains (pull-mode backup job + checkpoint) and shut-off domains
 * (qcow2 bitmaps + qemu-nbd), restores, and cleanup of what the appliance left behind.
 */
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {LocalRunner, type CommandLog, type CommandRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError} from '../../util/errors.js';
import type {BackupOptions, InstantRecovery, InventoryVm, Logger, PlatformAdapter, RestorePlan, RestoreSource, VmBackup, VmRestore, VmRestoreTarget} from '../types.js';
import {cleanupHost, type TrustedCheckpoints} from './cleanup.js';
import {LibvirtHost, type LibvirtHostConfig} from './host.js';
import {describeDomain, findDomainForBackup, listDomainUuids, toInventoryVm} from './inventory.js';
import {openOfflineBackup} from './offline-backup.js';
import {resumeLibvirtInstantVm, startLibvirtInstantVm} from './instant.js';
import {CheckpointNaming} from './plan.js';
import {openLibvirtRestore, prepareLibvirtRestore} from './restore.js';
import {openRunningBackup} from './running-backup.js';

export interface LibvirtPlatformOptions {
  hosts: LibvirtHostConfig[];
  /** Runs commands for every host (tests); by default local or SSH per host connection. */
  runner?: CommandRunner;
  /** Directory on each host for sockets, scratch files and pid files (default /var/tmp/vmbackup). */
  scratchDir?: string;
  /** Directory on the appliance for forwarded sockets and restore exports. */
  localScratchDir?: string;
  /** Receives every command line (secrets redacted). */
  commandLog?: CommandLog;
  /** Prefix of the appliance's checkpoints and bitmaps (default 'vmbackup-'); unique per appliance when several share hosts. */
  checkpointPrefix?: string;
  /** Checkpoint ids recorded by committed restore points, per VM id; cleanup keeps these. */
  trustedCheckpoints?: TrustedCheckpoints;
}

export class LibvirtPlatform implements PlatformAdapter {
  readonly kind = 'libvirt' as const;
  readonly hosts: LibvirtHost[];
  /** The appliance's own scratch directory (forwarded sockets, restores to files). */
  readonly localScratchDir: string;
  /** Runs commands on the appliance itself (restores to files). */
  readonly localRunner: CommandRunner;
  private readonly trusted: TrustedCheckpoints | undefined;
  readonly instant: InstantRecovery = {
    start: (spec, log) => startLibvirtInstantVm(this, spec, log),
    resume: (state, serve) => resumeLibvirtInstantVm(this, state, serve),
  };

  constructor(opts: LibvirtPlatformOptions) {
    if (opts.hosts.length === 0) {
      throw new UserError('No libvirt host is configured.', {hint: 'Add at least one host (local or over SSH).', exitCode: ExitCode.invalidInput});
    }
    const scratchDir = opts.scratchDir ?? '/var/tmp/vmbackup';
    const localScratchDir = opts.localScratchDir ?? join(tmpdir(), `vmbackup-${process.getuid?.() ?? 0}`);
    const naming = new CheckpointNaming(opts.checkpointPrefix);
    this.hosts = opts.hosts.map(
      (h) => new LibvirtHost(h, {runner: opts.runner, scratchDir, localScratchDir: join(localScratchDir, safeName(h.name)), log: opts.commandLog, naming}),
    );
    this.trusted = opts.trustedCheckpoints;
    this.localScratchDir = localScratchDir;
    this.localRunner = new LocalRunner({log: opts.commandLog});
  }

  host(name: string): LibvirtHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new UserError(`No libvirt host named ${name} is configured.`, {hint: `Known hosts: ${this.hosts.map((x) => x.name).join(', ')}.`, exitCode: ExitCode.notFound});
    return h;
  }

  async inventory(): Promise<InventoryVm[]> {
    const out: InventoryVm[] = [];
    for (const host of this.hosts) {
      for (const uuid of await listDomainUuids(host)) {
        try {
          // Tolerant: a VM whose disk image is missing is listed with that disk marked, not a failed inventory.
          out.push(toInventoryVm(await describeDomain(host, uuid, {tolerant: true})));
        } catch (err) {
          // A domain undefined between the list and its details is simply no longer there.
          if ((await host.virsh(['domstate', uuid], {allowFailure: true})).exitCode !== 0) continue;
          throw err;
        }
      }
    }
    return out;
  }

  /**
   * `virsh dominfo` on each host (it resolves a name, a UUID or a numeric id; one command per
   * host, whatever the number of VMs), then that VM's details.
   */
  async findVm(nameOrId: string): Promise<InventoryVm | undefined> {
    for (const host of this.hosts) {
      const r = await host.virsh(['dominfo', '--domain', nameOrId], {allowFailure: true});
      const uuid = r.exitCode === 0 ? (/^UUID:\s*([0-9a-f-]{36})\s*$/im.exec(r.stdout)?.[1] ?? '') : '';
      if (!uuid) continue;
      try {
        return toInventoryVm(await describeDomain(host, uuid));
      } catch (err) {
        // Undefined between the two calls: it is simply not there any more.
        if ((await host.virsh(['domstate', uuid], {allowFailure: true})).exitCode !== 0) return undefined;
        throw err;
      }
    }
    return undefined;
  }

  async openBackup(vmId: string, opts: BackupOptions): Promise<VmBackup> {
    const {details: d, inactiveXml} = await findDomainForBackup(this.hosts, vmId);
    // A paused domain still has a QEMU process: the pull job works (without a freeze).
    if (d.state === 'running' || d.state === 'paused') return openRunningBackup(d, opts, inactiveXml);
    if (d.state === 'shutoff') return openOfflineBackup(d, opts, inactiveXml);
    throw new UserError(`VM ${d.info.name} is ${d.state}; only running and shut-off VMs can be backed up.`, {
      hint: 'Resume or shut down the VM, or wait until its current operation finishes, then run again.',
      exitCode: ExitCode.platformFailed,
    });
  }

  async planRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]}): Promise<RestorePlan> {
    return (await prepareLibvirtRestore(this, source, target, opts)).plan;
  }

  openRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
    return openLibvirtRestore(this, source, target, opts);
  }

  async cleanupLeftovers(log: Logger): Promise<void> {
    for (const host of this.hosts) await cleanupHost(host, this.trusted, log);
  }

  async close(): Promise<void> {
    for (const host of this.hosts) await host.close();
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40);
}
