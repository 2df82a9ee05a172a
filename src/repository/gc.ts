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
 *  - the touch-versus-unlink race is closed by sweeping in two steps: rename the chunk aside,
 *    then look at the mtime of the renamed file (a writer can no longer change it): if a writer
 *    touched it meanwhile, link it back. A writer whose touch came after the rename got ENOENT
 *    and wrote the chunk again.
 * GC is exclusive with other GC (locks/gc.lock), and refuses to run when a manifest or an
 * index cannot be read, because it could not know which chunks that restore point needs.
 */
import {link, lstat, readdir, readFile, rename, rm, unlink} from 'node:fs/promises';
import {join} from 'node:path';
import {errnoCode, UserError} from '../util/errors.js';
import type {RepoContext} from './context.js';
import {TEMP_MARK, ioError, isRealDirectory, readFileCapped, readHead, tempName} from './fsio.js';
import {BAD_MARK, CHUNK_NAME, CHUNKS_DIR, MANIFEST_FILE, POINTS_DIR, WRITERS_DIR, gcLockPath, isChunkPrefix} from './layout.js';
import {acquireLock, isAlive, parseOwner} from './lock.js';
import {MAX_MANIFEST_BYTES, parseManifest} from './manifest.js';
import {loadIndexIds} from './reader.js';
import {decodeIndex} from './index-file.js';
import type {GcOptions, GcResult} from './types.js';
import {ZERO_ID, decodeChunk, maxChunkFileSize} from './chunk-file.js';
import {createHash} from 'node:crypto';

export const DEFAULT_SAFETY_MARGIN_MS = 5 * 60_000;
/** File times come from the kernel's coarse clock, which may lag Date.now() by a few ms. */
const CLOCK_SLACK_MS = 1000;
/** A writer journal holds one 65-byte line per new chunk: 64 MiB is a million chunks. */
const MAX_JOURNAL_BYTES = 64 << 20;

/**
 * Marked chunks are kept by their first 8 bytes: half the memory of full ids, and a collision
 * can only keep a chunk that could have gone, never remove one that is needed.
 */
export function markKey(id: Buffer | string): string {
  return typeof id === 'string' ? id.slice(0, 16) : id.toString('hex', 0, 8);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw ioError(err, dir, 'listing a directory');
  }
}

async function mtimeMs(path: string): Promise<{mtime: number; size: number} | undefined> {
  try {
    const s = await lstat(path);
    return {mtime: s.mtimeMs, size: s.size};
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(err, path, 'reading file times');
  }
}

export async function collectGarbage(ctx: RepoContext, opts: GcOptions = {}): Promise<GcResult> {
  const lock = await acquireLock(gcLockPath(ctx.root), 'garbage collection', {
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

  // 1. Writers: the oldest live one bounds the cut-off; dead ones leave a partial restore point.
  const writersDir = join(ctx.root, WRITERS_DIR);
  const live = new Set<string>();
  const dead: string[] = [];
  let oldest = gcStart;
  for (const name of await listDir(writersDir)) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -'.json'.length);
    const text = await readHead(join(writersDir, name)).catch(() => undefined);
    if (text === undefined) continue;
    const owner = parseOwner(text);
    if (owner && isAlive(owner)) {
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
  const pointsDir = join(ctx.root, POINTS_DIR);
  const names = await listDir(pointsDir);
  const marked = new Set<string>();
  let done = 0;
  for (const id of names) {
    progress({phase: 'mark', done: done++, total: names.length});
    const dir = join(pointsDir, id);
    // Only real directories: a symbolic link planted in a hostile repository is never followed.
    if (!(await isRealDirectory(dir))) continue;
    const manifestPath = join(dir, MANIFEST_FILE);
    let text: string | undefined;
    try {
      text = (await readFileCapped(manifestPath, MAX_MANIFEST_BYTES, 'manifest')).toString('utf8');
    } catch (err) {
      if (err instanceof UserError) throw err;
      const code = errnoCode(err);
      if (code === 'ENOTDIR') continue;
      if (code !== 'ENOENT') throw ioError(err, manifestPath, 'reading a manifest');
    }
    if (text === undefined) {
      if (live.has(id)) continue;
      const t = await mtimeMs(dir);
      if (t && (dead.includes(id) || t.mtime < cutoff)) {
        await rm(dir, {recursive: true, force: true});
        result.removedPartialRestorePoints.push(id);
      }
      continue;
    }
    const mark = (ids: Buffer) => {
      for (let off = 0; off < ids.length; off += 32) {
        const c = ids.subarray(off, off + 32);
        if (!ZERO_ID.equals(c)) marked.add(markKey(c));
      }
    };
    let m;
    try {
      m = parseManifest(text, manifestPath, {dirName: id, chunkSize: ctx.chunkSize});
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      // A damaged manifest: its chunks are still kept, read from the index files beside it (an
      // administrator may put the manifest back from a copy). GC goes on for everything else.
      result.damaged.push({restorePoint: id, detail: err.message});
      const unknown = await markFromIndexFiles(ctx, dir, mark);
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
  progress({phase: 'mark', done: names.length, total: names.length});
  for (const id of dead) {
    await unlink(join(writersDir, `${id}.json`)).catch(() => undefined);
  }
  result.referencedChunks = marked.size;

  // The chunks failed or dead writers stored (their journals): known to be nobody's but theirs
  // unless a restore point references them (marked) or a live writer touched them since its
  // start, so they go without the safety margin's wait (which guards writers GC cannot see).
  const journals = (await listDir(writersDir)).filter((n) => n.endsWith('.chunks') && !live.has(n.slice(0, -'.chunks'.length)));
  const orphaned = new Set<string>();
  for (const name of journals) {
    const text = await readFileCapped(join(writersDir, name), MAX_JOURNAL_BYTES, 'writer journal').catch(() => undefined);
    for (const line of text?.toString('latin1').split('\n') ?? []) if (CHUNK_NAME.test(line)) orphaned.add(markKey(line));
  }
  const deadCutoff = Math.min(gcStart, oldest) - CLOCK_SLACK_MS;

  // 3. Sweep (not when a restore point's chunks could not all be known: they might be swept).
  if (result.sweepSkipped) {
    progress({phase: 'sweep', done: 1, total: 1});
    return result;
  }
  const chunksDir = join(ctx.root, CHUNKS_DIR);
  const prefixes = (await listDir(chunksDir)).filter((p) => isChunkPrefix(p, ctx.formatVersion));
  let present = 0;
  for (let n = 0; n < prefixes.length; n++) {
    progress({phase: 'sweep', done: n, total: prefixes.length});
    const dir = join(chunksDir, prefixes[n]!);
    if (!(await isRealDirectory(dir))) continue; // a planted link: never swept
    for (const name of await listDir(dir)) {
      const path = join(dir, name);
      if (CHUNK_NAME.test(name)) {
        if (marked.has(markKey(name))) {
          present++;
          continue;
        }
        const key = markKey(name);
        await sweepChunk(path, orphaned.has(key) ? Math.max(cutoff, deadCutoff) : cutoff, result);
      } else if (name.includes(TEMP_MARK)) {
        if (await recoverAside(ctx, dir, name, marked, result)) continue;
        const t = await mtimeMs(path);
        if (t && t.mtime < cutoff) {
          await unlink(path).catch(() => undefined);
          result.removedTempFiles++;
        }
      } else if (name.includes(BAD_MARK)) {
        // A quarantined copy is kept while a restore point still needs that chunk id.
        const id = name.slice(0, 64);
        const t = await mtimeMs(path);
        if (!marked.has(markKey(id)) && t && t.mtime < cutoff) {
          await unlink(path).catch(() => undefined);
          result.removedChunks++;
          result.removedBytes += t.size;
        }
      }
    }
  }
  progress({phase: 'sweep', done: prefixes.length, total: prefixes.length});
  for (const name of journals) await unlink(join(writersDir, name)).catch(() => undefined);
  // Leftovers of writers killed while writing their registration or manifest.
  for (const dir of [writersDir, pointsDir]) {
    for (const name of await listDir(dir)) {
      if (!name.includes(TEMP_MARK)) continue;
      const t = await mtimeMs(join(dir, name));
      if (t && t.mtime < cutoff) {
        await rm(join(dir, name), {force: true, recursive: true});
        result.removedTempFiles++;
      }
    }
  }
  result.missingChunks = Math.max(0, marked.size - present - result.recoveredChunks);
  return result;
}

/**
 * Marks the chunks of every index file in a restore point directory whose manifest is damaged.
 * Returns why the chunks cannot all be known (an index that does not decode), or undefined.
 */
async function markFromIndexFiles(ctx: RepoContext, dir: string, mark: (ids: Buffer) => void): Promise<string | undefined> {
  const files = (await listDir(dir)).filter((f) => /^disk-\d+\.idx$/.test(f));
  if (files.length === 0) return 'it has no index files';
  for (const f of files) {
    const raw = await readFileCapped(join(dir, f), MAX_INDEX_BYTES, 'index').catch(() => undefined);
    if (!raw) return `${f} is not a readable index`;
    const decoded = decodeIndex(raw);
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

/**
 * A GC killed between renaming a chunk aside and linking it back can leave the only copy of a
 * chunk a restore point needs under a temp name. When the temp file's chunk id is referenced,
 * the chunk itself is missing and the temp file holds exactly that chunk, put it back.
 */
async function recoverAside(ctx: RepoContext, dir: string, name: string, marked: Set<string>, result: GcResult): Promise<boolean> {
  const hex = name.slice(0, 64);
  if (!CHUNK_NAME.test(hex) || name[64] !== '.' || !marked.has(markKey(hex))) return false;
  const target = join(dir, hex);
  if (await mtimeMs(target)) return false;
  const t = await mtimeMs(join(dir, name));
  if (!t || t.size > maxChunkFileSize(ctx.chunkSize)) return false;
  const raw = await readFile(join(dir, name)).catch(() => undefined);
  if (!raw) return false;
  try {
    const plain = decodeChunk(raw, undefined, ctx.chunkSize);
    if (createHash('sha256').update(plain).digest('hex') !== hex) return false;
  } catch {
    return false;
  }
  await link(join(dir, name), target).catch(() => undefined);
  await unlink(join(dir, name)).catch(() => undefined);
  result.recoveredChunks++;
  return true;
}

/** Removes one unreferenced chunk if it is older than the cut-off (see the module comment). */
async function sweepChunk(path: string, cutoff: number, result: GcResult): Promise<void> {
  const t = await mtimeMs(path);
  if (!t) return;
  if (t.mtime >= cutoff) {
    result.pendingChunks++;
    result.pendingBytes += t.size;
    return;
  }
  const aside = tempName(path);
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw ioError(err, path, 'removing an unused chunk');
  }
  const after = await mtimeMs(aside);
  if (after && after.mtime >= cutoff) {
    // A writer touched it between our look and the rename: put it back (unless it rewrote it).
    await link(aside, path).catch((err: unknown) => {
      if (errnoCode(err) !== 'EEXIST') throw ioError(err, path, 'restoring a chunk in use');
    });
    await unlink(aside);
    result.pendingChunks++;
    result.pendingBytes += after.size;
    return;
  }
  await unlink(aside).catch(() => undefined);
  result.removedChunks++;
  result.removedBytes += t.size;
}
