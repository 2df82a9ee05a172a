/**
 * The HTML part of a session report, written for mail clients rather than browsers: table
 * layout, inline CSS only, no external resources, no scripts. Every piece of user text (job and
 * VM names, messages, paths) goes through escapeHtml. Rows are kept lean (attributes instead of
 * repeated style strings) so that a 200-VM report stays under 100 KB.
 */
import {adviceFor} from './advice.js';
import {
  escapeHtml as esc,
  formatBytes,
  formatDuration,
  formatLongDateTime,
  formatPercent,
  formatRate,
  formatRatio,
  formatTimeOfDay,
  formatDateTime,
  type TimeOptions,
} from './format.js';
import {BORDER, documentShell, FONT, footer, headerBar, MUTED, nb, section, spaceBar, STATUS_COLOUR} from './html-parts.js';
import type {SessionReport, VmReport} from './model.js';
import {
  countStatuses,
  groupIssues,
  isLowOnSpace,
  NO_SIZE,
  processedLine,
  RESULT_LABEL,
  STATUS_SYMBOL,
  type IssueGroup,
} from './summary.js';

/** Per-VM issue messages shown in the Details cell; the rest are counted ("+2 more"). */
const MAX_ISSUES_IN_CELL = 3;
/** VM names listed under one issue group before "and N more". */
const MAX_NAMES_PER_GROUP = 40;

/** Mail clients clip or reject big HTML parts (Gmail clips at 102 KB); stay under this. */
export const HTML_BUDGET_BYTES = 100 * 1024;
/** A message longer than this is cut in the Details cell (the text part has it in full). */
const MAX_MESSAGE_IN_CELL = 200;

export interface HtmlOptions extends TimeOptions {
  /**
   * Leave the issue messages out of the Details cells and show only their count: used when the
   * full rendering would exceed HTML_BUDGET_BYTES (hundreds of VMs, each with long messages).
   */
  compact?: boolean;
  /**
   * With compact: only VMs with an error keep a row; the others are named in two lines (with
   * warnings, without remarks), their figures in the plain-text part. For sessions of hundreds
   * of VMs, where even one short row each would exceed HTML_BUDGET_BYTES (mail clients clip
   * longer messages: Gmail at 102 KB).
   */
  condensed?: boolean;
}

export function renderSessionHtml(report: SessionReport, subject: string, opts: HtmlOptions = {}): string {
  const counts = countStatuses(report);
  const t = report.totals;
  const repo = report.repository;
  const low = isLowOnSpace(repo.freeBytes, repo.totalBytes);

  const header = headerBar(report.result, {
    caption: report.copy ? 'Copy job' : 'Backup job',
    title: report.jobName,
    subtitle: report.jobDescription,
    right: RESULT_LABEL[report.result],
    rightSub: processedLine(counts),
  });

  const attempt = report.attempt > 1 ? ` &middot; attempt ${report.attempt}${report.lastAttempt ? ' (last)' : ''}` : '';
  const sessionLine = `<tr><td style="padding:10px 20px;border-bottom:1px solid ${BORDER};color:${MUTED};font-size:13px">Session ${esc(
    formatLongDateTime(report.startedAt, opts),
  )}${attempt}</td></tr>`;

  // The figures as label/value pairs that flow: four to a line at 900 px, one or two on a phone
  // (390 px), where a fixed grid would need sideways scrolling.
  const pair = (label: string, value: string, colour?: string) =>
    `<div style="display:inline-block;min-width:170px;padding:3px 16px 3px 0;white-space:nowrap"><span style="color:${MUTED}">${label}</span> <b${colour ? ` style="color:${colour}"` : ''}>${value}</b></div>`;
  const pairs: [string, string, string?][] = [
    ['Success', String(counts.success), counts.success ? STATUS_COLOUR.success : undefined],
    ['Warning', String(counts.warning), counts.warning ? STATUS_COLOUR.warning : undefined],
    ['Error', String(counts.failed), counts.failed ? STATUS_COLOUR.failed : undefined],
    ['Duration', formatDuration(t.durationMs)],
    ['Start time', esc(formatDateTime(report.startedAt, opts))],
    ['End time', esc(formatDateTime(report.endedAt, opts))],
    ['Total size', formatBytes(t.protectedBytes)],
    ['Data read', formatBytes(t.readBytes)],
    ['Transferred', formatBytes(t.transferredBytes)],
    ['Stored', formatBytes(t.storedBytes)],
    ['Dedupe', formatRatio(t.dedupRatio)],
    ['Compression', formatRatio(t.compressionRatio)],
    ['Rate', formatRate(t.rateBytesPerSec)],
    ['Bottleneck', t.bottleneck ? capitalise(t.bottleneck) : '–'],
  ];
  const summary = `<tr><td style="padding:12px 20px;border-bottom:1px solid ${BORDER};font-size:13px;color:#1f2937">
${pairs.map(([l, v, c]) => pair(l, v, c)).join('')}
<div style="margin-top:8px;font-size:13px;color:${low ? STATUS_COLOUR.failed : MUTED}">Repository <b>${esc(repo.name)}</b> (${esc(repo.path)}): ${
    repo.totalBytes > 0
      ? `${formatBytes(repo.freeBytes)} free of ${formatBytes(repo.totalBytes)} (${formatPercent(repo.freeBytes, repo.totalBytes)})${low ? ' &mdash; <b>low on space</b>' : ''}</div><div style="margin-top:4px">${spaceBar(repo.freeBytes, repo.totalBytes, low, 260)}`
      : NO_SIZE
  }</div></td></tr>`;

  const hasError = (vm: VmReport) => vm.status === 'failed' || vm.issues.some((i) => i.severity === 'error');
  const rowed = opts.condensed ? report.vms.filter(hasError) : report.vms;
  const named = (title: string, vms: VmReport[]) =>
    vms.length
      ? `<tr class="vm-names" valign="top"><td><b>${title} (${vms.length}):</b> <small>${vms.map((vm) => esc(vm.name)).join(', ')}</small></td></tr>`
      : '';
  const vmRows = [
    ...rowed.map((vm, i) => vmRow(vm, i, report.startedAt, opts)),
    ...(opts.condensed
      ? [
          named(`${STATUS_SYMBOL.warning}&nbsp;With warnings`, report.vms.filter((vm) => !hasError(vm) && vm.issues.length > 0)),
          named(`${STATUS_SYMBOL.success}&nbsp;Backed up without remarks`, report.vms.filter((vm) => !hasError(vm) && vm.issues.length === 0)),
        ]
      : []),
  ]
    .filter(Boolean)
    .join('\n');
  const compactNote = opts.condensed
    ? `<div style="color:${MUTED};margin-bottom:6px">This session has many VMs: those with an error have a row here; the others are named below, and every VM's figures and messages are in the plain-text part of this mail and in the session log.</div>`
    : opts.compact
      ? `<div style="color:${MUTED};margin-bottom:6px">This session has many messages: they are counted here and listed in full in the plain-text part of this mail and in the session log.</div>`
      : '';
  // One block per VM rather than nine columns: it reads the same at 900 px and on a phone.
  const vmTable = section(
    'Details',
    `${compactNote}
<table id="vms" width="100%" cellpadding="6" cellspacing="0" style="${FONT};font-size:13px;color:#1f2937;border-collapse:collapse">
<tbody>
${vmRows || `<tr><td style="color:${MUTED}">No VMs were processed in this session.</td></tr>`}
</tbody></table>`,
  );

  const groups = groupIssues(report);
  const issues = groups.length
    ? section(
        'Warnings and errors — what to do',
        `<table id="issues" width="100%" cellpadding="0" cellspacing="0" style="${FONT};font-size:12px;color:#1f2937">
${groups.map(issueGroupRow).join('\n')}
</table>`,
      )
    : '';

  const foot = footer(`Sent by vmbackup ${esc(report.appVersion)} on <b>${esc(report.hostname)}</b> &middot; session ${esc(report.sessionId)}`);

  // What needs doing comes right after the result, before the figures and the per-VM details.
  return documentShell(subject, [header, sessionLine, issues, summary, vmTable, foot]);
}

function vmRow(vm: VmReport, index: number, sessionStart: string, opts: HtmlOptions): string {
  const colour = STATUS_COLOUR[vm.status];
  const details: string[] = [];
  if (vm.details) details.push(esc(vm.details));
  if (opts.compact) {
    const errors = vm.issues.filter((i) => i.severity === 'error').length;
    const warnings = vm.issues.length - errors;
    if (errors) details.push(`<span style="color:${STATUS_COLOUR.failed}">${STATUS_SYMBOL.failed} ${errors} ${errors === 1 ? 'error' : 'errors'}</span>`);
    if (warnings) details.push(`<span style="color:${STATUS_COLOUR.warning}">${STATUS_SYMBOL.warning} ${warnings} ${warnings === 1 ? 'warning' : 'warnings'}</span>`);
  } else for (const issue of vm.issues.slice(0, MAX_ISSUES_IN_CELL)) {
    const c = issue.severity === 'error' ? STATUS_COLOUR.failed : STATUS_COLOUR.warning;
    const sym = issue.severity === 'error' ? STATUS_SYMBOL.failed : STATUS_SYMBOL.warning;
    details.push(`<span style="color:${c}">${sym} ${issue.disk ? `${esc(issue.disk)}: ` : ''}${esc(cut(issue.message, MAX_MESSAGE_IN_CELL))}</span>`);
  }
  if (!opts.compact && vm.issues.length > MAX_ISSUES_IN_CELL) details.push(`+${vm.issues.length - MAX_ISSUES_IN_CELL} more (all in the plain-text part)`);
  const v = vm.verification;
  if (v) {
    const c = v.result === 'passed' ? STATUS_COLOUR.success : v.result === 'failed' ? STATUS_COLOUR.failed : STATUS_COLOUR.warning;
    const sym = v.result === 'passed' ? STATUS_SYMBOL.success : v.result === 'failed' ? STATUS_SYMBOL.failed : STATUS_SYMBOL.warning;
    details.push(`<span class="verification" style="color:${c}">${sym} Boot check ${VERIFY_LABEL[v.result]}:</span> ${esc(cut(v.message, MAX_MESSAGE_IN_CELL * 2))}`);
    if (v.screenshotCid && !opts.compact) details.push(`<img src="cid:${esc(v.screenshotCid)}" width="360" alt="Screen of ${esc(vm.name)} at the end of its boot check" style="border:1px solid #d0d7de;max-width:100%">`);
  }
  // Alternate row shading through the bgcolor attribute: short, and honoured by every client.
  const bg = index % 2 ? ' bgcolor="#f6f8fa"' : '';
  const times = `${formatTimeOfDay(vm.startedAt, sessionStart, opts)}–${formatTimeOfDay(vm.endedAt, sessionStart, opts)}`;
  const figures = [times, formatDuration(vm.durationMs), nb(formatBytes(vm.sizeBytes)), `read ${nb(formatBytes(vm.readBytes))}`, `sent ${nb(formatBytes(vm.transferredBytes))}`];
  return `<tr class="vm" valign="top"${bg}><td><b>${esc(vm.name)}</b> <b style="color:${colour}">${STATUS_SYMBOL[vm.status]}&nbsp;${RESULT_LABEL[vm.status]}</b><br><small style="color:${MUTED}">${figures.join(
    ' &middot; ',
  )}</small>${details.length ? `<br>${details.join('<br>')}` : ''}</td></tr>`;
}

const VERIFY_LABEL = {passed: 'passed', warning: 'incomplete', failed: 'FAILED', skipped: 'not run'} as const;

function issueGroupRow(g: IssueGroup): string {
  const advice = adviceFor(g.code, g.firstMessage);
  const colour = g.severity === 'error' ? STATUS_COLOUR.failed : STATUS_COLOUR.warning;
  const sym = g.severity === 'error' ? STATUS_SYMBOL.failed : STATUS_SYMBOL.warning;
  const names = g.occurrences.map((o) => (o.vm ? esc(o.vm) + (o.disk ? ` (${esc(o.disk)})` : '') : esc(o.message)));
  const unique = [...new Set(names)];
  const shown = unique.slice(0, MAX_NAMES_PER_GROUP).join(', ') + (unique.length > MAX_NAMES_PER_GROUP ? `, and ${unique.length - MAX_NAMES_PER_GROUP} more` : '');
  return `<tr class="issue"><td valign="top" style="color:${colour};font-size:14px;padding:6px 8px 6px 0;width:18px">${sym}</td><td style="padding:6px 0;border-bottom:1px solid #eef1f5"><b style="color:${colour}">${esc(
    advice.title,
  )}</b> <span style="color:${MUTED}">&middot; ${shown}</span><br>What to do: ${esc(advice.action)}</td></tr>`;
}

function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : text;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
