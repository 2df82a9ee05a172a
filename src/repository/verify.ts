/**
 * Verify: re-read and re-hash every chunk the chosen restore points reference.
 *
 * Each distinct chunk is checked once (header, CRC in format 1, LZ4, SHA-256 = its id), in
 * the chunk worker threads. A damaged chunk is
 * quarantined (renamed to <id>.bad), so the next backup that meets the same data writes it
 * again, and an incremental based on an affected restore point learns from
 * DiskWriter.missingBaseRanges() which ranges to read in full. References are collected in a
 * second pass, only for the chunks with problems, so memory stays bounded by distinct chunks.
 */
import {parallelFor} from '../util/parallel-for.js';
import {ZERO_ID} from './chunk-file.js';
import type {RepoContext} from './context.js';
import {pointKey} from './layout.js';
import {loadIndexIds} from './reader.js';
import type {ChunkReference, Manifest, Progress, VerifyProblem, VerifyReport} from './types.js';

/** Chunks asked of the chunk workers at once (the pool bounds what runs). */
const PARALLEL = 16;

export async function verifyPoints(ctx: RepoContext, manifests: Manifest[], onProgress?: (p: Progress) => void): Promise<VerifyReport> {
  const report: VerifyReport = {ok: true, restorePoints: [], checkedChunks: 0, checkedBytes: 0, problems: [], indexProblems: [], manifestProblems: []};
  // Only the ids of one index at a time are held; pass 2 reads the indexes again.
  const loaded: {m: Manifest; d: Manifest['disks'][number]}[] = [];
  const unique = new Set<string>();
  for (const m of manifests) {
    for (const d of m.disks) {
      try {
        const ids = await loadIndexIds(ctx, m, d);
        loaded.push({m, d});
        for (let off = 0; off < ids.length; off += 32) {
          const id = ids.subarray(off, off + 32);
          if (!ZERO_ID.equals(id)) unique.add(id.toString('hex'));
        }
      } catch (err) {
        report.indexProblems.push({restorePoint: m.id, disk: d.key, file: ctx.backend.describe(`${pointKey(m.id)}/${d.index}`), detail: (err as Error).message});
      }
    }
  }

  const bad = new Map<string, VerifyProblem>();
  const todo = [...unique];
  unique.clear();
  let done = 0;
  await parallelFor(todo.length, PARALLEL, async (i) => {
    const hex = todo[i]!;
    const problem = await checkChunk(ctx, hex);
    report.checkedChunks++;
    if (problem) bad.set(hex, problem);
    onProgress?.({phase: 'verify', done: ++done, total: todo.length});
  });

  const perPoint = new Map<string, number>(manifests.map((m) => [m.id, 0]));
  for (const p of report.indexProblems) perPoint.set(p.restorePoint, (perPoint.get(p.restorePoint) ?? 0) + 1);
  if (bad.size > 0) {
    for (const {m, d} of loaded) {
      const disk = d.key;
      const ids = await loadIndexIds(ctx, m, d);
      const refs = new Map<string, ChunkReference>();
      for (let off = 0; off < ids.length; off += 32) {
        const hex = ids.toString('hex', off, off + 32);
        const problem = bad.get(hex);
        if (!problem) continue;
        let ref = refs.get(hex);
        if (!ref) {
          ref = {restorePoint: m.id, vmName: m.vm.name, disk, offsets: []};
          refs.set(hex, ref);
          problem.references.push(ref);
          perPoint.set(m.id, (perPoint.get(m.id) ?? 0) + 1);
        }
        ref.offsets.push((off / 32) * m.chunkSize);
      }
    }
  }
  report.problems = [...bad.values()];
  report.restorePoints = manifests.map((m) => ({id: m.id, ok: perPoint.get(m.id) === 0, problems: perPoint.get(m.id) ?? 0}));
  report.ok = report.problems.length === 0 && report.indexProblems.length === 0;
  return report;

  async function checkChunk(c: RepoContext, hex: string): Promise<VerifyProblem | undefined> {
    // Read, decoded and hashed in a chunk worker; only the verdict comes back.
    const r = await c.store.check(hex, {verify: true, want: false});
    if (r.status === 'missing') return {chunk: hex, problem: 'missing', detail: `${c.store.path(hex)} does not exist`, references: []};
    if (r.status === 'ok') {
      report.checkedBytes += r.plainLength;
      return undefined;
    }
    const to = await c.store.quarantine(hex);
    return {chunk: hex, problem: 'damaged', detail: `${c.store.path(hex)}: ${r.detail}`, ...(to ? {quarantinedTo: to} : {}), references: []};
  }
}
