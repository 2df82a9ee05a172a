/**
 * Session figures from per-VM figures: sizes, read, stored, dedup and compression ratios,
 * duration, rate, and the bottleneck: the stage where the disk tasks spent the most time —
 * waiting for the source, processing (hashing, compressing), or the repository's storage I/O.
 * Pure.
 */
import type {DiskFigures} from '../engine/events.js';
import type {SessionTotals, SessionVm, VmFigures} from '../api/session-model.js';

export function vmFigures(disks: Record<string, DiskFigures>, durationMs: number): VmFigures {
  const f: VmFigures = {sizeBytes: 0, readBytes: 0, storedBytes: 0, newPlainBytes: 0, processedBytes: 0, durationMs, diskMs: 0, sourceMs: 0, repositoryMs: 0};
  for (const d of Object.values(disks)) {
    f.sizeBytes += d.size;
    f.readBytes += d.readBytes;
    f.storedBytes += d.storedBytes;
    f.newPlainBytes += d.newPlainBytes;
    f.processedBytes += d.readBytes + d.unchangedBytes;
    f.diskMs! += d.durationMs;
    f.sourceMs += d.sourceMs;
    f.repositoryMs += d.repositoryMs;
    f.processingMs = (f.processingMs ?? 0) + d.processingMs;
    if (d.workerBytes !== undefined) f.workerBytes = (f.workerBytes ?? 0) + d.workerBytes;
  }
  return f;
}

/** `backupsEndedAt`: when the backups ended, if work followed them (restore verification): the rate is over the backups alone. */
export function sessionTotals(vms: SessionVm[], startedAt: string, endedAt: string, backupsEndedAt?: string): SessionTotals {
  let size = 0, read = 0, stored = 0, plain = 0, processed = 0, sourceMs = 0, repoMs = 0, processingMs = 0, transferred = 0;
  for (const vm of vms) {
    const f = vm.figures;
    if (!f) continue;
    size += f.sizeBytes;
    read += f.readBytes;
    stored += f.storedBytes;
    transferred += transferredOf(f);
    plain += f.newPlainBytes;
    processed += f.processedBytes;
    sourceMs += f.sourceMs;
    repoMs += f.repositoryMs;
    processingMs += f.processingMs ?? 0;
  }
  const durationMs = Math.max(0, Date.parse(endedAt) - Date.parse(startedAt));
  return {
    sizeBytes: size,
    readBytes: read,
    transferredBytes: transferred,
    storedBytes: stored,
    // Read data that needed no new chunk was deduplicated; 1 = nothing deduplicated.
    dedupRatio: plain > 0 ? read / plain : 1,
    compressionRatio: stored > 0 ? plain / stored : 1,
    durationMs,
    rateBytesPerSec: rateOver(read, startedAt, backupsEndedAt ?? endedAt),
    bottleneck: bottleneckOf(sourceMs, processingMs, repoMs - processingMs),
  };
}

/** What went over the wire into the repository: what a worker on the host sent, else the stored bytes. */
export function transferredOf(f: VmFigures): number {
  return f.workerBytes ?? f.storedBytes;
}

function rateOver(bytes: number, from: string, to: string): number {
  const ms = Math.max(0, Date.parse(to) - Date.parse(from));
  return ms > 0 ? Math.round((bytes / ms) * 1000) : 0;
}

/** The stage that took the most time; none when nothing was timed. */
export function bottleneckOf(sourceMs: number, processingMs: number, storageMs: number): SessionTotals['bottleneck'] {
  const stages = [['source', sourceMs], ['processing', processingMs], ['repository', Math.max(0, storageMs)]] as const;
  const [name, ms] = stages.reduce((a, b) => (b[1] > a[1] ? b : a));
  return ms > 0 ? name : undefined;
}
