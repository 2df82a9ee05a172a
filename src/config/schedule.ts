/**
 * Job schedules: the shapes an administrator picks (daily at, monthly on day N at, every N
 * hours, a cron expression, or none), their cron form, the schedule in words (cronstrue) and the
 * next run times (node-cron 4.6 parses and matches the pattern).
 *
 * Times are the appliance's local time. Pure functions: the scheduler (daemon/scheduler.ts)
 * decides *when* to fire with its own injectable clock; this module only answers "which minutes
 * match" from any starting instant, so tests can ask about 02:00 tomorrow without waiting.
 */
import cronstrue from 'cronstrue';
import {createTask, parse, validateDetailed} from 'node-cron';
import {z} from 'zod';
import {timeOfDay, weekday, WEEKDAYS, whole} from './fields.js';

/** Divisors of 24, so "every N hours" runs at the same hours every day. */
const HOUR_STEPS = [1, 2, 3, 4, 6, 8, 12, 24] as const;

export const scheduleSchema = z.discriminatedUnion(
  'kind',
  [
    z.object({kind: z.literal('none')}),
    z.object({
      kind: z.literal('daily'),
      at: timeOfDay(),
      /** Only on these weekdays; every day when omitted or empty. */
      days: z.array(weekday()).optional(),
    }),
    z.object({
      kind: z.literal('monthly'),
      // Up to 28 so that the job runs in every month, February included.
      day: whole(1, 28),
      at: timeOfDay(),
    }),
    z.object({
      kind: z.literal('hours'),
      every: z.number({error: 'must be one of 1, 2, 3, 4, 6, 8, 12, 24'}).refine((n) => (HOUR_STEPS as readonly number[]).includes(n), {
        error: 'must be one of 1, 2, 3, 4, 6, 8, 12, 24 (hours that divide a day)',
      }),
      /** Minute past the hour (default 0). */
      minute: whole(0, 59).default(0),
    }),
    z.object({
      kind: z.literal('cron'),
      expression: z.string({error: 'must be a cron expression'}).superRefine((expr, ctx) => {
        const problem = cronProblem(expr);
        if (problem) ctx.addIssue({code: 'custom', message: problem});
      }),
    }),
  ],
  {error: "must have kind 'none', 'daily', 'monthly', 'hours' or 'cron'"},
);

export type Schedule = z.output<typeof scheduleSchema>;

/** Why a cron expression is not usable, or undefined when it is (five fields, minute precision). */
export function cronProblem(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 || fields[0] === '') return 'must have five fields: minute hour day-of-month month day-of-week (e.g. "30 22 * * 1-5")';
  const v = validateDetailed(expr.trim());
  if (!v.valid) return v.errors.map((e) => `${e.field} ${e.value === undefined ? '' : `'${e.value}' `}is not valid`).join(', ');
  return undefined;
}

/** The cron form of a schedule (undefined for 'none'). */
export function toCron(s: Schedule): string | undefined {
  switch (s.kind) {
    case 'none':
      return undefined;
    case 'daily': {
      const [h, m] = hm(s.at);
      const days = s.days && s.days.length > 0 ? [...new Set(s.days.map((d) => WEEKDAYS.indexOf(d)))].sort().join(',') : '*';
      return `${m} ${h} * * ${days}`;
    }
    case 'monthly': {
      const [h, m] = hm(s.at);
      return `${m} ${h} ${s.day} * *`;
    }
    case 'hours':
      return s.every === 24 ? `${s.minute} 0 * * *` : `${s.minute} */${s.every} * * *`;
    case 'cron':
      return s.expression.trim().split(/\s+/).join(' ');
  }
}

/** The schedule in words, e.g. "At 22:30, Monday through Friday". */
export function describeSchedule(s: Schedule): string {
  const cron = toCron(s);
  if (!cron) return 'Not scheduled (run manually)';
  return cronstrue.toString(cron, {use24HourTimeFormat: true, verbose: false});
}

/**
 * The next `count` run times strictly after `from` (local time), looking at most `horizonDays`
 * ahead. Candidates come from the pattern's hour and minute lists; node-cron's matcher decides
 * the day-of-month / day-of-week rules, so we never re-implement cron semantics.
 */
export function nextRuns(s: Schedule, from: Date, count: number, horizonDays = 400): Date[] {
  const cron = toCron(s);
  if (!cron || count <= 0) return [];
  const fields = parse(cron);
  const task = createTask(cron, () => {});
  try {
    const out: Date[] = [];
    const day = new Date(from.getFullYear(), from.getMonth(), from.getDate());
    for (let i = 0; i <= horizonDays && out.length < count; i++) {
      const y = day.getFullYear();
      const mo = day.getMonth();
      const d = day.getDate();
      if (fields.month.includes(mo + 1)) {
        for (const h of fields.hour) {
          for (const m of fields.minute) {
            const at = new Date(y, mo, d, h, m, 0, 0);
            // A local time skipped by a DST change normalises to another hour: not a run.
            if (at.getHours() !== h || at.getTime() <= from.getTime()) continue;
            if (task.match(at)) out.push(at);
            if (out.length >= count) break;
          }
          if (out.length >= count) break;
        }
      }
      day.setDate(day.getDate() + 1);
    }
    return out;
  } finally {
    void task.destroy();
  }
}

function hm(at: string): [number, number] {
  const [h, m] = at.split(':').map(Number);
  return [h!, m!];
}
