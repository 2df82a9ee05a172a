/**
 * Garbage collection: mark the chunks committed indexes reference, sweep the others that are
 * old enough, and clear what dead writers left behind.
 *
 * Why it is safe while backups run (docs/repository-format.md "Garbage collection"):
 *  - every writer registers (writers/<id>.json, with its start time) before it touches or writes
 *    any chunk, and unregisters only after its manifest is durable;
 *  - GC notes its own start, THEN reads the registrations, THEN lists manifests. The cut-off is
 *    min(GC start, oldest live writer's start) − margin. A chunk a running writer needs was
 *    written or touched after that writer started, so its mtime is past the cut-off; a writer
 *    GC did not see started after GC did, so the same holds; a writer that finished before GC
 *    read the registrations has a manifest GC's mark phase sees.
 *  - the touch-versus-delete race is the backend's to close: deleteIfOlder() decides on the
 *    time at the moment of removal (the local directory renames the chunk aside, judges the
 *    renamed file, and links it back when a writer touched it meanwhile; a writer whose touch
 *    came after the rename got "absent" and wrote the chunk again).
 * Everything goes through the storage backend (storage/backend.ts); modification times are the
 * backend's modifiedMs.
 * GC is exclusive with other GC (locks/gc.lock), and refuses to run when a manifest or an
 * index cannot be read, because it could not know which chunks that restore point needs.
 */
import {createHash} from 'node:crypto';
import {UserError} from '../util/errors.js';
import {ZERO_ID, chunkId, decodeChunk, maxChunkFileSize} from './chunk-file.js';
import type {RepoContext} from './context.js';
import {decodeIndex} from './index-file.js';
import {describeSettled, settleInterruptedWriters} from './interrupted.js';
import {ChunkMarks} from './marks.js';
import {BAD_MARK, CHUNK_NAME, CHUNKS_DIR, GC_LOCK_KEY, MANIFEST_FILE, POINTS_DIR, WRITERS_DIR, isChunkPrefix} from './layout.js';
import {parseOwner} from './lock.js';
import {MAX_MANIFEST_BYTES, parseManifest} from './manifest.js';
import {indexContent, manifestText} from './sealed-files.js';
import {loadIndexIds} from './reader.js';
import type {GcOptions, GcResult} from './types.js';

export const DEFAULT_SAFETY_MARGIN_MS = 5 * 60_000;
/** File times come from the kernel's coarse clock, which may lag Date.now() by a few ms. */
const CLOCK_SLACK_MS = 1000;
/** A writer journal holds one 65-byte line per new chunk: 64 MiB is a million chunks. */
const MAX_JOURNAL_BYTES = 64 << 20;


export async function collectGarbage(ctx: RepoContext, opts: GcOptions = {}): Promise<GcResult> {
  const lock = await ctx.backend.lock(GC_LOCK_KEY, {
    purpose: 'garbage collection',
    timeoutMs: 0,
    what: `garbage collection of repository ${ctx.root}`,
    hint: 'Another garbage collection is running on this repository; wait for it to finish.',
  });
  try {
    return await run(ctx, opts);
  } finally {
    await lock.release();
  }
}

async function run(ctx: RepoContext, opts: GcOptions): Promise<GcResult> {
  const backend = ctx.backend;
  const names = async (dir: string, kind: 'dir' | 'object') => (await backend.list(dir)).filter((e) => e.dir === (kind === 'dir')).map((e) => e.name);
  const progress = opts.onProgress ?? (() => undefined);
  const gcStart = Date.now();
  const result: GcResult = {
    referencedChunks: 0,
    removedChunks: 0,
    removedBytes: 0,
    pendingChunks: 0,
    pendingBytes: 0,
    removedTempFiles: 0,
    recoveredChunks: 0,
    removedPartialRestorePoints: [],
    damaged: [],
    missingChunks: 0,
    cutoff: '',
  };

  // 0. Writers a crash stopped before their sync(): their files made durable or checked before
  // GC removes their registrations, which is what says they need it (interrupted.ts).
  const settled = describeSettled(await settleInterruptedWriters(ctx), `repository ${ctx.root}`);
  if (settled) result.interrupted = settled;

  // 1. Writers: the oldest live one bounds the cut-off; dead ones leave a partial restore point.
  const live = new Set<string>();
  const dead: string[] = [];
  let oldest = gcStart;
  for (const name of await names(WRITERS_DIR, 'object')) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -'.json'.length);
    const raw = await backend.get(`${WRITERS_DIR}/${name}`, {max: 64 << 10, what: 'writer registration'}).catch(() => undefined);
    if (raw === undefined) continue;
    const owner = parseOwner(raw.toString('utf8'));
    if (owner && backend.ownerAlive(owner)) {
      live.add(id);
      oldest = Math.min(oldest, owner.since);
    } else {
      dead.push(id);
    }
  }
  const cutoff = Math.min(gcStart, oldest) - Math.max(opts.safetyMarginMs ?? DEFAULT_SAFETY_MARGIN_MS, CLOCK_SLACK_MS);
  result.cutoff = new Date(cutoff).toISOString();
  progress({phase: 'writers', done: 1, total: 1});

  // 2. Mark. Directories without a manifest are partial restore points: a dead writer's go now,
  // an unregistered one's once older than the cut-off (its writer may just be starting).
  // Only directories are listed: a symbolic link planted in a hostile repository is never followed.
  const points = await names(POINTS_DIR, 'dir');
  // By the first 8 bytes of each id, 8 bytes per chunk (marks.ts: a Set stops at 16.7 million).
  const marked = new ChunkMarks();
  let done = 0;
  for (const id of points) {
    progress({phase: 'mark', done: done++, total: points.length});
    const dir = `${POINTS_DIR}/${id}`;
    const manifestKey = `${dir}/${MANIFEST_FILE}`;
    const raw = await backend.get(manifestKey, {max: MAX_MANIFEST_BYTES, what: 'manifest'});
    if (raw === undefined) {
      if (live.has(id)) continue;
      if (dead.includes(id) || (await newestIn(dir)) < cutoff) {
        await backend.deleteTree(dir);
        result.removedPartialRestorePoints.push(id);
      }
      continue;
    }
    const mark = (ids: Buffer) => {
      for (let off = 0; off < ids.length; off += 32) {
        const c = ids.subarray(off, off + 32);
        if (!ZERO_ID.equals(c)) marked.add(c);
      }
    };
    let m;
    try {
      m = parseManifest(manifestText(ctx, id, raw, backend.describe(manifestKey)), backend.describe(manifestKey), {dirName: id, chunkSize: ctx.chunkSize});
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      // A damaged manifest: its chunks are still kept, read from the index files beside it (an
      // administrator may put the manifest back from a copy). GC goes on for everything else.
      result.damaged.push({restorePoint: id, detail: err.message});
      const unknown = await markFromIndexFiles(ctx, id, mark);
      if (unknown) result.sweepSkipped ??= `the chunks of restore point ${id} cannot be known (${unknown}); run "vmbackup repo forget ${ctx.root} ${id}" to remove it`;
      continue;
    }
    for (const d of m.disks) {
      let ids: Buffer;
      try {
        ids = await loadIndexIds(ctx, m, d);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        result.damaged.push({restorePoint: id, detail: err.message});
        result.sweepSkipped ??= `the index of disk ${d.key} of restore point ${id} is damaged, so its chunks cannot be known; run "vmbackup repo forget ${ctx.root} ${id}" to remove it`;
        continue;
      }
      mark(ids);
    }
  }
  progress({phase: 'mark', done: points.length, total: points.length});
  for (const id of dead) await backend.delete(`${WRITERS_DIR}/${id}.json`).catch(() => undefined);
  marked.seal();
  result.referencedChunks = marked.size;

  // The chunks failed or dead writers stored (their journals): known to be nobody's but theirs
  // unless a restore point references them (marked) or a live writer touched them since its
  // start, so they go without the safety margin's wait (which guards writers GC cannot see).
  const journals = (await names(WRITERS_DIR, 'object')).filter((n) => n.endsWith('.chunks') && !live.has(n.slice(0, -'.chunks'.length)));
  const orphaned = new ChunkMarks();
  for (const name of journals) {
    const text = await backend.get(`${WRITERS_DIR}/${name}`, {max: MAX_JOURNAL_BYTES, what: 'writer journal'}).catch(() => undefined);
    for (const line of text?.toString('latin1').split('\n') ?? []) if (CHUNK_NAME.test(line)) orphaned.add(line);
  }
  orphaned.seal();
  const deadCutoff = Math.min(gcStart, oldest) - CLOCK_SLACK_MS;

  // 3. Sweep (not when a restore point's chunks could not all be known: they might be swept).
  if (result.sweepSkipped) {
    progress({phase: 'sweep', done: 1, total: 1});
    return result;
  }
  const prefixes = (await names(CHUNKS_DIR, 'dir')).filter((p) => isChunkPrefix(p, ctx.formatVersion));
  // A GC killed inside the backend's deleteIfOlder can leave the only copy of a chunk aside:
  // put back the copies that hold a referenced chunk that is missing.
  const recover = {
    maxBytes: maxChunkFileSize(ctx.chunkSize),
    wants: (key: string) => {
      const hex = key.slice(key.lastIndexOf('/') + 1);
      return CHUNK_NAME.test(hex) && marked.has(hex);
    },
    holds: (key: string, bytes: Buffer) => {
      try {
        const hex = key.slice(key.lastIndexOf('/') + 1);
        return chunkId(decodeChunk(bytes, hex, ctx.chunkSize, ctx.keys), ctx.keys?.mac).toString('hex') === hex;
      } catch {
        return false;
      }
    },
  };
  let present = 0;
  for (let n = 0; n < prefixes.length; n++) {
    progress({phase: 'sweep', done: n, total: prefixes.length});
    const dir = `${CHUNKS_DIR}/${prefixes[n]!}`;
    const left = await backend.sweepLeftovers(dir, cutoff, recover);
    result.recoveredChunks += left.recovered;
    result.removedTempFiles += left.removed;
    for (const name of await names(dir, 'object')) {
      const key = `${dir}/${name}`;
      if (CHUNK_NAME.test(name)) {
        if (marked.has(name)) {
          present++;
          continue;
        }
        const r = await backend.deleteIfOlder(key, orphaned.has(name) ? Math.max(cutoff, deadCutoff) : cutoff);
        if (r.status === 'deleted') {
          result.removedChunks++;
          result.removedBytes += r.size;
        } else if (r.status === 'kept') {
          result.pendingChunks++;
          result.pendingBytes += r.size;
        }
      } else if (name.includes(BAD_MARK)) {
        // A quarantined copy is kept while a restore point still needs that chunk id.
        if (marked.has(name.slice(0, 64))) continue;
        const r = await backend.deleteIfOlder(key, cutoff);
        if (r.status === 'deleted') {
          result.removedChunks++;
          result.removedBytes += r.size;
        }
      }
    }
  }
  progress({phase: 'sweep', done: prefixes.length, total: prefixes.length});
  for (const name of journals) await backend.delete(`${WRITERS_DIR}/${name}`).catch(() => undefined);
  // Leftovers of writers killed while writing their registration or manifest.
  for (const dir of [WRITERS_DIR, POINTS_DIR]) result.removedTempFiles += (await backend.sweepLeftovers(dir, cutoff)).removed;
  result.missingChunks = Math.max(0, marked.size - present - result.recoveredChunks);
  await backend.sync();
  return result;

  /** When anything under `dir` was last written (0 when it holds nothing). */
  async function newestIn(dir: string): Promise<number> {
    let newest = 0;
    for (const e of await backend.list(dir)) {
      const t = e.dir ? await newestIn(`${dir}/${e.name}`) : ((await backend.stat(`${dir}/${e.name}`))?.modifiedMs ?? 0);
      newest = Math.max(newest, t);
    }
    return newest;
  }
}

/**
 * Marks the chunks of every index file in a restore point directory whose manifest is damaged.
 * Returns why the chunks cannot all be known (an index that does not decode), or undefined.
 */
async function markFromIndexFiles(ctx: RepoContext, id: string, mark: (ids: Buffer) => void): Promise<string | undefined> {
  const dir = `${POINTS_DIR}/${id}`;
  const files = (await ctx.backend.list(dir)).filter((e) => !e.dir && /^disk-\d+\.idx$/.test(e.name)).map((e) => e.name);
  if (files.length === 0) return 'it has no index files';
  for (const f of files) {
    const raw = await ctx.backend.get(`${dir}/${f}`, {max: MAX_INDEX_BYTES, what: 'index'}).catch(() => undefined);
    if (!raw) return `${f} is not a readable index`;
    const content = indexContent(ctx, id, f, raw);
    if ('error' in content) return `${f}: ${content.error}`;
    const decoded = decodeIndex(content);
    if ('error' in decoded) return `${f}: ${decoded.error}`;
    mark(decoded.ids);
  }
  return undefined;
}

/**
 * The largest index read without a manifest to vouch for its size (a 2 TiB disk at 1 MiB
 * chunks); a larger one counts as unknown, and the sweep is skipped rather than memory spent.
 */
const MAX_INDEX_BYTES = 64 << 20;
