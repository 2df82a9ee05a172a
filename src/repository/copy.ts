/**
 * Copies restore points from one repository to another: the second copy of 3-2-1.
 *
 * Each point is written into the target by the target's own writer (beginRestorePoint with
 * `copyOf`: same id and begin time), so everything a backup guarantees holds for a copy too:
 * only chunks the target lacks are stored (chunk ids are content hashes; the writer's dedup
 * skips the rest), the indexes go before the manifest, and the manifest is the commit — a copy
 * that is interrupted (kill -9, a full disk) leaves no visible point, and the next run writes only
 * what is still missing. Reading goes through the source's reader, which checks every chunk
 * against its id: a damaged or hostile source cannot smuggle wrong data into the target.
 *
 * Points go oldest first per VM, so an incremental's base is in the target before it (recorded
 * as its base there). With the same chunk size in both, the chunks whose id is the base's are not
 * read at all (the target's writer keeps its base's, which are the same): copying an incremental
 * reads what changed. The target's chunk size may differ from the source's: then every data chunk
 * is read and put in the target's chunks; zero runs are recorded as zeros without reading them.
 *
 * With the same chunk size and ids computed the same way (neither repository encrypted), chunks
 * cross as they are stored: the target is offered each run's ids, asks for the chunks it lacks,
 * and gets each one packed as the source stored it (DiskWriter.offer/putPacked, the path of a
 * worker on a host) — no decompression here and no second compression there; the target still
 * unpacks every chunk and checks it against its id before it stores it, so a damaged source chunk
 * is refused as before. Otherwise (an encrypted side: ids keyed differently) chunks are decoded
 * and put again.
 */
import {UserError, ExitCode} from '../util/errors.js';
import type {Repository} from './repository.js';
import type {DiskWriter, ManifestDisk, RestorePointReader, RestorePointSummary} from './types.js';

export interface CopyProgress {
  restorePoint: string;
  vmName: string;
  doneBytes: number;
  totalBytes: number;
}

export interface CopiedPoint {
  id: string;
  /** Its id in the target when that differs (an encrypted target). */
  targetId?: string;
  vmName: string;
  /** Chunks the target did not have, and the bytes their files took there. */
  newChunks: number;
  newStoredBytes: number;
  /** Non-zero bytes read from the source. */
  readBytes: number;
}

export interface CopyResult {
  copied: CopiedPoint[];
  /** Points the target already had. */
  present: string[];
}

export interface CopyOptions {
  /** Only this VM's points (its id or name in the source). */
  vm?: string;
  /** Only these points (ids in the source). */
  restorePoints?: string[];
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  /** Waits until `bytes` more may be read from the source (a bandwidth limit). */
  throttle?: (bytes: number) => Promise<void>;
  /** The copy job and its session, recorded in the copies (the target's retention is that job's); else the source's. */
  jobId?: string;
  /** The copy job's retention lock in days: the copies keep the longer of it and the original's own. */
  lockDays?: number;
  sessionId?: string;
  /**
   * What the caller already listed, for a copy of one VM after another: the source's points and
   * the target's point ids (kept up to date here as points are copied). Without them both are listed.
   */
  listed?: {source: readonly RestorePointSummary[]; targetIds: Set<string>};
}

const DAMAGED_SOURCE_HINT = 'The source repository holds a damaged chunk: nothing of this restore point was copied. Run "vmbackup repo verify" on the source to see which restore points it affects; the next backup of the VM stores it again.';

/** Bytes put per call: several target chunks, so a batch is worth a round trip to the chunk workers. */
const BATCH_CHUNKS = 8;
/** Data of puts a copy keeps in flight while it reads on. */
const IN_FLIGHT_BYTES = 64 << 20;

export async function copyRestorePoints(
  source: Repository,
  target: Repository,
  o: CopyOptions = {},
): Promise<CopyResult> {
  if (source.id === target.id) {
    throw new UserError(`${source.path} and ${target.path} are the same repository.`, {hint: 'Copy to another repository.', exitCode: ExitCode.invalidInput});
  }
  const all = o.listed?.source ?? (await source.listRestorePoints());
  let points = [...all];
  if (o.vm !== undefined) points = points.filter((p) => p.vmId === o.vm || p.vmName === o.vm);
  if (o.restorePoints) {
    const unknown = o.restorePoints.filter((id) => !points.some((p) => p.id === id));
    if (unknown.length) throw new UserError(`${source.path} has no restore point ${unknown.join(', ')}.`, {exitCode: ExitCode.notFound});
    points = points.filter((p) => o.restorePoints!.includes(p.id));
  }
  if (o.vm !== undefined && points.length === 0) throw new UserError(`${source.path} has no restore point of VM ${o.vm}.`, {exitCode: ExitCode.notFound});
  points.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id.localeCompare(b.id)));
  const have = o.listed?.targetIds ?? new Set((await target.listRestorePoints()).map((p) => p.id));
  // A point's id in the target (another one in an encrypted target: ids there name no VM).
  const times = new Map(all.map((p) => [p.id, p.time]));
  const targetId = (id: string): string | undefined => {
    const time = times.get(id);
    return time === undefined ? undefined : target.copyIdFor(id, time);
  };
  const result: CopyResult = {copied: [], present: []};
  for (const p of points) {
    o.signal?.throwIfAborted();
    const to = targetId(p.id)!;
    if (have.has(to)) {
      result.present.push(p.id);
      continue;
    }
    result.copied.push(await copyOne(source, target, p, have, targetId, o));
    have.add(to);
  }
  return result;
}

async function copyOne(
  source: Repository,
  target: Repository,
  p: RestorePointSummary,
  have: Set<string>,
  targetId: (id: string) => string | undefined,
  o: CopyOptions,
): Promise<CopiedPoint> {
  // Held while it is read: prune keeps it, forget refuses it.
  const hold = await source.holdRestorePoint(p.id, `a copy to ${target.path}`);
  try {
    const reader = await source.openRestorePoint(p.id);
    const m = reader.manifest;
    const to = targetId(p.id)!;
    const baseTo = m.base !== undefined ? targetId(m.base) : undefined;
    const hasBase = baseTo !== undefined && have.has(baseTo);
    const w = await target.beginRestorePoint({
      vmId: m.vm.id,
      vmName: m.vm.name,
      platform: m.platform,
      copyOf: {id: to, time: m.time},
      ...(hasBase ? {base: baseTo} : {}),
      ...((o.sessionId ?? m.sessionId) !== undefined ? {sessionId: o.sessionId ?? m.sessionId} : {}),
      ...((o.jobId ?? m.jobId) !== undefined ? {jobId: o.jobId ?? m.jobId} : {}),
      ...(Math.max(o.lockDays ?? 0, m.lockDays ?? 0) > 0 ? {lockDays: Math.max(o.lockDays ?? 0, m.lockDays ?? 0)} : {}),
      ...(m.configuration !== undefined ? {configuration: m.configuration} : {}),
      ...(o.signal ? {signal: o.signal} : {}),
    });
    // An incremental whose base the target has, in the same chunk size: chunks whose id is the
    // base's are the base's in the target too (kept by its writer without a read); the rest is read.
    const base = hasBase && source.chunkSize === target.chunkSize ? await source.openRestorePoint(m.base!) : undefined;
    const passThrough = source.chunkSize === target.chunkSize && !source.encrypted && !target.encrypted;
    const totalBytes = m.disks.reduce((a, d) => a + d.size, 0);
    let doneBytes = 0;
    let newChunks = 0;
    let newStoredBytes = 0;
    let readBytes = 0;
    try {
      for (const d of m.disks) {
        const disk = await reader.openDisk(d.key);
        const dw = await w.addDisk({key: d.key, name: d.name, size: d.size, ...(d.format !== undefined ? {format: d.format} : {}), ...(d.details !== undefined ? {details: d.details} : {})});
        const same = await unchangedChunks(source, base, p.id, d, dw);
        const step = w.chunkSize * BATCH_CHUNKS;
        // Puts stay in flight while the next runs are read (an object store answers each after a
        // round trip): up to IN_FLIGHT_BYTES of data; the first failure is thrown when awaited.
        const puts: {done: Promise<void>; bytes: number}[] = [];
        let inFlight = 0;
        const settleOldest = async () => {
          const first = puts.shift()!;
          inFlight -= first.bytes;
          await first.done;
        };
        // A put kept in flight, `bytes` of it counted against IN_FLIGHT_BYTES; `data` bytes copied.
        const track = async (done: Promise<void>, bytes: number, data: number) => {
          done.catch(() => undefined);
          puts.push({done, bytes});
          inFlight += bytes;
          readBytes += data;
          while (inFlight > IN_FLIGHT_BYTES && puts.length > 1) await settleOldest();
        };
        // The same ids and chunk size in both (neither encrypted): chunks go across as they are
        // stored, packed; the target asks for those it lacks and checks each against its id.
        const ids = passThrough ? await source.diskChunkIds(p.id, d.key) : undefined;
        for (let off = 0; off < d.size; off += step) {
          o.signal?.throwIfAborted();
          const len = Math.min(step, d.size - off);
          // Parts of the batch whose chunks changed (the base's unchanged ones are skipped).
          for (const part of changedParts(same, off, len, w.chunkSize)) {
            if (ids) {
              const first = part.offset / w.chunkSize;
              const n = Math.ceil(part.length / w.chunkSize);
              for (const j of await dw.offer(part.offset, part.length, Buffer.from(ids.subarray(first * 32, (first + n) * 32)))) {
                const i = first + j;
                const id = Buffer.from(ids.subarray(i * 32, i * 32 + 32));
                const hex = id.toString('hex');
                const packed = await source.readPackedChunk(hex, `restore point ${p.id} disk ${d.key}`);
                // The limit counts data as the plain path does (what crosses is less: packed).
                await o.throttle?.(packed.plainLength);
                await track(dw.putPacked(i * w.chunkSize, {id, ...packed}, `the source repository ${source.path} (chunk ${hex})`, DAMAGED_SOURCE_HINT), packed.payload.length, packed.plainLength);
              }
              continue;
            }
            // Zeros recorded as such, data read (and checked) and put, each in whole target chunks.
            disk.prefetch(part.offset, part.length);
            let at = part.offset;
            for (const run of alignedRuns(disk.extents(part.offset, part.length), part.offset, w.chunkSize, d.size)) {
              if (run.zero) await dw.zero(at, run.length);
              else {
                await o.throttle?.(run.length);
                await track(dw.put(at, await disk.read(at, run.length)), run.length, run.length);
              }
              at += run.length;
            }
          }
          doneBytes += len;
          o.onProgress?.({restorePoint: p.id, vmName: p.vmName, doneBytes, totalBytes});
        }
        while (puts.length > 0) await settleOldest();
        const stats = await dw.finish();
        newChunks += stats.newChunks;
        newStoredBytes += stats.newStoredBytes;
      }
      await w.commit({...(m.checkpoint !== undefined ? {checkpoint: m.checkpoint} : {}), warnings: m.warnings});
    } catch (err) {
      await w.abort();
      throw err;
    }
    return {id: p.id, ...(to !== p.id ? {targetId: to} : {}), vmName: p.vmName, newChunks, newStoredBytes, readBytes};
  } finally {
    await hold.release().catch(() => undefined);
  }
}

/**
 * Per chunk of disk `d`: true when the point's chunk id is its base's (so the target's copy of
 * the base holds it) and the target's writer keeps that base chunk (not missing there).
 */
async function unchangedChunks(source: Repository, base: RestorePointReader | undefined, pointId: string, d: ManifestDisk, dw: DiskWriter): Promise<Uint8Array | undefined> {
  const bd = base?.manifest.disks.find((x) => x.key === d.key);
  if (!base || !bd || bd.size !== d.size || !dw.hasBase) return undefined;
  const [ids, baseIds] = [await source.diskChunkIds(pointId, d.key), await source.diskChunkIds(base.summary.id, d.key)];
  const same = new Uint8Array(ids.length / 32);
  for (let i = 0; i < same.length; i++) same[i] = ids.compare(baseIds, i * 32, i * 32 + 32, i * 32, i * 32 + 32) === 0 ? 1 : 0;
  // What the target's base lacks (swept, quarantined) is read in full.
  for (const r of await dw.missingBaseRanges()) {
    for (let i = Math.floor(r.offset / source.chunkSize); i * source.chunkSize < r.offset + r.length && i < same.length; i++) same[i] = 0;
  }
  return same;
}

/** The parts of [off, off + len) whose chunks changed (all of it without `same`). */
function changedParts(same: Uint8Array | undefined, off: number, len: number, chunk: number): {offset: number; length: number}[] {
  if (!same) return [{offset: off, length: len}];
  const out: {offset: number; length: number}[] = [];
  for (let at = off; at < off + len; at += chunk) {
    if (same[at / chunk]) continue;
    const size = Math.min(chunk, off + len - at);
    const last = out.at(-1);
    if (last && last.offset + last.length === at) last.length += size;
    else out.push({offset: at, length: size});
  }
  return out;
}

/**
 * The source's zero/data runs of [off, off + len) regrouped into whole target chunks: a target
 * chunk is zero only when all of it is zero in the source. `end` is the disk's size (the last
 * chunk may be short).
 */
export function alignedRuns(runs: {length: number; zero: boolean}[], off: number, chunk: number, end: number): {length: number; zero: boolean}[] {
  const out: {length: number; zero: boolean}[] = [];
  // Zero flag per target chunk in the window.
  let pos = off;
  let i = 0;
  let left = runs[0]?.length ?? 0;
  const total = runs.reduce((a, r) => a + r.length, 0);
  while (pos < off + total) {
    const size = Math.min(chunk, end - pos, off + total - pos);
    let zero = true;
    let need = size;
    while (need > 0 && i < runs.length) {
      const take = Math.min(need, left);
      if (!runs[i]!.zero) zero = false;
      need -= take;
      left -= take;
      if (left === 0) left = runs[++i]?.length ?? 0;
    }
    const last = out.at(-1);
    if (last && last.zero === zero) last.length += size;
    else out.push({length: size, zero});
    pos += size;
  }
  return out;
}
