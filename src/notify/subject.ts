/**
 * Subject templates with Veeam's variables: %JobName%, %JobResult%, %ObjectCount%, %Issues%,
 * %Time% (completion time). Unknown %words% are left as they are so that a typo is visible in
 * the mail rather than silently dropped. The result is always one line: a job name cannot
 * inject a header.
 */
import {formatDateTime, oneLine, type TimeOptions} from './format.js';
import type {SessionReport} from './model.js';
import {countStatuses, issuesPhrase, RESULT_LABEL} from './summary.js';

export const DEFAULT_SUBJECT_TEMPLATE = '[%JobResult%] %JobName% (%ObjectCount% VMs) %Issues%';

export const SUBJECT_VARIABLES = ['%JobName%', '%JobResult%', '%ObjectCount%', '%Issues%', '%Time%'] as const;

export function expandSubject(template: string, report: SessionReport, opts: TimeOptions = {}): string {
  const counts = countStatuses(report);
  const values: Record<string, string> = {
    jobname: oneLine(report.jobName),
    jobresult: RESULT_LABEL[report.result],
    objectcount: String(counts.total),
    issues: issuesPhrase(counts),
    time: formatDateTime(report.endedAt, opts),
  };
  // Variable names are matched without regard to case: "%jobname%" works as well.
  const expanded = template.replace(/%([A-Za-z]+)%/g, (whole, name: string) => values[name.toLowerCase()] ?? whole);
  // An empty %Issues% leaves a trailing space or "()" style gaps; collapse runs of blanks.
  return oneLine(expanded).replace(/\s{2,}/g, ' ');
}
