/**
 * Turns the extents a disk source reports into chunk-aligned work for the data mover.
 *
 * The repository stores fixed-size chunks aligned to disk offsets, so every decision is made
 * per chunk:
 *   - every byte of the chunk unchanged since the base   → nothing to do (the base's chunk stays);
 *   - every byte known to read as zero                   → record a zero chunk, read nothing;
 *   - anything else (data, or a mix)                     → read the whole chunk.
 * A mix of zero and unchanged must be read too: its new content is neither the base's chunk
 * nor all zeros. Reading the whole chunk is always correct because a source reads the disk's
 * current content; the extents only tell us what we may skip.
 *
 * Consecutive chunks of the same kind are coalesced into one work item of at most `maxRun`
 * bytes, so the source sees few large reads. Pure and streaming: a 2 TiB disk never sits in
 * memory, only the chunk being classified.
 */
import type {SourceExtent} from '../platforms/types.js';

export interface WorkItem {
  kind: 'read' | 'zero';
  offset: number;
  length: number;
}

export interface PlanOptions {
  chunkSize: number;
  size: number;
  /** Largest read to emit; rounded down to whole chunks (at least one chunk). */
  maxRun: number;
  /**
   * Treat 'unchanged' as data everywhere (no usable base in the repository), or in these
   * chunk-aligned ranges only (the base's chunks there are missing or damaged).
   */
  noBase?: boolean;
  mustRead?: {offset: number; length: number}[];
}

type ChunkClass = 'unchanged' | 'zero' | 'read';

/** Classifies each chunk from a stream of extents, in order. */
async function* classifyChunks(
  extents: AsyncIterable<SourceExtent>,
  opts: PlanOptions,
): AsyncGenerator<{index: number; cls: ChunkClass}> {
  const {chunkSize, size} = opts;
  const chunkCount = Math.ceil(size / chunkSize);
  let index = 0;
  let seen = new Set<SourceExtent['kind']>();
  let position = 0;

  const verdict = (): ChunkClass => {
    if (seen.size === 1 && seen.has('unchanged')) return opts.noBase ? 'read' : 'unchanged';
    if (seen.size === 1 && seen.has('zero')) return 'zero';
    return 'read';
  };

  for await (const extent of extents) {
    if (extent.offset !== position) {
      throw new Error(`disk source extents are not contiguous: expected offset ${position}, got ${extent.offset}`);
    }
    let offset = extent.offset;
    const end = Math.min(extent.offset + extent.length, size);
    position = extent.offset + extent.length;
    while (offset < end) {
      const chunkEnd = Math.min((index + 1) * chunkSize, size);
      const take = Math.min(end, chunkEnd) - offset;
      seen.add(extent.kind);
      offset += take;
      if (offset === chunkEnd) {
        yield {index, cls: verdict()};
        index += 1;
        seen = new Set();
      }
    }
  }
  if (index < chunkCount) {
    // A source must cover the whole disk; a short answer is a bug in the source, and silently
    // treating the rest as unchanged would lose data.
    throw new Error(`disk source extents end at ${position}, before the disk size ${size}`);
  }
}

function inRanges(offset: number, length: number, ranges: {offset: number; length: number}[]): boolean {
  for (const r of ranges) {
    if (offset < r.offset + r.length && r.offset < offset + length) return true;
  }
  return false;
}

/** Yields coalesced chunk-aligned work items; unchanged chunks yield nothing. */
export async function* planWork(extents: AsyncIterable<SourceExtent>, opts: PlanOptions): AsyncGenerator<WorkItem> {
  const {chunkSize, size} = opts;
  const runChunks = Math.max(1, Math.floor(opts.maxRun / chunkSize));
  const mustRead = opts.mustRead ?? [];
  let run: {kind: WorkItem['kind']; first: number; count: number} | undefined;

  const flush = (): WorkItem | undefined => {
    if (!run) return undefined;
    const offset = run.first * chunkSize;
    const length = Math.min((run.first + run.count) * chunkSize, size) - offset;
    const item: WorkItem = {kind: run.kind, offset, length};
    run = undefined;
    return item;
  };

  for await (const {index, cls: raw} of classifyChunks(extents, opts)) {
    let cls = raw;
    if (cls === 'unchanged' && mustRead.length > 0 && inRanges(index * chunkSize, chunkSize, mustRead)) cls = 'read';
    if (cls === 'unchanged') {
      const item = flush();
      if (item) yield item;
      continue;
    }
    const limit = cls === 'read' ? runChunks : Number.MAX_SAFE_INTEGER;
    if (run && run.kind === cls && run.first + run.count === index && run.count < limit) {
      run.count += 1;
      continue;
    }
    const item = flush();
    if (item) yield item;
    run = {kind: cls, first: index, count: 1};
  }
  const last = flush();
  if (last) yield last;
}
