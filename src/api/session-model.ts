/**
 * What the daemon records about a session (one run of a job): its VMs with their status and
 * figures, its log, its totals. Plain JSON: persisted in the history (history.ts) and returned
 * by the control API as is.
 */
import type {TransferTotals} from '../notify/model.js';
import type {Severity} from '../platforms/types.js';

export type SessionState = 'running' | 'success' | 'warning' | 'failed' | 'stopped';
export type VmState = 'pending' | 'waiting' | 'running' | 'success' | 'warning' | 'failed' | 'stopped';

export interface VmFigures {
  sizeBytes: number;
  readBytes: number;
  /** Bytes of new chunk files written (after dedup and compression). */
  storedBytes: number;
  /** Plain bytes of the chunks that had to be stored. */
  newPlainBytes: number;
  /** Non-zero bytes processed (read plus unchanged). */
  processedBytes: number;
  durationMs: number;
  /** Sum of the disk tasks' own durations (several may run at once). */
  diskMs?: number;
  sourceMs: number;
  repositoryMs: number;
  /** The part of repositoryMs spent hashing and compressing (older records lack it). */
  processingMs?: number;
  /** Bytes a worker on the VM's host sent for the disks it read (ids and new packed chunks). */
  workerBytes?: number;
}

export interface SessionVm {
  id: string;
  name: string;
  state: VmState;
  /** Why it failed or was stopped, in words. */
  reason?: string;
  restorePointId?: string;
  incremental?: boolean;
  full?: boolean;
  worker?: string;
  startedAt?: string;
  endedAt?: string;
  attempts: number;
  figures?: VmFigures;
  /** Restore verification of its new restore point (the job's restoreVerification option). */
  verification?: RestoreVerification;
}

/** Did the new restore point boot? (engine/verify-boot.ts) */
export interface RestoreVerification {
  /** running while the VM boots; skipped when it could not be tried (the message says why). */
  result: 'running' | 'passed' | 'warning' | 'failed' | 'skipped';
  message: string;
  /** What proved it: the guest agent answered, or a boot loader read the disk. */
  signal?: 'guest-agent' | 'boot-loader';
  /** Where it ran: the libvirt connection and host, and the throw-away VM's name. */
  connection?: string;
  host?: string;
  vmName?: string;
  readBytes?: number;
  durationMs?: number;
  /** The screenshot's file name (PNG) in the daemon's screenshot directory (<state>/screenshots); the report mail shows it. */
  screenshot?: string;
}

export interface LogLine {
  time: string;
  severity: Severity;
  code: string;
  message: string;
  vm?: string;
  disk?: string;
}

export interface SessionTotals extends TransferTotals {
  /** Provisioned size of the session's disks. */
  sizeBytes: number;
}

export interface SessionRecord {
  id: string;
  jobId: string;
  jobName: string;
  state: SessionState;
  /** 'schedule', 'manual', 'retry-failed'. */
  trigger: string;
  /** 1, then 2 for the first automatic retry of failed VMs, ... */
  attempt: number;
  startedAt: string;
  endedAt?: string;
  /** Why the session failed or stopped as a whole. */
  reason?: string;
  repository: string;
  vms: SessionVm[];
  log: LogLine[];
  totals: SessionTotals;
}

/** The longest session log kept: the first lines and the last are what an operator reads. */
export const MAX_LOG_LINES = 2000;
