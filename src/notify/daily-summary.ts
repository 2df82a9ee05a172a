/**
 * The optional daily summary: one mail a day listing every job's last result and next run, and
 * the free space of every repository. Pure, like the session report; the daemon calls it at
 * the time set in DailySummarySettings and queues the result.
 */
import {escapeHtml as esc, fit, formatBytes, formatDateTime, formatPercent, oneLine, wrap, type TimeOptions} from './format.js';
import {BORDER, documentShell, FONT, footer, headerBar, MUTED, nb, section, spaceBar, STATUS_COLOUR, th} from './html-parts.js';
import type {DailySummaryInput, RenderedMail, SessionResult} from './model.js';
import {isLowOnSpace, RESULT_LABEL, STATUS_SYMBOL} from './summary.js';
import {TEXT_WIDTH} from './report-text.js';

type JobResult = DailySummaryInput['jobs'][number]['lastResult'];

function resultLabel(r: JobResult): string {
  if (r === 'success' || r === 'warning' || r === 'failed') return `${STATUS_SYMBOL[r]} ${RESULT_LABEL[r]}`;
  return r === 'running' ? 'Running' : 'Never run';
}

/** The summary's own result: the worst of the jobs' results, and a full repository counts as a warning. */
function overall(input: DailySummaryInput): SessionResult {
  if (input.jobs.some((j) => j.lastResult === 'failed')) return 'failed';
  if (input.jobs.some((j) => j.lastResult === 'warning') || input.repositories.some((r) => isLowOnSpace(r.freeBytes, r.totalBytes))) return 'warning';
  return 'success';
}

export function renderDailySummary(input: DailySummaryInput, opts: TimeOptions = {}): RenderedMail {
  const result = overall(input);
  const failed = input.jobs.filter((j) => j.lastResult === 'failed').length;
  const warned = input.jobs.filter((j) => j.lastResult === 'warning').length;
  const low = input.repositories.filter((r) => isLowOnSpace(r.freeBytes, r.totalBytes)).length;
  const problems = [failed && `${failed} failed`, warned && `${warned} with warnings`, low && `${low} repository low on space`].filter(Boolean).join(', ');
  const host = oneLine(input.hostname);
  const subject = `[${RESULT_LABEL[result]}] vmbackup daily summary for ${host}: ${input.jobs.length} ${input.jobs.length === 1 ? 'job' : 'jobs'}${
    problems ? `, ${problems}` : ''
  }`;
  const when = formatDateTime(input.generatedAt, opts);

  const jobRows = input.jobs
    .map((j, i) => {
      const colour = j.lastResult === 'success' || j.lastResult === 'warning' || j.lastResult === 'failed' ? STATUS_COLOUR[j.lastResult] : MUTED;
      return `<tr class="job"${i % 2 ? ' bgcolor="#f6f8fa"' : ''}><td><b>${esc(j.name)}</b></td><td nowrap style="color:${colour}"><b>${esc(
        resultLabel(j.lastResult),
      )}</b></td><td>${formatDateTime(j.lastRun, opts)}</td><td>${formatDateTime(j.nextRun, opts)}</td></tr>`;
    })
    .join('\n');
  const repoRows = input.repositories
    .map((r) => {
      const isLow = isLowOnSpace(r.freeBytes, r.totalBytes);
      return `<tr class="repository"><td><b>${esc(r.name)}</b></td><td align="right"${isLow ? ` style="color:${STATUS_COLOUR.failed}"` : ''}>${nb(
        formatBytes(r.freeBytes),
      )}</td><td align="right">${nb(formatBytes(r.totalBytes))}</td><td align="right"${isLow ? ` style="color:${STATUS_COLOUR.failed}"` : ''}>${formatPercent(
        r.freeBytes,
        r.totalBytes,
      )}${isLow ? ' &mdash; low on space' : ''}</td><td valign="middle">${spaceBar(r.freeBytes, r.totalBytes, isLow, 140)}</td></tr>`;
    })
    .join('\n');
  const table = (id: string, head: string, rows: string, empty: string, cols: number) =>
    `<table id="${id}" width="100%" cellpadding="5" cellspacing="0" style="${FONT};font-size:12px;color:#1f2937;border-collapse:collapse">
<thead><tr>${head}</tr></thead><tbody>
${rows || `<tr><td colspan="${cols}" style="color:${MUTED}">${empty}</td></tr>`}
</tbody></table>`;

  const html = documentShell(subject, [
    headerBar(result, {caption: 'Daily summary', title: host, right: RESULT_LABEL[result], rightSub: problems || 'all jobs succeeded'}),
    `<tr><td style="padding:10px 20px;border-bottom:1px solid ${BORDER};color:${MUTED};font-size:13px">As of ${esc(when)}</td></tr>`,
    section('Jobs', table('jobs', `${th('Job')}${th('Last result')}${th('Last run')}${th('Next run')}`, jobRows, 'No jobs are set up.', 4)),
    section('Repositories', table('repositories', `${th('Repository')}${th('Free', true)}${th('Size', true)}${th('Free %', true)}${th('Used')}`, repoRows, 'No repositories are set up.', 5)),
    footer(`Sent by vmbackup on <b>${esc(host)}</b>`),
  ]);

  const out: string[] = [...wrap(subject, TEXT_WIDTH), '='.repeat(TEXT_WIDTH), `As of ${when}`, '', 'Jobs', '-'.repeat(TEXT_WIDTH)];
  out.push(`${fit('Job', 28)} ${fit('Last result', 11)} ${fit('Last run', 19)} Next run`);
  for (const j of input.jobs) {
    const r = j.lastResult === 'success' || j.lastResult === 'warning' || j.lastResult === 'failed' ? RESULT_LABEL[j.lastResult] : resultLabel(j.lastResult);
    out.push(`${fit(oneLine(j.name), 28)} ${fit(r, 11)} ${fit(formatDateTime(j.lastRun, opts), 19)} ${formatDateTime(j.nextRun, opts)}`);
  }
  if (input.jobs.length === 0) out.push('No jobs are set up.');
  out.push('', 'Repositories', '-'.repeat(TEXT_WIDTH));
  for (const r of input.repositories) {
    const isLow = isLowOnSpace(r.freeBytes, r.totalBytes) ? ' - LOW ON SPACE' : '';
    out.push(
      ...wrap(`${oneLine(r.name)}: ${formatBytes(r.freeBytes)} free of ${formatBytes(r.totalBytes)} (${formatPercent(r.freeBytes, r.totalBytes)})${isLow}`, TEXT_WIDTH),
    );
  }
  if (input.repositories.length === 0) out.push('No repositories are set up.');
  out.push('', ...wrap(`Sent by vmbackup on ${host}`, TEXT_WIDTH));
  return {subject, html, text: out.join('\n') + '\n'};
}
