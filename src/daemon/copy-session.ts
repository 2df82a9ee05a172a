/**
 * A copy job's session (3-2-1's second copy): the restore points of the source repository go to
 * the job's repository through repository/copy.ts — only the points the job's retention would keep
 * (no copying of what its prune would remove at once), only the chunks the target lacks, the
 * manifest last, so a session that dies leaves nothing half-visible and the next one goes on where
 * it stopped. One VM at a time (one row of the session each, as a backup job's), within the job's
 * bandwidth limit; with `source.verify` the new copies are read back from the target and every
 * chunk checked. The copies record the copy job and session, so the job's retention (maintenance.ts
 * afterSession) governs them in the target.
 */
import type {CopySource, JobConfig} from '../config/schema.js';
import {message} from '../engine/backup-vm.js';
import {copyRestorePoints, planRetention, type Repository, type RestorePointSummary} from '../repository/index.js';
import type {LogLine, SessionRecord, SessionVm} from '../api/session-model.js';
import {retentionPolicy} from './maintenance.js';
import {retryFailed} from './retries.js';

export interface CopySessionDeps {
  /** The open repository of a configured id. */
  repository(id: string): Promise<Repository>;
  log(record: SessionRecord, line: Omit<LogLine, 'time'>): void;
  /** The record changed: publish it (and save it when `save`). */
  changed(record: SessionRecord, save?: boolean): Promise<void>;
  now(): number;
  /** Waits `ms` (the wait before a retry), or less when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The VMs of the source repository the job copies, and the names it asks for that the source does not have. */
export function copyTargets(points: readonly RestorePointSummary[], src: CopySource): {vms: {id: string; name: string}[]; unknown: string[]} {
  const names = new Map<string, string>();
  for (const p of [...points].sort((a, b) => (a.time < b.time ? -1 : 1))) names.set(p.vmId, p.vmName);
  const all = [...names].map(([id, name]) => ({id, name}));
  if (src.vms.length === 0) return {vms: all, unknown: []};
  return {
    vms: all.filter((v) => src.vms.includes(v.id) || src.vms.includes(v.name)),
    unknown: src.vms.filter((w) => !all.some((v) => v.id === w || v.name === w)),
  };
}

export async function runCopySession(
  d: CopySessionDeps,
  record: SessionRecord,
  job: JobConfig,
  src: CopySource,
  o: {signal: AbortSignal; only?: string[]; throttle?: (bytes: number) => Promise<void>},
): Promise<void> {
  const source = await d.repository(src.repository);
  const target = await d.repository(job.repository);
  // Listed once for the whole session (every VM's copy uses them; the target's ids are kept up to date).
  const points = await source.listRestorePoints();
  const targetIds = new Set((await target.listRestorePoints()).map((p) => p.id));
  const {vms, unknown} = copyTargets(points, src);
  for (const name of unknown) {
    record.vms.push({id: name, name, state: 'failed', reason: `The source repository has no restore point of ${name}.`, attempts: 0});
    d.log(record, {severity: 'error', code: 'vm-not-found', message: `The source repository ${source.path} has no restore point of ${name}.`, vm: name});
  }
  const todo = o.only ? vms.filter((v) => o.only!.includes(v.id)) : vms;
  if (todo.length === 0 && unknown.length === 0) d.log(record, {severity: 'warning', code: 'no-vms', message: 'The source repository has no restore point to copy.'});
  for (const v of todo) record.vms.push({id: v.id, name: v.name, state: 'pending', attempts: 0});
  await d.changed(record, true);
  // Failed VMs are tried again as a backup job's are (the job's retries: count, wait); a copy
  // that failed left nothing visible in the target, and the next attempt sends only what is missing.
  await retryFailed(
    record,
    job.retries,
    todo,
    async (left) => {
      for (const v of left) {
        if (o.signal.aborted) break;
        await copyVm(d, record, record.vms.find((r) => r.id === v.id)!, job, src, source, target, {source: points, targetIds}, o);
      }
    },
    {signal: o.signal, log: (line) => d.log(record, line), waiting: () => d.changed(record), sleep: (ms, sig) => d.sleep(ms, sig)},
  );
}

async function copyVm(
  d: CopySessionDeps,
  record: SessionRecord,
  row: SessionVm,
  job: JobConfig,
  src: CopySource,
  source: Repository,
  target: Repository,
  listed: {source: readonly RestorePointSummary[]; targetIds: Set<string>},
  o: {signal: AbortSignal; throttle?: (bytes: number) => Promise<void>},
): Promise<void> {
  const points = listed.source;
  row.attempts++;
  row.state = 'running';
  delete row.reason;
  row.startedAt = new Date().toISOString();
  await d.changed(record);
  try {
    // What the job's retention would keep of this VM's points: nothing else is worth copying.
    const plan = planRetention(points.filter((p) => p.vmId === row.id), retentionPolicy(job.retention), new Date(d.now()));
    const keep = plan.filter((x) => x.keep).map((x) => x.id);
    const started = Date.now();
    const result =
      keep.length === 0
        ? {copied: [], present: []}
        : await copyRestorePoints(source, target, {vm: row.id, restorePoints: keep, signal: o.signal, jobId: job.id, sessionId: record.id, listed, ...(o.throttle ? {throttle: o.throttle} : {}), ...(job.retentionLockDays !== undefined ? {lockDays: job.retentionLockDays} : {})});
    const copied = result.copied.map((c) => c.targetId ?? c.id);
    let damaged = 0;
    let removed = '';
    if (src.verify && copied.length > 0) {
      const report = await target.verify({restorePoints: copied});
      damaged = report.problems.length + report.indexProblems.length;
      // A damaged copy goes, so that the next session copies it again (a lock may keep it: said).
      const bad = report.restorePoints.filter((r) => !r.ok).map((r) => r.id);
      const gone = [];
      for (const id of bad) {
        if (!(await target.forget(id, {force: true}).then(() => true, () => false))) continue;
        gone.push(id);
        listed.targetIds.delete(id);
      }
      if (bad.length) removed = gone.length === bad.length ? ' They were removed from the target; the next session copies them again.' : ` ${bad.length - gone.length} of them could not be removed (a retention lock?).`;
    }
    const read = result.copied.reduce((a, c) => a + c.readBytes, 0);
    const stored = result.copied.reduce((a, c) => a + c.newStoredBytes, 0);
    const size = points.filter((p) => copied.length > 0 && result.copied.some((c) => c.id === p.id)).reduce((a, p) => a + p.logicalSize, 0);
    row.figures = {sizeBytes: size, readBytes: read, storedBytes: stored, newPlainBytes: 0, processedBytes: read, durationMs: Date.now() - started, sourceMs: 0, repositoryMs: 0};
    row.restorePointId = copied.at(-1);
    const newChunks = result.copied.reduce((a, c) => a + c.newChunks, 0);
    d.log(record, {
      severity: 'info',
      code: 'copied',
      message: `${row.name}: ${copied.length} restore point(s) copied (${newChunks} new chunks), ${result.present.length} already in the target${src.verify && copied.length ? ', read back and checked' : ''}.`,
      vm: row.name,
    });
    if (damaged > 0) {
      row.state = 'failed';
      row.reason = `The copies read back from the target show ${damaged} damaged or missing chunk(s).${removed}`;
      d.log(record, {severity: 'error', code: 'copy-verify-failed', message: `${row.reason} Check the target's disk (vmbackup repo verify ${target.path}).`, vm: row.name});
    } else {
      row.state = 'success';
    }
  } catch (err) {
    row.state = o.signal.aborted ? 'stopped' : 'failed';
    row.reason = o.signal.aborted ? (record.reason ?? 'Stopped.') : message(err);
    if (!o.signal.aborted) d.log(record, {severity: 'error', code: 'vm-copy-failed', message: `${row.name}: ${message(err)}`, vm: row.name});
  }
  row.endedAt = new Date().toISOString();
  await d.changed(record, true);
}
