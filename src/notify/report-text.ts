/**
 * The plain-text part of a session report: the same facts as the HTML, laid out for an
 * 80-column terminal (mutt, a pager, `vmbackup` over SSH). No line is wider than 80 columns;
 * long names and messages wrap or are cut with "…".
 */
import {adviceFor} from './advice.js';
import {
  fit,
  formatBytes,
  formatDateTime,
  formatDuration,
  formatLongDateTime,
  formatPercent,
  formatRate,
  formatRatio,
  formatTimeOfDay,
  oneLine,
  wrap,
  type TimeOptions,
} from './format.js';
import type {SessionReport} from './model.js';
import {countStatuses, groupIssues, isLowOnSpace, NO_SIZE, processedLine, RESULT_LABEL} from './summary.js';

export const TEXT_WIDTH = 80;

export function renderSessionText(report: SessionReport, subject: string, opts: TimeOptions = {}): string {
  const counts = countStatuses(report);
  const t = report.totals;
  const repo = report.repository;
  const out: string[] = [];
  const rule = (ch: string) => ch.repeat(TEXT_WIDTH);

  out.push(...wrap(subject, TEXT_WIDTH), rule('='));
  out.push(...wrap(`Job: ${oneLine(report.jobName)}`, TEXT_WIDTH));
  if (report.jobDescription) out.push(...wrap(oneLine(report.jobDescription), TEXT_WIDTH, '     '));
  out.push(`Result: ${RESULT_LABEL[report.result]} - ${processedLine(counts)}`);
  const attempt = report.attempt > 1 ? `, attempt ${report.attempt}${report.lastAttempt ? ' (last)' : ''}` : '';
  out.push(`Session: ${formatLongDateTime(report.startedAt, opts)}${attempt}`, '');

  // Two label/value columns of 40 characters each.
  const pair = (l1: string, v1: string, l2: string, v2: string) => `${fit(`${l1}:`, 13)}${fit(v1, 27)}${fit(`${l2}:`, 13)}${v2}`.trimEnd();
  out.push(
    pair('Success', String(counts.success), 'Start time', formatDateTime(report.startedAt, opts)),
    pair('Warning', String(counts.warning), 'End time', formatDateTime(report.endedAt, opts)),
    pair('Error', String(counts.failed), 'Duration', formatDuration(t.durationMs)),
    pair('Total size', formatBytes(t.protectedBytes), 'Dedupe', formatRatio(t.dedupRatio)),
    pair('Data read', formatBytes(t.readBytes), 'Compression', formatRatio(t.compressionRatio)),
    pair('Transferred', formatBytes(t.transferredBytes), 'Rate', formatRate(t.rateBytesPerSec)),
    pair('Stored', formatBytes(t.storedBytes), 'Bottleneck', t.bottleneck ?? '-'),
  );
  const low = isLowOnSpace(repo.freeBytes, repo.totalBytes) ? ' - LOW ON SPACE' : '';
  const space = repo.totalBytes > 0 ? `${formatBytes(repo.freeBytes)} free of ${formatBytes(repo.totalBytes)} (${formatPercent(repo.freeBytes, repo.totalBytes)})${low}` : NO_SIZE;
  out.push(
    ...wrap(
      `Repository: ${oneLine(repo.name)} (${oneLine(repo.path)}): ${space}`,
      TEXT_WIDTH,
    ),
    '',
  );

  // VM table: name 24 | status 8 | size 9 | read 9 | transferred 11 | duration 9  (= 75 with gaps).
  out.push('VMs', rule('-'));
  out.push(`${fit('Name', 24)} ${fit('Status', 8)} ${fit('Size', 9, 'right')} ${fit('Read', 9, 'right')} ${fit('Transferred', 11, 'right')} ${fit('Duration', 9, 'right')}`);
  out.push(rule('-'));
  if (report.vms.length === 0) out.push('No VMs were processed in this session.');
  for (const vm of report.vms) {
    const name = oneLine(vm.name);
    const figures = `${fit(RESULT_LABEL[vm.status], 8)} ${fit(formatBytes(vm.sizeBytes), 9, 'right')} ${fit(formatBytes(vm.readBytes), 9, 'right')} ${fit(
      formatBytes(vm.transferredBytes),
      11,
      'right',
    )} ${fit(formatDuration(vm.durationMs), 9, 'right')}`;
    // A long name gets a line of its own rather than being cut: the name is what people search for.
    if ([...name].length > 24) out.push(...wrap(name, TEXT_WIDTH), `${' '.repeat(25)}${figures}`);
    else out.push(`${fit(name, 24)} ${figures}`);
    const when = `${formatTimeOfDay(vm.startedAt, report.startedAt, opts)} - ${formatTimeOfDay(vm.endedAt, report.startedAt, opts)}`;
    out.push(...wrap(`${when}${vm.details ? `  ${oneLine(vm.details)}` : ''}`, TEXT_WIDTH, '    '));
    if (vm.verification) out.push(...wrap(`Boot check ${vm.verification.result}: ${oneLine(vm.verification.message)}`, TEXT_WIDTH, '    '));
    for (const issue of vm.issues) {
      const tag = issue.severity === 'error' ? 'ERROR' : 'WARNING';
      out.push(...wrap(`${tag}: ${issue.disk ? `${oneLine(issue.disk)}: ` : ''}${oneLine(issue.message)}`, TEXT_WIDTH, '    '));
    }
  }
  out.push(rule('-'));

  const groups = groupIssues(report);
  if (groups.length) {
    out.push('', 'Warnings and errors - what to do', rule('-'));
    for (const g of groups) {
      const advice = adviceFor(g.code, g.firstMessage);
      const where = [...new Set(g.occurrences.map((o) => (o.vm ? oneLine(o.vm) + (o.disk ? ` (${oneLine(o.disk)})` : '') : oneLine(o.message))))];
      out.push(...wrap(`${g.severity === 'error' ? 'ERROR' : 'WARNING'}: ${oneLine(advice.title)}`, TEXT_WIDTH));
      // Session-level issues have no VM: their own message says what is affected.
      const label = g.occurrences.every((o) => !o.vm) ? 'Details' : 'Affected';
      out.push(...wrap(`${label}: ${where.join(', ')}`, TEXT_WIDTH, '  '));
      out.push(...wrap(`What to do: ${advice.action}`, TEXT_WIDTH, '  '), '');
    }
  } else out.push('');

  out.push(...wrap(`Sent by vmbackup ${oneLine(report.appVersion)} on ${oneLine(report.hostname)} - session ${oneLine(report.sessionId)}`, TEXT_WIDTH));
  return out.join('\n') + '\n';
}
