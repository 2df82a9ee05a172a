/**
 * What needs an administrator's attention, most serious first: failed VMs in a job's last
 * session, repositories that cannot be read or are low on space, VMs whose next backup must be
 * a full one, email reports that cannot be delivered. Pure, from the status reply and the sessions.
 */
import type {DaemonEvent, SessionSummary, StatusReply} from '../../api.js';
import type {Tone} from '../../components/status/status.js';

export interface Attention {
  tone: Tone;
  text: string;
}

/** The newest maintenance outcome per repository and action (health check, GC, prune), from events. */
export type MaintenanceSeen = Record<string, {repository: string; action: string; state: string; detail?: string}>;

export function maintenanceReducer(s: MaintenanceSeen, e: DaemonEvent): MaintenanceSeen {
  if (e.type !== 'maintenance') return s;
  return {...s, [`${e.repository}/${e.action}`]: {repository: e.repository, action: e.action, state: e.state, detail: e.detail}};
}

export function attentionItems(status: StatusReply | undefined, sessions: readonly SessionSummary[], lowSpacePercent = 10, maintenance: MaintenanceSeen = {}): Attention[] {
  const out: Attention[] = [];
  const words: Record<string, string> = {verify: 'health check', gc: 'garbage collection'};
  for (const m of Object.values(maintenance)) {
    const name = status?.repositories.find((r) => r.id === m.repository)?.name ?? m.repository;
    const what = words[m.action] ?? m.action;
    if (m.state === 'failed') out.push({tone: 'error', text: `Repository ${name}: ${what} failed${m.detail ? `: ${m.detail}` : ''}`});
    // The daemon's health check "finishes" with a count of problems when it found damage.
    else if (m.state === 'finished' && m.action === 'verify' && m.detail && m.detail !== 'ok') out.push({tone: 'error', text: `Repository ${name}: the health check found damage (${m.detail})`});
  }
  // The newest finished session of each job is the one that counts.
  const lastByJob = new Map<string, SessionSummary>();
  for (const s of sessions) {
    if (s.state === 'running') continue;
    const cur = lastByJob.get(s.jobId);
    if (!cur || cur.startedAt < s.startedAt) lastByJob.set(s.jobId, s);
  }
  for (const s of lastByJob.values()) {
    const failed = s.vms.filter((v) => v.state === 'failed');
    if (s.state === 'failed' || failed.length > 0) {
      const first = failed[0];
      out.push({
        tone: 'error',
        text: failed.length
          ? `${s.jobName}: ${failed.length} VM${failed.length > 1 ? 's' : ''} failed${first ? ` (${first.name}${first.reason ? `: ${first.reason}` : ''})` : ''}`
          : `${s.jobName}: failed${s.reason ? `: ${s.reason}` : ''}`,
      });
    } else if (s.state === 'warning') out.push({tone: 'warning', text: `${s.jobName}: finished with warnings`});
  }
  for (const r of status?.repositories ?? []) {
    if (r.error) out.push({tone: 'error', text: `Repository ${r.name}: ${r.error}`});
    else if (r.totalBytes && r.freeBytes !== undefined && (r.freeBytes / r.totalBytes) * 100 < lowSpacePercent)
      out.push({tone: 'warning', text: `Repository ${r.name}: low on space (${Math.round((r.freeBytes / r.totalBytes) * 100)}% free)`});
    if (r.needsFullVms > 0) out.push({tone: 'warning', text: `Repository ${r.name}: ${r.needsFullVms} VM(s) need a full backup next (damage found)`});
  }
  // Reports the mail queue could not deliver yet: sessions are unaffected, the queue retries.
  const mail = status?.mail as {pending?: number; failed?: number; lastError?: {message: string; hint?: string}} | undefined;
  if (mail?.lastError && (mail.pending ?? 0) > 0) {
    out.push({tone: 'warning', text: `Email: ${mail.pending} report(s) waiting to be sent: ${mail.lastError.message}${mail.lastError.hint ? ` — ${mail.lastError.hint}` : ''}`});
  }
  if ((mail?.failed ?? 0) > 0) out.push({tone: 'error', text: `Email: ${mail!.failed} report(s) could not be delivered and were given up (see the appliance log)`});
  const rank: Record<Tone, number> = {error: 0, warning: 1, running: 2, ok: 3, idle: 4};
  return out.sort((a, b) => rank[a.tone] - rank[b.tone]);
}
