/**
 * The appliance's figures in the Prometheus text format: per job the last session's result and
 * end, the last good backup's end, duration and bytes read and stored; per repository used, free
 * and total bytes, dedup ratio and restore points; the number of running sessions. Labels are
 * escaped as the format demands. Rendered by the daemon's metrics endpoint (daemon/metrics.ts)
 * and by `vmbackup metrics` (cli/metrics.ts) from the same replies.
 */
import {jobOutcomes} from './jobs.js';

export interface MetricsJob {
  id: string;
  name: string;
  enabled?: boolean;
}

export interface MetricsSession {
  jobId: string;
  state: string;
  startedAt: string;
  endedAt?: string;
  totals: {readBytes: number; storedBytes: number; durationMs: number};
}

export interface MetricsRepository {
  id: string;
  name: string;
  freeBytes?: number;
  totalBytes?: number;
  usedBytes?: number;
  dedupRatio?: number;
  restorePoints?: number;
}

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const RESULT: Record<string, number> = {success: 0, warning: 1, failed: 2, stopped: 3};

/** The Prometheus text exposition of what the daemon answered (pure, for tests). */
export function renderMetrics(jobs: MetricsJob[], sessions: MetricsSession[], repositories: MetricsRepository[], running: number): string {
  const out: string[] = [];
  const metric = (name: string, help: string, type: 'gauge', samples: [string, number | undefined][]) => {
    const present = samples.filter((s): s is [string, number] => s[1] !== undefined && Number.isFinite(s[1]));
    if (!present.length) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of present) out.push(`${name}${labels} ${value}`);
  };
  const perJob = jobs.map((j) => {
    const {last, good} = jobOutcomes(sessions, j.id);
    return {labels: `{job="${label(j.id)}",name="${label(j.name)}"}`, j, last, good};
  });
  const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
  metric('vmbackup_job_enabled', '1 when the job runs on its schedule.', 'gauge', perJob.map((p) => [p.labels, p.j.enabled === false ? 0 : 1]));
  metric('vmbackup_job_last_result', 'Result of the job\'s last finished session: 0 success, 1 warning, 2 failed, 3 stopped.', 'gauge', perJob.map((p) => [p.labels, p.last ? RESULT[p.last.state] : undefined]));
  metric('vmbackup_job_last_end_timestamp_seconds', 'When the job\'s last finished session ended.', 'gauge', perJob.map((p) => [p.labels, seconds(p.last?.endedAt)]));
  metric('vmbackup_job_last_success_timestamp_seconds', 'When the job\'s last good session (success or warning) ended.', 'gauge', perJob.map((p) => [p.labels, seconds(p.good?.endedAt)]));
  metric('vmbackup_job_last_duration_seconds', 'Duration of the job\'s last finished session.', 'gauge', perJob.map((p) => [p.labels, p.last ? p.last.totals.durationMs / 1000 : undefined]));
  metric('vmbackup_job_last_read_bytes', 'Bytes read by the job\'s last finished session.', 'gauge', perJob.map((p) => [p.labels, p.last?.totals.readBytes]));
  metric('vmbackup_job_last_stored_bytes', 'Bytes stored by the job\'s last finished session (after dedup and compression).', 'gauge', perJob.map((p) => [p.labels, p.last?.totals.storedBytes]));
  const repo = (r: MetricsRepository) => `{repository="${label(r.id)}",name="${label(r.name)}"}`;
  metric('vmbackup_repository_used_bytes', 'Bytes the repository\'s chunks take.', 'gauge', repositories.map((r) => [repo(r), r.usedBytes]));
  metric('vmbackup_repository_free_bytes', 'Free bytes on the repository\'s file system.', 'gauge', repositories.map((r) => [repo(r), r.freeBytes]));
  metric('vmbackup_repository_size_bytes', 'Size of the repository\'s file system.', 'gauge', repositories.map((r) => [repo(r), r.totalBytes]));
  metric('vmbackup_repository_dedup_ratio', 'Data backed up per byte stored.', 'gauge', repositories.map((r) => [repo(r), r.dedupRatio]));
  metric('vmbackup_repository_restore_points', 'Restore points in the repository.', 'gauge', repositories.map((r) => [repo(r), r.restorePoints]));
  metric('vmbackup_sessions_running', 'Backup sessions running now.', 'gauge', [['', running]]);
  return `${out.join('\n')}\n`;
}
