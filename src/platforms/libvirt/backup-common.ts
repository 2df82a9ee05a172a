/**
 * What the running and the shut-off backup share: choosing the disks to back up, and releasing
 * a list of resources where one failing release must not keep the others from running.
 */
import {ExitCode, UserError} from '../../util/errors.js';
import type {BackupOptions, CheckpointRecord, DiskSource, InventoryDisk, VmBackup} from '../types.js';
import type {DomainDisk} from './domain-xml.js';
import type {ImageInfo} from './image-info.js';
import {parseDomState, toInventoryVm, type DomainDetails} from './inventory.js';
import {NVRAM_KEY} from '../image/plain-file.js';

export function backupDisks(d: DomainDetails, opts: BackupOptions): {disk: DomainDisk; image: ImageInfo}[] {
  const known = new Set(d.disks.map((x) => x.disk.target));
  for (const key of opts.disks ?? []) {
    // The UEFI variable store is always backed up with the VM (when it has one): naming it is allowed.
    if (!known.has(key) && key !== NVRAM_KEY) {
      throw new UserError(`VM ${d.info.name} has no disk ${key}.`, {
        hint: `Its disks are: ${[...known].join(', ') || 'none'}. Fix the job's disk selection.`,
        exitCode: ExitCode.notFound,
      });
    }
  }
  const out: {disk: DomainDisk; image: ImageInfo}[] = [];
  for (const {disk, image} of d.disks) {
    if (opts.disks && !opts.disks.includes(disk.target)) continue;
    if (!image) {
      opts.log({
        severity: 'warning',
        code: 'disk-unsupported',
        message: `disk ${disk.target} is a ${disk.type} disk, which cannot be backed up; it is skipped`,
        vm: d.info.name,
        disk: disk.target,
      });
      continue;
    }
    out.push({disk, image});
  }
  if (out.length === 0) {
    throw new UserError(`VM ${d.info.name} has no disk that can be backed up.`, {
      hint: 'Only file and block disks are supported; check the VM configuration and the job disk selection.',
      exitCode: ExitCode.invalidInput,
    });
  }
  return out;
}

/** Runs every release step even when one fails; rethrows the first failure at the end. */
export async function releaseAll(steps: (() => Promise<unknown> | unknown)[]): Promise<void> {
  let first: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/**
 * The VmBackup both paths return: complete() releases (keeping the new checkpoint) and runs
 * `afterComplete` once the job/exports are released (release may run it alongside its last,
 * independent steps, and skips it when releasing failed); abort() releases and drops the new
 * checkpoint. Each runs once, whichever first.
 */
export function vmBackup(opts: {
  d: DomainDetails;
  backedUp: readonly string[];
  inactiveXml: string;
  sources: DiskSource[];
  /** Disks that are not domain disks (the UEFI variable store): their sources are in `sources`. */
  extraDisks?: InventoryDisk[];
  checkpoint: CheckpointRecord;
  release: (dropNewCheckpoint: boolean, afterReleased?: () => Promise<void>) => Promise<void>;
  afterComplete: () => Promise<void>;
}): VmBackup {
  const inventory = toInventoryVm(opts.d);
  let finished = false;
  return {
    vm: {...inventory, disks: [...inventory.disks.filter((x) => opts.backedUp.includes(x.key)), ...(opts.extraDisks ?? [])]},
    configuration: {kind: 'libvirt-domain-xml', text: withLiveOnlyDisks(opts.inactiveXml, opts.d.xml, opts.backedUp)},
    sources: opts.sources,
    checkpoint: opts.checkpoint,
    async complete() {
      if (finished) return;
      finished = true;
      await opts.release(false, opts.afterComplete);
    },
    async abort() {
      if (finished) return;
      finished = true;
      await opts.release(true);
    },
    explainFailure: (err: unknown) => explainVmChange(opts.d, err),
  };
}

/**
 * What a backup's failure means when the VM changed under it: removed, shut down or destroyed
 * (a running VM), started (a shut-off one); else the error itself. Used while the backup is
 * opened (the exports may fail as the VM goes) and while it reads.
 */
export async function explainVmChange(d: DomainDetails, err: unknown): Promise<unknown> {
  const {host, info} = d;
  const r = await host.virsh(['domstate', info.uuid], {allowFailure: true});
  if (r.exitCode !== 0) {
    return new UserError(`The VM ${info.name} was removed from ${host.name} (undefined) during its backup; nothing was committed.`, {
      hint: 'If it was moved or recreated, run the backup again; its earlier restore points stay restorable.',
      exitCode: ExitCode.notFound,
      cause: err,
    });
  }
  const now = parseDomState(r.stdout);
  if (d.state !== 'shutoff' && now === 'shutoff') {
    return new UserError(`The VM ${info.name} was shut down or destroyed on ${host.name} during its backup; nothing was committed.`, {
      hint: 'Run the backup again: a shut-off VM is backed up from its disk images.',
      exitCode: ExitCode.platformFailed,
      cause: err,
    });
  }
  if (d.state === 'shutoff' && now !== 'shutoff') {
    return new UserError(`The VM ${info.name} was started on ${host.name} while its disks were being read shut off; nothing was committed.`, {
      hint: 'Run the backup again: a running VM is backed up through a libvirt backup job.',
      exitCode: ExitCode.platformFailed,
      cause: err,
    });
  }
  return err;
}

/**
 * The persistent definition, plus the backed-up disks that exist only in the live one (attached
 * with `attach-disk --live`, without --config): a restore as a new VM gets every disk whose data
 * the restore point holds. Runtime-only parts of those <disk> elements (alias, source index) are
 * dropped. Pure.
 */
export function withLiveOnlyDisks(inactiveXml: string, liveXml: string, backedUp: readonly string[]): string {
  const target = (block: string) => /<target\s[^>]*dev=['"]([^'"]+)['"]/.exec(block)?.[1];
  const persistent = new Set([...inactiveXml.matchAll(/<disk\b[\s\S]*?<\/disk>/g)].map((m) => target(m[0])));
  const extra = [...liveXml.matchAll(/<disk\b[\s\S]*?<\/disk>/g)]
    .map((m) => m[0])
    .filter((block) => {
      const dev = target(block);
      return dev !== undefined && backedUp.includes(dev) && !persistent.has(dev);
    })
    .map((block) => block.replace(/\s*<alias\b[^>]*\/>/g, '').replace(/\s+index=(['"])\d+\1/g, ''));
  if (extra.length === 0 || !inactiveXml.includes('</devices>')) return inactiveXml;
  return inactiveXml.replace('</devices>', `${extra.map((b) => `  ${b}\n  `).join('')}</devices>`);
}
