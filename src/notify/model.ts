/**
 * The data a session report is rendered from.
 *
 * The daemon fills a SessionReport when a backup session ends (one per attempt) and hands it to
 * the notify layer; nothing here does I/O. Sizes are bytes, durations milliseconds, times ISO 8601
 * strings (UTC or with an offset). Figures the daemon does not know are still present as 0 so that
 * a report never shows "undefined".
 */

export type SessionResult = 'success' | 'warning' | 'failed';
export type VmStatus = 'success' | 'warning' | 'failed';
export type IssueSeverity = 'warning' | 'error';
export type Bottleneck = 'source' | 'processing' | 'repository';

/** One warning or error in a session, attached to a VM (and a disk, when it concerns one). */
export interface Issue {
  severity: IssueSeverity;
  /** Stable machine code, e.g. 'raw-disk-full-scan'; keys the "what to do" table in advice.ts. */
  code: string;
  /** What happened, in the operator's words. */
  message: string;
  disk?: string;
}

export interface VmReport {
  name: string;
  status: VmStatus;
  startedAt?: string;
  endedAt?: string;
  /** Provisioned size of the VM's disks. */
  sizeBytes: number;
  /** Read from the source (only changed blocks on an incremental). */
  readBytes: number;
  /** What went over the wire: what a worker on the VM's host sent (ids and new packed chunks), else the bytes written to the repository after deduplication and compression. */
  transferredBytes: number;
  durationMs: number;
  /** Free text for the Details column, e.g. "incremental, 3 disks". */
  details?: string;
  issues: Issue[];
  /** Restore verification of its new restore point: did it boot? */
  verification?: {
    result: 'passed' | 'warning' | 'failed' | 'skipped';
    message: string;
    /** Content-ID of its screenshot among the mail's attachments (the HTML part shows it). */
    screenshotCid?: string;
  };
}

/** What a session moved: the figures the session history and the report share. */
export interface TransferTotals {
  readBytes: number;
  /** What went over the wire into the repository: what workers on the hosts sent, else the stored bytes. */
  transferredBytes: number;
  /** Size this session added to the repository. */
  storedBytes: number;
  /** Logical bytes / unique bytes, e.g. 3.2 means "3.2x". */
  dedupRatio: number;
  /** Uncompressed bytes / compressed bytes. */
  compressionRatio: number;
  durationMs: number;
  rateBytesPerSec: number;
  bottleneck?: Bottleneck;
}

export interface SessionTotals extends TransferTotals {
  /** Provisioned size of every disk in the job. */
  protectedBytes: number;
}

export interface RepositorySpace {
  name: string;
  path: string;
  freeBytes: number;
  totalBytes: number;
}

export interface SessionReport {
  sessionId: string;
  jobId: string;
  jobName: string;
  jobDescription?: string;
  /** A copy job's session (its VMs' points copied to a second repository): said in the header. */
  copy?: boolean;
  result: SessionResult;
  startedAt: string;
  endedAt: string;
  /** 1 for the first run, 2 for the first retry, ... */
  attempt: number;
  /** True when no further retry of this session will follow (success, or retries exhausted). */
  lastAttempt: boolean;
  vms: VmReport[];
  /** Issues that concern the session rather than one VM (repository low on space, retention). */
  issues?: Issue[];
  totals: SessionTotals;
  repository: RepositorySpace;
  /** The appliance's host name, shown at the foot of the report. */
  hostname: string;
  appVersion: string;
}

/** A rendered message, ready to be addressed and queued. */
export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
}

/** Input of the optional daily summary. */
export interface DailySummaryInput {
  jobs: {name: string; lastResult?: SessionResult | 'never' | 'running'; lastRun?: string; nextRun?: string}[];
  repositories: {name: string; freeBytes: number; totalBytes: number}[];
  hostname: string;
  /** When the summary was made (ISO); defaults to now in renderDailySummary's caller. */
  generatedAt?: string;
}
