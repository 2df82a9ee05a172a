/**
 * The email report of a session: the notify layer's SessionReport filled from the daemon's
 * SessionRecord. Pure.
 */
import type {SessionReport} from '../notify/model.js';
import type {SessionRecord} from '../api/session-model.js';
import {transferredOf} from './figures.js';

/** The Content-ID a screenshot file travels under in the report mail. */
export function screenshotCid(file: string): string {
  return `${file.replace(/[^A-Za-z0-9._-]/g, '_')}@vmbackup`;
}

export function toSessionReport(
  s: SessionRecord,
  o: {jobDescription?: string; copy?: boolean; lastAttempt: boolean; repository: {name: string; path: string; freeBytes: number; totalBytes: number}; hostname: string; appVersion: string},
): SessionReport {
  return {
    sessionId: s.id,
    jobId: s.jobId,
    jobName: s.jobName,
    jobDescription: o.jobDescription,
    ...(o.copy ? {copy: true} : {}),
    // A stopped session is reported as failed: some VMs have no new restore point.
    result: s.state === 'success' || s.state === 'warning' ? s.state : 'failed',
    startedAt: s.startedAt,
    endedAt: s.endedAt ?? s.startedAt,
    attempt: s.attempt,
    lastAttempt: o.lastAttempt,
    vms: s.vms.map((v) => ({
      name: v.name,
      status: v.state === 'success' || v.state === 'warning' ? v.state : 'failed',
      startedAt: v.startedAt,
      endedAt: v.endedAt,
      sizeBytes: v.figures?.sizeBytes ?? 0,
      readBytes: v.figures?.readBytes ?? 0,
      transferredBytes: v.figures ? transferredOf(v.figures) : 0,
      durationMs: v.figures?.durationMs ?? 0,
      details: [o.copy ? 'copied' : v.incremental ? 'incremental' : 'full', v.reason].filter(Boolean).join(', '),
      ...(v.verification && v.verification.result !== 'running'
        ? {verification: {result: v.verification.result, message: v.verification.message, ...(v.verification.screenshot ? {screenshotCid: screenshotCid(v.verification.screenshot)} : {})}}
        : {}),
      issues: s.log
        .filter((l) => (l.severity === 'warning' || l.severity === 'error') && l.vm === v.name)
        .map((l) => ({severity: l.severity as 'warning' | 'error', code: l.code, message: l.message, disk: l.disk})),
    })),
    issues: s.log.filter((l) => (l.severity === 'warning' || l.severity === 'error') && !l.vm).map((l) => ({severity: l.severity as 'warning' | 'error', code: l.code, message: l.message})),
    totals: {
      protectedBytes: s.totals.sizeBytes,
      readBytes: s.totals.readBytes,
      transferredBytes: s.totals.transferredBytes,
      storedBytes: s.totals.storedBytes,
      dedupRatio: s.totals.dedupRatio,
      compressionRatio: s.totals.compressionRatio,
      durationMs: s.totals.durationMs,
      rateBytesPerSec: s.totals.rateBytesPerSec,
      bottleneck: s.totals.bottleneck,
    },
    repository: o.repository,
    hostname: o.hostname,
    appVersion: o.appVersion,
  };
}
