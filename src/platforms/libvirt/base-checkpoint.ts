/**
 * Finds the base of an incremental: the checkpoint recorded by the last committed restore point.
 *
 * Running VMs: libvirt must know the checkpoint. When it does not (migration, failover, lost
 * metadata), it is redefined from the XML the restore point saved; when that fails the backup
 * is full, with a 'checkpoint-lost' warning. Shut-off VMs only need the bitmap names, which come
 * from the saved XML (or the checkpoint name itself). Per-disk bitmap health is checked later
 * in plan.ts against `qemu-img info`.
 */
import type {CheckpointRecord, Logger} from '../types.js';
import {buildRedefineXml, checkpointBitmaps, parseCheckpointXml} from './backup-xml.js';
import {dumpCheckpoint, lookupCheckpoint, redefineCheckpoint, type CheckpointLookup} from './checkpoints.js';
import type {LibvirtHost} from './host.js';

export function savedCheckpointXml(base: CheckpointRecord): string | undefined {
  const xml = base.data?.['xml'];
  return typeof xml === 'string' && xml.includes('<domaincheckpoint') ? xml : undefined;
}

function lost(log: Logger, vm: string, message: string): undefined {
  log({severity: 'warning', code: 'checkpoint-lost', message, vm});
  return undefined;
}

/** Disk target → bitmap of the base, for a running VM; undefined means: take a full backup. */
export async function resolveRunningBase(
  host: LibvirtHost,
  uuid: string,
  vm: string,
  base: CheckpointRecord | undefined,
  dir: string,
  log: Logger,
  /** The domain's disks now: the redefinition must describe these, not the ones of back then. */
  currentTargets: readonly string[],
  /** lookupCheckpoint(base.id), when the caller started it already (alongside other reads). */
  known?: Promise<CheckpointLookup>,
): Promise<Map<string, string> | undefined> {
  if (!base) return undefined;
  const found = await (known ?? lookupCheckpoint(host, uuid, base.id));
  if (found.listed) {
    return checkpointBitmaps(parseCheckpointXml(found.xml ?? (await dumpCheckpoint(host, uuid, base.id))));
  }
  const saved = savedCheckpointXml(base);
  if (!saved) {
    return lost(log, vm, `libvirt on ${host.name} no longer knows checkpoint ${base.id} and no saved copy exists; this backup is full`);
  }
  const saved0 = parseCheckpointXml(saved);
  // Disks removed since are left out; disks added since get checkpoint='no' (else libvirt would
  // expect a bitmap for them and the validation would fail).
  const parsed = {
    ...saved0,
    disks: [
      ...saved0.disks.filter((x) => currentTargets.includes(x.target)),
      ...currentTargets.filter((t) => !saved0.disks.some((x) => x.target === t)).map((target) => ({target, checkpoint: 'no'})),
    ],
  };
  const error = await redefineCheckpoint(host, uuid, buildRedefineXml(parsed), dir, {validate: true});
  if (error) {
    return lost(log, vm, `checkpoint ${base.id} was lost on ${host.name} and could not be redefined (${error}); this backup is full`);
  }
  log({severity: 'info', code: 'checkpoint-redefined', message: `checkpoint ${base.id} was missing on ${host.name} and was redefined from the restore point`, vm});
  return checkpointBitmaps(parsed);
}

/** Disk target → bitmap of the base, for a shut-off VM (no libvirt involved). */
export function resolveOfflineBase(base: CheckpointRecord | undefined, targets: readonly string[]): Map<string, string> | undefined {
  if (!base) return undefined;
  const saved = savedCheckpointXml(base);
  if (saved) return checkpointBitmaps(parseCheckpointXml(saved));
  // Without the saved XML, assume every disk recorded a bitmap named like the checkpoint;
  // plan.ts still checks that the bitmap really is in each image.
  return new Map(targets.map((t) => [t, base.id]));
}
