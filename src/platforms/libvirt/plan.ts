/**
 * Pure planning of one VM backup: which disks are read in full and which incrementally, which
 * carry a bitmap in the new checkpoint, and the warnings the session log must show.
 *
 * A disk is incremental only when all of: there is a usable base, the base recorded a bitmap for
 * it, that bitmap is present, recording and consistent in the image, the disk is qcow2 v3, and
 * the engine did not force it to full. Everything else is read in full (never silently skipped).
 */
import type {SessionEvent} from '../types.js';
import {trackability, usableBitmap, type ImageInfo} from './image-info.js';

/** The default prefix of every checkpoint and bitmap this appliance creates. */
export const CHECKPOINT_PREFIX = 'vmbackup-';

/**
 * How this appliance names its checkpoints (and the qcow2 bitmaps of shut-off VMs):
 * <prefix><UTC time>-<4 hex>, e.g. vmbackup-20261123T193000Z-1a2b, sortable by time and valid as
 * a bitmap name. A name is ours only when it has exactly that shape after our prefix, so
 * another appliance with a longer prefix (vmbackup-site2-...) or any other tool is never "ours".
 */
export class CheckpointNaming {
  readonly prefix: string;

  constructor(prefix: string = CHECKPOINT_PREFIX) {
    if (!/^[A-Za-z0-9._-]{1,40}$/.test(prefix)) throw new Error(`invalid checkpoint prefix ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
  }

  newName(now: Date, random: string): string {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    return `${this.prefix}${stamp}-${random}`;
  }

  isOwn(name: string): boolean {
    return name.startsWith(this.prefix) && /^\d{8}T\d{6}Z-[0-9a-f]{4}$/.test(name.slice(this.prefix.length));
  }
}

export interface PlanDiskInput {
  target: string;
  image: ImageInfo;
}

export interface DiskPlan {
  target: string;
  mode: 'full' | 'incremental';
  /** Whether the new checkpoint records a bitmap for the disk. */
  bitmap: boolean;
  /** The bitmap the incremental reads changes from (for qemu-nbd --bitmap). */
  baseBitmap?: string;
}

export function planDisks(opts: {
  vm: string;
  disks: PlanDiskInput[];
  /** Disk target → bitmap name in the base checkpoint; undefined when there is no usable base. */
  baseBitmaps: Map<string, string> | undefined;
  forceFull?: readonly string[];
  /**
   * Whether a base bitmap can be used. Shut-off images are checked with qemu-img; a running QEMU
   * keeps its bitmaps in memory (the image says in-use), so there libvirt validates at backup-begin.
   */
  bitmapUsable?: (image: ImageInfo, bitmap: string) => boolean;
}): {plans: DiskPlan[]; events: SessionEvent[]} {
  const bitmapUsable = opts.bitmapUsable ?? usableBitmap;
  const plans: DiskPlan[] = [];
  const events: SessionEvent[] = [];
  for (const {target, image} of opts.disks) {
    const t = trackability(image);
    if (!t.trackable) {
      if (image.format === 'raw') {
        events.push({
          severity: 'warning',
          code: 'raw-disk-full-scan',
          message: `disk ${target} has RAW format and can be backed up only in full scan mode`,
          vm: opts.vm,
          disk: target,
        });
      } else {
        events.push({severity: 'warning', code: 'disk-not-trackable', message: `disk ${target}: ${t.note}`, vm: opts.vm, disk: target});
      }
      plans.push({target, mode: 'full', bitmap: false});
      continue;
    }
    const baseBitmap = opts.baseBitmaps?.get(target);
    if (opts.forceFull?.includes(target)) {
      events.push({severity: 'info', code: 'disk-forced-full', message: `disk ${target} is read in full as requested`, vm: opts.vm, disk: target});
      plans.push({target, mode: 'full', bitmap: true});
    } else if (opts.baseBitmaps === undefined) {
      plans.push({target, mode: 'full', bitmap: true});
    } else if (baseBitmap === undefined) {
      events.push({
        severity: 'info',
        code: 'disk-new-since-base',
        message: `disk ${target} is new since the last restore point and is read in full`,
        vm: opts.vm,
        disk: target,
      });
      plans.push({target, mode: 'full', bitmap: true});
    } else if (!bitmapUsable(image, baseBitmap)) {
      events.push({
        severity: 'warning',
        code: 'checkpoint-lost',
        message: `disk ${target}: the bitmap ${baseBitmap} of the last restore point is missing or inconsistent; the disk is read in full`,
        vm: opts.vm,
        disk: target,
      });
      plans.push({target, mode: 'full', bitmap: true});
    } else {
      plans.push({target, mode: 'incremental', bitmap: true, baseBitmap});
    }
  }
  return {plans, events};
}
