/**
 * A backup of one VM: the engine slice that the CLI runs directly and the daemon runs per VM.
 *
 * Order matters for safety:
 *  1. pick the base: the newest *committed* restore point of this VM; its checkpoint is the
 *     only one we trust for an incremental (a checkpoint of a session that never committed
 *     describes changes we never stored);
 *  2. begin the restore point (takes the repository's per-VM lock), then open the platform
 *     backup (job + new checkpoint, disk sources);
 *  3. one disk task per disk (a few at once), each streaming its source into the repository;
 *  4. commit the restore point (the manifest is the commit), and only then tell the platform to
 *     keep the new checkpoint. On any failure: abort the restore point (garbage for GC) and
 *     the platform backup (which deletes the new checkpoint), both in a finally.
 */
import type {BackupOptions, CheckpointRecord, PlatformAdapter, SessionEvent, VmBackup} from '../platforms/types.js';
import type {Repository, RestorePointSummary, RestorePointWriter} from '../repository/index.js';
import {runDiskTask} from './disk-task.js';
import {Placement, type WorkerMode} from './placement.js';
import type {DiskFigures, EventSink, VmStatus} from './events.js';

export interface BackupVmOptions {
  platform: PlatformAdapter;
  repository: Repository;
  vmId: string;
  vmName: string;
  sessionId?: string;
  /** The backup job (daemon sessions), recorded in the restore point for its retention. */
  jobId?: string;
  /** The job's retention lock in days, recorded in the restore point (repository BeginOptions.lockDays). */
  lockDays?: number;
  guestConsistency?: boolean;
  /** Disk keys to back up (all when omitted). */
  disks?: string[];
  /** Read every disk in full (an active full, or after verify found damage). */
  full?: boolean;
  /** Where the platform reads the data from (BackupOptions.dataPath); the worker decides. */
  dataPath?: 'host' | 'proxy';
  /** Disk tasks of this VM run at once. */
  parallelDisks?: number;
  throttle?: (bytes: number) => Promise<void>;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Checkpoints other repositories still build on (see BackupOptions.keepCheckpoint, checkpointsNeededElsewhere). */
  keepCheckpoint?: (id: string) => boolean;
  /** Workers on the hosts (placement.ts): 'auto' (default) reads a disk next to it where its platform allows, 'off' never. */
  workers?: WorkerMode;
  /** With workers 'off': why, for the session log (default: "workers are turned off"). */
  workersOffReason?: string;
}

/**
 * The checkpoints that the newest restore point of `vmId` in each of `others` (repositories other
 * than the one being written) recorded: those repositories' next backups build on them. When a
 * repository cannot be read, every checkpoint is kept (its need cannot be known).
 */
export async function checkpointsNeededElsewhere(others: readonly Repository[], vmId: string): Promise<(id: string) => boolean> {
  const needed = new Set<string>();
  for (const repo of others) {
    try {
      const newest = (await repo.listRestorePoints({vmId})).filter((p) => p.checkpoint).at(-1);
      if (newest?.checkpoint) needed.add(newest.checkpoint.id);
    } catch {
      return () => true;
    }
  }
  return (id) => needed.has(id);
}

export interface VmBackupResult {
  vmId: string;
  vmName: string;
  status: VmStatus;
  restorePoint?: RestorePointSummary;
  incremental: boolean;
  disks: Record<string, DiskFigures>;
  events: SessionEvent[];
  error?: unknown;
  startedAt: string;
  endedAt: string;
  /** Per worker that read disks of this VM: what crossed its SSH session and its CPU time on the host. */
  workers?: Awaited<ReturnType<Placement['figures']>>;
}

/** The newest committed restore point of the VM; the base of the next backup. */
export async function findBase(repository: Repository, vmId: string): Promise<RestorePointSummary | undefined> {
  const points = await repository.listRestorePoints({vmId});
  return points.at(-1);
}

export async function backupVm(opts: BackupVmOptions): Promise<VmBackupResult> {
  const {platform, repository, vmId} = opts;
  const startedAt = new Date().toISOString();
  const events: SessionEvent[] = [];
  const emit = opts.onEvent ?? (() => {});
  const log = (event: SessionEvent) => {
    const e = {...event, vm: event.vm ?? opts.vmName};
    events.push(e);
    emit({type: 'log', time: new Date().toISOString(), event: e});
  };
  const result: VmBackupResult = {
    vmId,
    vmName: opts.vmName,
    status: 'failed',
    incremental: false,
    disks: {},
    events,
    startedAt,
    endedAt: startedAt,
  };

  let writer: RestorePointWriter | undefined;
  let backup: VmBackup | undefined;
  let placement: Placement | undefined;
  let committed = false;
  try {
    // Any committed restore point is a consistent base: the platform's changes are relative to
    // this point's checkpoint, and the repository copies this same point's index.
    const base = await findBase(repository, vmId);
    const baseCheckpoint: CheckpointRecord | undefined = opts.full ? undefined : base?.checkpoint;
    const backupOpts: BackupOptions = {
      baseCheckpoint,
      disks: opts.disks,
      guestConsistency: opts.guestConsistency,
      dataPath: opts.dataPath,
      ...(opts.keepCheckpoint ? {keepCheckpoint: opts.keepCheckpoint} : {}),
      log,
    };
    backup = await platform.openBackup(vmId, backupOpts);
    opts.signal?.throwIfAborted();
    writer = await repository.beginRestorePoint({
      vmId,
      vmName: backup.vm.name,
      platform: platform.kind,
      // Only an incremental builds on the base's index; a full (asked for, or the platform's
      // fallback when a checkpoint was lost) is recorded as a full restore point.
      base: backup.sources.some((s) => s.incremental) ? base?.id : undefined,
      sessionId: opts.sessionId,
      ...(opts.jobId !== undefined ? {jobId: opts.jobId} : {}),
      ...(opts.lockDays !== undefined ? {lockDays: opts.lockDays} : {}),
      configuration: backup.configuration,
      ...(opts.signal ? {signal: opts.signal} : {}),
      // An active full trusts no chunk it did not check: damaged ones are written again.
      ...(opts.full ? {checkReused: true} : {}),
    });
    result.vmName = backup.vm.name;
    result.incremental = backup.sources.some((s) => s.incremental);
    placement = new Placement(opts.workers ?? 'auto', log, repository.chunkIdKey(), opts.workersOffReason);
    emit({
      type: 'vm-started',
      vmId,
      vmName: backup.vm.name,
      incremental: result.incremental,
      disks: backup.sources.map((s) => ({key: s.key, name: diskName(backup!, s.key), size: s.size})),
    });

    const queue = [...backup.sources];
    const runOne = async (): Promise<void> => {
      try {
        await runLane();
      } catch (err) {
        queue.length = 0; // one failed disk fails the restore point: the other lane stops too
        throw err;
      }
    };
    const runLane = async (): Promise<void> => {
      for (let source = queue.shift(); source; source = queue.shift()) {
        const inv = backup!.vm.disks.find((d) => d.key === source.key);
        const diskWriter = await writer!.addDisk({
          key: source.key,
          name: inv?.name ?? source.key,
          size: source.size,
          format: inv?.format,
          details: inv?.details,
        });
        emit({type: 'disk-started', vmId, disk: source.key, size: source.size});
        const worker = await placement!.place(source);
        let figures: DiskFigures;
        try {
          figures = await runDiskTask({
            source,
            writer: diskWriter,
            chunkSize: repository.chunkSize,
            throttle: opts.throttle,
            signal: opts.signal,
            ...(worker ? {worker} : {}),
            onProgress: (p) => emit({type: 'disk-progress', vmId, disk: source.key, size: source.size, ...p}),
          });
        } finally {
          await worker?.disk.close().catch(() => undefined);
        }
        result.disks[source.key] = figures;
        emit({type: 'disk-finished', vmId, disk: source.key, figures});
      }
    };
    const lanes = Math.max(1, Math.min(opts.parallelDisks ?? 2, backup.sources.length));
    const outcomes = await Promise.allSettled(Array.from({length: lanes}, runOne));
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const workers = await placement.figures();
    await placement.close();
    if (workers.length > 0) result.workers = workers;
    for (const w of workers) {
      const read = Object.values(result.disks).reduce((n, f) => n + (f.workerBytes !== undefined ? f.readBytes : 0), 0);
      const cpu = w.stats ? `, ${((w.stats.cpuUserUs + w.stats.cpuSystemUs) / 1e6).toFixed(1)} CPU s there` : '';
      log({severity: 'info', code: 'worker-figures', message: `the worker on ${w.host} read ${mib(read)} and sent ${mib(w.bytesIn)} over SSH${cpu}`});
    }

    const healed = Object.values(result.disks).reduce((n, f) => n + (f.healedChunks ?? 0), 0);
    if (healed > 0) {
      log({severity: 'warning', code: 'chunks-healed', message: `the repository held ${healed} damaged chunk(s) this backup needed: they were set aside and written again, so this restore point is good`});
    }
    const warnings = events.filter((e) => e.severity === 'warning').map((e) => e.message);
    result.restorePoint = await writer.commit({checkpoint: backup.checkpoint, warnings});
    committed = true;
    try {
      await backup.complete();
    } catch (err) {
      // The restore point is safe; only checkpoint housekeeping failed. The next backup finds
      // the checkpoint it needs in the restore point's manifest, or falls back to a full.
      log({severity: 'warning', code: 'checkpoint-housekeeping-failed', message: `The restore point is committed, but finishing the backup job on the host failed: ${message(err)}`});
    }
    result.status = events.some((e) => e.severity === 'warning' || e.severity === 'error') ? 'warning' : 'success';
  } catch (caught) {
    // The platform may know what happened (the VM was removed or stopped meanwhile).
    const err = backup?.explainFailure && !opts.signal?.aborted ? await backup.explainFailure(caught).catch(() => caught) : caught;
    result.error = err;
    log({severity: 'error', code: 'vm-backup-failed', message: message(err)});
  } finally {
    // The workers end before the platform's job does (their NBD connections first); idempotent.
    await placement?.close().catch(() => undefined);
    if (!committed) {
      await writer?.abort().catch((err: unknown) => log({severity: 'warning', code: 'cleanup-failed', message: `Could not discard the unfinished restore point: ${message(err)}`}));
      await backup?.abort().catch((err: unknown) => log({severity: 'warning', code: 'cleanup-failed', message: `Could not clean up the backup job on the host: ${message(err)}`}));
    }
    result.endedAt = new Date().toISOString();
    emit({
      type: 'vm-finished',
      vmId,
      vmName: result.vmName,
      status: result.status,
      restorePointId: result.restorePoint?.id,
      error: result.error === undefined ? undefined : message(result.error),
    });
  }
  return result;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function diskName(backup: VmBackup, key: string): string {
  return backup.vm.disks.find((d) => d.key === key)?.name ?? key;
}

export function message(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
