/**
 * Pure facts derived from a SessionReport that the subject line, the HTML and the text part all
 * show: labels, counts by status, "N of M VMs processed" and the %Issues% phrase. One place, so
 * the three never disagree.
 */
import type {SessionReport, SessionResult, VmStatus} from './model.js';

export const RESULT_LABEL: Record<SessionResult, string> = {success: 'Success', warning: 'Warning', failed: 'Failed'};

export const STATUS_SYMBOL: Record<VmStatus, string> = {success: '✔', warning: '⚠', failed: '✖'};

export interface StatusCounts {
  success: number;
  warning: number;
  failed: number;
  total: number;
  /** VMs for which a restore point was made: success + warning (as Veeam counts "processed"). */
  processed: number;
}

export function countStatuses(report: SessionReport): StatusCounts {
  const c = {success: 0, warning: 0, failed: 0};
  for (const vm of report.vms) c[vm.status]++;
  return {...c, total: report.vms.length, processed: c.success + c.warning};
}

/** "3 of 4 VMs processed" (singular for one VM). */
export function processedLine(c: StatusCounts): string {
  return `${c.processed} of ${c.total} ${c.total === 1 ? 'VM' : 'VMs'} processed`;
}

/** The %Issues% phrase: "1 failed, 2 warnings", or "" when every VM succeeded. */
export function issuesPhrase(c: StatusCounts): string {
  const out: string[] = [];
  if (c.failed > 0) out.push(`${c.failed} failed`);
  if (c.warning > 0) out.push(`${c.warning} ${c.warning === 1 ? 'warning' : 'warnings'}`);
  return out.join(', ');
}

/** All occurrences of one issue code in a session, for the "what to do" section. */
export interface IssueGroup {
  code: string;
  /** 'error' if any occurrence is an error. */
  severity: 'warning' | 'error';
  /** The first occurrence's message: the heading for codes without advice of their own. */
  firstMessage: string;
  occurrences: {vm?: string; disk?: string; message: string}[];
}

/** Groups session and VM issues by code: errors first, then in order of first appearance. */
export function groupIssues(report: SessionReport): IssueGroup[] {
  const groups = new Map<string, IssueGroup>();
  const add = (issue: {severity: 'warning' | 'error'; code: string; message: string; disk?: string}, vm?: string) => {
    let g = groups.get(issue.code);
    if (!g) {
      g = {code: issue.code, severity: issue.severity, firstMessage: issue.message, occurrences: []};
      groups.set(issue.code, g);
    }
    if (issue.severity === 'error') g.severity = 'error';
    g.occurrences.push({vm, disk: issue.disk, message: issue.message});
  };
  for (const issue of report.issues ?? []) add(issue);
  for (const vm of report.vms) for (const issue of vm.issues) add(issue, vm.name);
  const all = [...groups.values()];
  return [...all.filter((g) => g.severity === 'error'), ...all.filter((g) => g.severity === 'warning')];
}

/** Repositories below this share of free space are flagged in the report. */
export const LOW_SPACE_FRACTION = 0.1;

/** What a report says of a repository without a size (an S3 bucket) instead of a free-space figure and bar. */
export const NO_SIZE = 'object storage, no fixed size (no free-space figure)';

export function isLowOnSpace(free: number, total: number): boolean {
  return total > 0 && free / total < LOW_SPACE_FRACTION;
}
