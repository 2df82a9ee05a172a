/**
 * The dashboard's job lines: name, last result (symbol + word), last run, next run, fitted to
 * the width. Pure, and computed once per load (not per progress event): with hundreds of jobs
 * the next-run search is the costly part.
 */
import type {JobConfig} from '../../../config/schema.js';
import {nextRuns} from '../../../config/schedule.js';
import type {SessionSummary} from '../../api.js';
import {SYMBOL, toneOf, type Tone} from '../../components/status/status.js';
import {cell, fitColumns, tableLines, type Column} from '../../components/table/layout.js';
import {when} from '../../format.js';

export const JOB_COLUMNS: Column[] = [
  {title: 'Job', width: 26, flex: true},
  {title: 'Last result', width: 12},
  {title: 'Last run', width: 16},
  {title: 'Next run', width: 16},
];

export const jobHeader = (width: number) => tableLines(JOB_COLUMNS, [], width)[0]!;

export function jobRows(jobs: readonly JobConfig[], sessions: readonly SessionSummary[], running: readonly SessionSummary[], width: number, now: Date): {value: string; label: string; tone: Tone}[] {
  const last = new Map<string, SessionSummary>();
  for (const s of sessions) {
    if (s.state === 'running') continue;
    const cur = last.get(s.jobId);
    if (!cur || cur.startedAt < s.startedAt) last.set(s.jobId, s);
  }
  const busy = new Set(running.map((s) => s.jobId));
  const w = fitColumns(JOB_COLUMNS, width);
  return jobs.map((j) => {
    const l = last.get(j.id);
    const tone: Tone = busy.has(j.id) ? 'running' : toneOf(l?.state);
    const result = busy.has(j.id) ? 'running' : (l?.state ?? 'never run');
    const next = j.enabled ? nextRuns(j.schedule, now, 1)[0] : undefined;
    return {
      value: j.id,
      label: [cell(j.name, w[0]!), cell(`${SYMBOL[tone]} ${result}`, w[1]!), cell(when(l?.startedAt), w[2]!), cell(j.enabled ? (next ? when(next) : 'manual') : 'disabled', w[3]!)].join(' '),
      tone,
    };
  });
}
