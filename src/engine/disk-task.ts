/**
 * The data mover for one disk: reads a disk source and writes a disk of a restore point.
 *
 * It plans chunk-aligned work from the source's extents (plan.ts), keeps up to
 * `maxParallelReads` reads in flight, hands each buffer to the repository's disk writer, and
 * reports progress and figures. Memory is bounded by in-flight reads × the read size, whatever
 * the disk size. The first error stops new work, waits for what is in flight, and is rethrown:
 * nothing is committed by a disk task, so a failed task leaves only garbage for GC.
 */
import type {DiskSource} from '../platforms/types.js';
import type {DiskWriter} from '../repository/index.js';
import type {DiskFigures} from './events.js';
import type {PlacedDisk} from './placement.js';
import {planWork, type WorkItem} from './plan.js';
import {TaskPool} from './task-pool.js';

export interface DiskTaskOptions {
  source: DiskSource;
  writer: DiskWriter;
  chunkSize: number;
  /** Largest read sent to the source (rounded to whole chunks); default 8 MiB. */
  maxRun?: number;
  /** Reads in flight; default min(source.maxParallelReads, 4). */
  parallel?: number;
  /** Called before reading `bytes`; resolves when the bandwidth limit allows it. */
  throttle?: (bytes: number) => Promise<void>;
  /**
   * A worker on the VM's host reads, hashes and packs the data (placement.ts): the source then
   * gives only the extents, and the bandwidth limit counts what the worker sent.
   */
  worker?: PlacedDisk;
  signal?: AbortSignal;
  onProgress?: (p: {doneBytes: number; readBytes: number; rate: number}) => void;
}

const DEFAULT_RUN = 8 * 1024 * 1024;

function settled<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({status: 'fulfilled', value}),
    (reason: unknown) => ({status: 'rejected', reason}),
  );
}

export async function runDiskTask(opts: DiskTaskOptions): Promise<DiskFigures> {
  const {source, writer, chunkSize} = opts;
  const started = performance.now();
  const figures: DiskFigures = {
    size: source.size,
    readBytes: 0,
    zeroBytes: 0,
    unchangedBytes: 0,
    storedBytes: 0,
    newPlainBytes: 0,
    newChunks: 0,
    reusedChunks: 0,
    durationMs: 0,
    sourceMs: 0,
    repositoryMs: 0,
    processingMs: 0,
  };
  const mustRead = writer.hasBase ? await writer.missingBaseRanges() : [];
  const maxRun = Math.max(chunkSize, Math.floor((opts.maxRun ?? DEFAULT_RUN) / chunkSize) * chunkSize);
  const parallel = Math.max(1, opts.parallel ?? Math.min(source.maxParallelReads, 4));
  const work = planWork(source.extents(), {
    chunkSize,
    size: source.size,
    maxRun,
    noBase: !writer.hasBase,
    mustRead,
  });

  let handled = 0; // bytes read or zeroed
  let lastReport = 0;
  const report = (force = false) => {
    const now = performance.now();
    if (!opts.onProgress || (!force && now - lastReport < 250)) return;
    lastReport = now;
    const seconds = (now - started) / 1000;
    opts.onProgress({doneBytes: handled, readBytes: figures.readBytes, rate: seconds > 0 ? figures.readBytes / seconds : 0});
  };

  // Read buffers, reused: one per read in flight, of the largest run. A fresh buffer per read
  // cost a page fault per 4 KiB and the garbage collection of 8 MiB external buffers. A buffer
  // goes back only after writer.put() settled (the repository then holds no reference to it:
  // the chunk workers copy a chunk into their shared slot before a put resolves) and after a read
  // that succeeded (after a failure a connection may still be writing into it).
  const buffers: Buffer[] = [];

  const readItem = async (item: WorkItem, into: Buffer): Promise<Buffer> => {
    if (opts.throttle) await opts.throttle(item.length);
    const t0 = performance.now();
    let data: Buffer;
    if (item.length <= source.maxReadSize) {
      data = await source.read(item.offset, item.length, into.subarray(0, item.length));
    } else {
      data = into.subarray(0, item.length);
      for (let at = 0; at < item.length; at += source.maxReadSize) {
        const len = Math.min(source.maxReadSize, item.length - at);
        await source.read(item.offset + at, len, data.subarray(at, at + len));
      }
    }
    figures.sourceMs += performance.now() - t0;
    if (data.length !== item.length) {
      throw new Error(`disk ${source.key}: short read at offset ${item.offset}: got ${data.length} of ${item.length} bytes`);
    }
    figures.readBytes += item.length;
    return data;
  };

  /** A data run through the worker: it hashes there, the writer says what it lacks, only that comes. */
  const viaWorker = async (item: WorkItem, w: PlacedDisk): Promise<void> => {
    const t0 = performance.now();
    const {seq, ids} = await w.disk.read(item.offset, item.length, chunkSize);
    figures.sourceMs += performance.now() - t0;
    figures.readBytes += item.length;
    const t1 = performance.now();
    const ask = await writer.offer(item.offset, item.length, ids).catch(async (err: unknown) => {
      await w.disk.fetch(seq, [], () => undefined).catch(() => undefined); // release the data held on the host
      throw err;
    });
    // Every store gets its outcome attached at once (no rejection goes unhandled while chunks still arrive).
    const stores: Promise<PromiseSettledResult<void>>[] = [];
    let sent = ids.length;
    let arrived = 0;
    const got = await settled(
      w.disk.fetch(seq, ask, (c) => {
        arrived++;
        sent += c.payload.length;
        const id = ids.subarray(c.index * 32, c.index * 32 + 32);
        stores.push(settled(writer.putPacked(item.offset + c.index * chunkSize, {id, flags: c.flags, plainLength: c.plainLength, payload: c.payload}, w.from)));
      }),
    );
    const failed = [got, ...(await Promise.all(stores))].find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (arrived !== ask.length) throw new Error(`disk ${source.key}: ${w.from} sent ${arrived} of the ${ask.length} chunks asked for at offset ${item.offset}`);
    figures.repositoryMs += performance.now() - t1;
    figures.workerBytes = (figures.workerBytes ?? 0) + sent;
    if (opts.throttle) await opts.throttle(sent);
  };

  const doItem = async (item: WorkItem): Promise<void> => {
    if (item.kind === 'read' && opts.worker) {
      await viaWorker(item, opts.worker);
    } else if (item.kind === 'zero') {
      const t0 = performance.now();
      await writer.zero(item.offset, item.length);
      figures.repositoryMs += performance.now() - t0;
      figures.zeroBytes += item.length;
    } else {
      const buffer = buffers.pop() ?? Buffer.allocUnsafeSlow(maxRun);
      const data = await readItem(item, buffer);
      const t0 = performance.now();
      try {
        await writer.put(item.offset, data);
      } finally {
        // put() has settled every chunk it started, failed or not: the buffer is free.
        buffers.push(buffer);
      }
      figures.repositoryMs += performance.now() - t0;
    }
    handled += item.length;
    report();
  };

  const pool = new TaskPool(parallel);
  for await (const item of work) {
    if (pool.failed) break;
    if (opts.signal?.aborted) {
      pool.fail(opts.signal.reason ?? new Error('cancelled'));
      break;
    }
    await pool.add(() => doItem(item));
  }
  await pool.settle();

  const stats = await writer.finish();
  figures.storedBytes = stats.newStoredBytes;
  figures.newPlainBytes = stats.newPlainBytes ?? 0;
  figures.newChunks = stats.newChunks;
  figures.reusedChunks = stats.reusedChunks;
  if (stats.healedChunks) figures.healedChunks = stats.healedChunks;
  figures.processingMs = stats.processMs ?? 0;
  figures.unchangedBytes = source.size - figures.readBytes - figures.zeroBytes;
  figures.durationMs = performance.now() - started;
  handled = source.size;
  report(true);
  return figures;
}
