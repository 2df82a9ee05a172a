/**
 * Pure helpers that turn NBD block-status extents into the engine's SourceExtent lists.
 *
 * - base:allocation: ZERO (2) means reads-as-zeros → 'zero'. HOLE (1) without ZERO has undefined
 *   content by the protocol, so it is 'data' and gets read (docs/reference/libvirt-backup.md §9 item 5).
 * - qemu:dirty-bitmap:*: DIRTY (1) means changed since the checkpoint. Combined with allocation,
 *   dirty ∩ ZERO is 'zero' (so a restore replays the zeros and stays bit-exact, §9 item 6),
 *   dirty ∩ other is 'data', and clean is 'unchanged'.
 * Adjacent extents of the same kind are merged. Inputs are contiguous, in offset order.
 */
import {StateFlag} from './protocol.js';

/**
 * One extent of an export. The same shape as SourceExtent in platforms/types.ts (so these lists
 * are DiskSource extents as they are), declared here because transports sit below platforms.
 */
export interface SourceExtent {
  offset: number;
  length: number;
  kind: 'data' | 'zero' | 'unchanged';
}

/** A block-status entry; `offset` is optional where entries are known to follow each other. */
export interface StatusEntry {
  offset?: number;
  length: number;
  flags: number;
}

export function allocationKind(flags: number): 'data' | 'zero' {
  return flags & StateFlag.zero ? 'zero' : 'data';
}

/** Appends an extent, merging it into the previous one when adjacent and of the same kind. */
export function pushMerged(out: SourceExtent[], e: SourceExtent): void {
  if (e.length <= 0) return;
  const last = out[out.length - 1];
  if (last && last.kind === e.kind && last.offset + last.length === e.offset) last.length += e.length;
  else out.push({...e});
}

/** Merges adjacent extents of the same kind. */
export function mergeExtents(extents: Iterable<SourceExtent>): SourceExtent[] {
  const out: SourceExtent[] = [];
  for (const e of extents) pushMerged(out, e);
  return out;
}

/** base:allocation entries starting at `base.offset` (or at their own offsets) → SourceExtents. */
export function allocationToExtents(entries: readonly StatusEntry[], base: {offset: number}): SourceExtent[] {
  const out: SourceExtent[] = [];
  let pos = base.offset;
  for (const e of entries) {
    const offset = e.offset ?? pos;
    pushMerged(out, {offset, length: e.length, kind: allocationKind(e.flags)});
    pos = offset + e.length;
  }
  return out;
}

/**
 * Combines dirty-bitmap entries with base:allocation entries over the same range (each list
 * contiguous, with offsets). Where allocation is missing for a dirty range, that range is 'data':
 * reading too much is safe, skipping is not.
 */
export function dirtyToExtents(dirtyEntries: readonly Required<StatusEntry>[], allocationEntries: readonly Required<StatusEntry>[]): SourceExtent[] {
  const out: SourceExtent[] = [];
  let a = 0;
  for (const d of dirtyEntries) {
    const end = d.offset + d.length;
    if (!(d.flags & StateFlag.dirty)) {
      pushMerged(out, {offset: d.offset, length: d.length, kind: 'unchanged'});
      continue;
    }
    let pos = d.offset;
    while (pos < end) {
      // Skip allocation entries that end before pos.
      while (a < allocationEntries.length && allocationEntries[a].offset + allocationEntries[a].length <= pos) a++;
      const alloc = allocationEntries[a];
      if (!alloc || alloc.offset > pos) {
        const until = alloc ? Math.min(alloc.offset, end) : end;
        pushMerged(out, {offset: pos, length: until - pos, kind: 'data'});
        pos = until;
        continue;
      }
      const until = Math.min(alloc.offset + alloc.length, end);
      pushMerged(out, {offset: pos, length: until - pos, kind: allocationKind(alloc.flags)});
      pos = until;
    }
  }
  return out;
}
