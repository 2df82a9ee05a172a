/**
 * `qemu-img info --output=json -U` on a host, and what it tells the backup: the real format, the
 * virtual size, the qcow2 version (v2 cannot hold bitmaps), and the persistent bitmaps with their
 * flags (`auto` = recording, `in-use` = inconsistent after a crash; docs/reference/libvirt-backup.md §3.2).
 */
import type {CommandRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError} from '../../util/errors.js';

export interface ImageBitmap {
  name: string;
  flags: string[];
  granularity?: number;
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  /** qcow2 compat: "1.1" (v3) or "0.10" (v2). */
  compat?: string;
  clusterSize?: number;
  bitmaps: ImageBitmap[];
}

export function parseImageInfo(json: string): ImageInfo {
  const j = JSON.parse(json) as Record<string, unknown>;
  const spec = (j['format-specific'] as {data?: Record<string, unknown>} | undefined)?.data ?? {};
  const bitmaps = Array.isArray(spec['bitmaps']) ? (spec['bitmaps'] as Record<string, unknown>[]) : [];
  return {
    format: String(j['format']),
    virtualSize: Number(j['virtual-size']),
    compat: spec['compat'] === undefined ? undefined : String(spec['compat']),
    clusterSize: j['cluster-size'] === undefined ? undefined : Number(j['cluster-size']),
    bitmaps: bitmaps.map((b) => ({
      name: String(b['name']),
      flags: Array.isArray(b['flags']) ? (b['flags'] as unknown[]).map(String) : [],
      granularity: b['granularity'] === undefined ? undefined : Number(b['granularity']),
    })),
  };
}

/** Whether changed-block tracking can work for an image, and if not, why (for the inventory). */
export function trackability(info: ImageInfo): {trackable: boolean; note?: string} {
  if (info.format !== 'qcow2') {
    return {trackable: false, note: `${info.format.toUpperCase()} format has no changed-block tracking; the disk is read in full every time`};
  }
  if (info.compat === '0.10') {
    return {trackable: false, note: 'qcow2 v2 (compat 0.10) cannot hold bitmaps; convert it with qemu-img convert -O qcow2 -o compat=1.1'};
  }
  return {trackable: true};
}

/** A bitmap an incremental can start from: present, recording and consistent. */
export function usableBitmap(info: ImageInfo, name: string): boolean {
  const b = info.bitmaps.find((x) => x.name === name);
  return b !== undefined && b.flags.includes('auto') && !b.flags.includes('in-use');
}

/**
 * `format` should be the domain's <driver type>: that is what the guest sees, and probing the
 * format of a raw image is unsafe (a guest can write a qcow2 header into its raw disk).
 */
export async function imageInfo(runner: CommandRunner, path: string, opts: {shared?: boolean; format?: string} = {}): Promise<ImageInfo> {
  const argv = ['qemu-img', 'info', '--output=json', ...(opts.format ? ['-f', opts.format] : []), ...(opts.shared === false ? [] : ['-U']), path];
  const r = await runner.run(argv, {allowFailure: true, timeoutMs: 60_000});
  if (r.exitCode !== 0) {
    throw new UserError(`Cannot read the disk image ${path} on ${runner.where}: ${r.stderr.trim()}`, {
      hint: 'Check that the image exists and is readable by the appliance user on that host.',
      exitCode: ExitCode.platformFailed,
    });
  }
  return parseImageInfo(r.stdout);
}
