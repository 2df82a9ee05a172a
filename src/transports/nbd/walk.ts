/**
 * walkExtents: the SourceExtents of an NBD export, lazily, window by window.
 *
 * A DiskSource's extents() must cover [0, size) in order without gaps and must not hold a
 * 2 TiB disk's map in memory, so block status is fetched one window at a time (1 GiB by
 * default) and extents are merged across window borders before they are yielded.
 * - Full: base:allocation decides data / zero. Without that context everything is data.
 * - Incremental (dirtyContext given): clean → unchanged; dirty → data, or zero where
 *   base:allocation (when negotiated) says the range reads as zeros.
 */
import type {BlockStatusEntry} from './client.js';
import {allocationToExtents, dirtyToExtents, type SourceExtent} from './extents.js';

export const ALLOCATION_CONTEXT = 'base:allocation';

/** What walkExtents needs: an NbdClient or an NbdPool. */
export interface BlockStatusSource {
  readonly size: number;
  readonly metaContexts: Map<string, number>;
  blockStatus(offset: number, length: number, context: string): Promise<BlockStatusEntry[]>;
}

export interface WalkOptions {
  /** The dirty-bitmap context for an incremental, e.g. 'qemu:dirty-bitmap:backup-vda'. */
  dirtyContext?: string;
  /** Bytes of the export asked about per step. Default 1 GiB. */
  windowBytes?: number;
}

export async function* walkExtents(source: BlockStatusSource, opts: WalkOptions = {}): AsyncGenerator<SourceExtent> {
  const window = opts.windowBytes ?? 1024 * 1024 * 1024;
  if (!(window > 0)) throw new RangeError(`windowBytes must be positive, not ${window}`);
  if (opts.dirtyContext !== undefined && !source.metaContexts.has(opts.dirtyContext)) {
    throw new Error(`meta context '${opts.dirtyContext}' was not negotiated; pass it in metaContexts when connecting`);
  }
  const hasAllocation = source.metaContexts.has(ALLOCATION_CONTEXT);
  let held: SourceExtent | undefined;
  for (let offset = 0; offset < source.size; offset += window) {
    const length = Math.min(window, source.size - offset);
    let extents: SourceExtent[];
    if (opts.dirtyContext !== undefined) {
      const dirty = await source.blockStatus(offset, length, opts.dirtyContext);
      const alloc = hasAllocation && dirty.some((e) => e.flags & 1) ? await source.blockStatus(offset, length, ALLOCATION_CONTEXT) : [];
      extents = dirtyToExtents(dirty, alloc);
    } else if (hasAllocation) {
      extents = allocationToExtents(await source.blockStatus(offset, length, ALLOCATION_CONTEXT), {offset});
    } else {
      extents = [{offset, length, kind: 'data'}];
    }
    for (const e of extents) {
      if (held && held.kind === e.kind && held.offset + held.length === e.offset) {
        held.length += e.length;
      } else {
        if (held) yield held;
        held = {...e};
      }
    }
  }
  if (held) yield held;
}
