/**
 * Retention planning (pure): which restore points a policy keeps, and why.
 *
 * Per VM, newest first. Protected restore points are always kept and never counted. Then, in
 * this order, each rule keeps restore points not yet kept: keep-last N; keep-within D days of
 * `now`; keep-daily/weekly/monthly/yearly N keep the newest restore point of each of the N most
 * recent periods (UTC calendar day, ISO week, month, year) that have one — a period already
 * covered by a point kept by an earlier rule still counts as one of the N (as PBS and borg do).
 * A policy with no rule at all keeps everything: an empty policy must never wipe a repository.
 */
import type {PruneDecision, RetentionPolicy, RestorePointSummary} from './types.js';

type Period = 'daily' | 'weekly' | 'monthly' | 'yearly';

export function periodKey(d: Date, period: Period): string {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  switch (period) {
    case 'daily':
      return `${y}-${m}-${d.getUTCDate()}`;
    case 'monthly':
      return `${y}-${m}`;
    case 'yearly':
      return `${y}`;
    case 'weekly': {
      // ISO 8601 week: the week with the year's first Thursday is week 1.
      const t = new Date(Date.UTC(y, d.getUTCMonth(), d.getUTCDate()));
      const day = t.getUTCDay() || 7;
      t.setUTCDate(t.getUTCDate() + 4 - day);
      const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
      const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
      return `${t.getUTCFullYear()}-W${week}`;
    }
  }
}

function hasRule(p: RetentionPolicy): boolean {
  return [p.keepLast, p.keepWithinDays, p.keepDaily, p.keepWeekly, p.keepMonthly, p.keepYearly].some((v) => v !== undefined && v > 0);
}

export function validatePolicy(p: RetentionPolicy): string | undefined {
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k !== 'keepWithinDays' && !Number.isInteger(v))) {
      return `${k} must be a non-negative ${k === 'keepWithinDays' ? 'number' : 'integer'}, not ${JSON.stringify(v)}`;
    }
  }
  return undefined;
}

/** Decides keep/remove for every restore point given (any mix of VMs). */
export function planRetention(points: RestorePointSummary[], policy: RetentionPolicy, now: Date): PruneDecision[] {
  const byVm = new Map<string, RestorePointSummary[]>();
  for (const p of points) byVm.set(p.vmId, [...(byVm.get(p.vmId) ?? []), p]);
  const out: PruneDecision[] = [];
  for (const group of byVm.values()) out.push(...planGroup(group, policy, now));
  return out;
}

function planGroup(points: RestorePointSummary[], policy: RetentionPolicy, now: Date): PruneDecision[] {
  const newestFirst = [...points].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<string, string[]>(newestFirst.map((p) => [p.id, []]));
  const keep = (p: RestorePointSummary, why: string) => reasons.get(p.id)!.push(why);
  const candidates = newestFirst.filter((p) => {
    if (p.protected) keep(p, 'protected');
    return !p.protected;
  });
  if (!hasRule(policy)) {
    for (const p of candidates) keep(p, 'no-policy');
  } else {
    candidates.slice(0, policy.keepLast ?? 0).forEach((p) => keep(p, 'keep-last'));
    if (policy.keepWithinDays !== undefined && policy.keepWithinDays > 0) {
      const limit = now.getTime() - policy.keepWithinDays * 86_400_000;
      for (const p of candidates) if (Date.parse(p.time) >= limit) keep(p, 'keep-within');
    }
    const rules: [Period, number | undefined][] = [
      ['daily', policy.keepDaily],
      ['weekly', policy.keepWeekly],
      ['monthly', policy.keepMonthly],
      ['yearly', policy.keepYearly],
    ];
    for (const [period, n] of rules) {
      if (!n) continue;
      const seen = new Set<string>();
      for (const p of candidates) {
        if (seen.size >= n) break;
        const key = periodKey(new Date(p.time), period);
        if (seen.has(key)) continue;
        seen.add(key);
        // Newest first, so this is the newest point of its period; it may be kept already.
        keep(p, period);
      }
    }
  }
  return newestFirst.map((p) => {
    const why = reasons.get(p.id)!;
    return {id: p.id, vmId: p.vmId, vmName: p.vmName, time: p.time, keep: why.length > 0, reasons: why};
  });
}
