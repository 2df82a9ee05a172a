/**
 * `vmbackup check`: the appliance's state for a monitoring system, as a Nagios/Icinga/Zabbix
 * check plugin reports it — one status line (with performance data after "|"), more lines for
 * each problem, and the standard exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * Rules, for every enabled job that runs on a schedule (or the one given with --job):
 * - its last good session (success or warning) ended longer ago than --critical-age: CRITICAL;
 *   longer ago than --warning-age, or never: WARNING;
 * - its newest session failed: WARNING (the age rule makes it CRITICAL when it goes on);
 * and for every repository: a health check that found damage or figures that cannot be read,
 * CRITICAL; less free space than the appliance's low-space threshold, WARNING.
 * A daemon that cannot be asked is UNKNOWN.
 */
import {jobOutcomes} from '../api/jobs.js';
import {isUserError} from '../util/errors.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const CHECK = {ok: 0, warning: 1, critical: 2, unknown: 3} as const;
type Level = keyof typeof CHECK;
const LABEL: Record<Level, string> = {ok: 'OK', warning: 'WARNING', critical: 'CRITICAL', unknown: 'UNKNOWN'};

/** "26h", "90m", "2d", "45s" → milliseconds; undefined when it is not such a duration. */
export function parseAge(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}[m[2] as 's' | 'm' | 'h' | 'd'];
}

interface JobRow {
  id: string;
  name: string;
  enabled?: boolean;
  schedule?: {kind: string};
}

interface SessionRow {
  jobId: string;
  state: string;
  endedAt?: string;
  startedAt: string;
}

interface RepoRow {
  name: string;
  freeBytes?: number;
  totalBytes?: number;
  usedBytes?: number;
  error?: string;
  lastHealthCheck?: {at: string; ok: boolean; problems: number};
}

export interface CheckInput {
  now: number;
  jobs: JobRow[];
  sessions: SessionRow[];
  repositories: RepoRow[];
  lowSpacePercent: number;
  warningAgeMs: number;
  criticalAgeMs: number;
  job?: string;
}

/** The verdict and its lines, from what the daemon answered (pure, for tests). */
export function evaluate(c: CheckInput): {level: Level; summary: string; details: string[]; perfdata: string[]} {
  let level: Level = 'ok';
  const raise = (l: Level) => {
    if (CHECK[l] > CHECK[level]) level = l;
  };
  const details: string[] = [];
  const perfdata: string[] = [];
  const jobs = c.jobs.filter((j) => (c.job ? j.id === c.job : j.enabled !== false && j.schedule?.kind !== 'none'));
  if (c.job && jobs.length === 0) return {level: 'unknown', summary: `no job ${c.job}`, details: [], perfdata: []};
  for (const j of jobs) {
    const {last: newest, good} = jobOutcomes(c.sessions, j.id);
    const age = good ? c.now - Date.parse(good.endedAt!) : undefined;
    if (age !== undefined) perfdata.push(`'${j.id}_age'=${Math.round(age / 1000)}s;${Math.round(c.warningAgeMs / 1000)};${Math.round(c.criticalAgeMs / 1000)}`);
    if (age === undefined) {
      raise('warning');
      details.push(`${j.name}: no good backup yet${newest ? ` (last session ${newest.state})` : ''}`);
    } else if (age > c.criticalAgeMs) {
      raise('critical');
      details.push(`${j.name}: last good backup ${hours(age)} ago`);
    } else if (age > c.warningAgeMs) {
      raise('warning');
      details.push(`${j.name}: last good backup ${hours(age)} ago`);
    }
    if (newest && (newest.state === 'failed' || newest.state === 'stopped') && newest !== good) {
      raise('warning');
      details.push(`${j.name}: the last session ${newest.state}`);
    }
  }
  if (!c.job) {
    for (const r of c.repositories) {
      if (r.error) {
        raise('critical');
        details.push(`repository ${r.name}: ${r.error}`);
      }
      if (r.lastHealthCheck && !r.lastHealthCheck.ok) {
        raise('critical');
        details.push(`repository ${r.name}: the health check of ${r.lastHealthCheck.at.slice(0, 16).replace('T', ' ')} found ${r.lastHealthCheck.problems} problem(s)`);
      }
      if (r.freeBytes !== undefined && r.totalBytes) {
        const pct = (r.freeBytes / r.totalBytes) * 100;
        perfdata.push(`'${r.name}_free'=${Math.round(pct)}%;${c.lowSpacePercent};;0;100`);
        if (pct < c.lowSpacePercent) {
          raise('warning');
          details.push(`repository ${r.name}: ${Math.round(pct)} % free`);
        }
      }
    }
  }
  const summary = level === 'ok'
    ? `${jobs.length} job(s) backed up within ${hours(c.warningAgeMs)}${c.job ? '' : `, ${c.repositories.length} repository(ies) healthy`}`
    : `${details.length} problem(s): ${details[0]}`;
  return {level, summary, details, perfdata};
}

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${Math.round(h / 24)}d` : h >= 1 ? `${Math.round(h)}h` : ms >= 60_000 ? `${Math.round(ms / 60_000)}m` : `${Math.round(ms / 1000)}s`;
}

export const check: Command = {
  words: ['check'],
  summary: 'Check the backups for a monitoring system (Nagios/Icinga/Zabbix): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN',
  usage: '[--warning-age 26h] [--critical-age 50h] [--job <id>] [--socket <path>]',
  help: [
    'WARNING when a scheduled job has no good backup (success or warning) newer than --warning-age, when its last',
    'session failed, or when a repository is low on space; CRITICAL past --critical-age, or when a repository',
    'health check found damage. --job checks that job only. With --json the verdict is printed as JSON.',
  ].join('\n'),
  options: {...socketOption, 'warning-age': {type: 'string'}, 'critical-age': {type: 'string'}, job: {type: 'string'}},
  positionals: [0, 0],
  exitCodes: [
    [CHECK.ok, 'OK: every checked job has a recent good backup'],
    [CHECK.warning, 'WARNING: a backup older than --warning-age, a failed last session, or a repository low on space'],
    [CHECK.critical, 'CRITICAL: a backup older than --critical-age, or damage found by a repository health check'],
    [CHECK.unknown, 'UNKNOWN: the daemon cannot be asked, or the options are wrong'],
  ],
  async run(ctx, values) {
    const warningAgeMs = parseAge(typeof values['warning-age'] === 'string' ? values['warning-age'] : '26h');
    const criticalAgeMs = parseAge(typeof values['critical-age'] === 'string' ? values['critical-age'] : '50h');
    if (warningAgeMs === undefined || criticalAgeMs === undefined) {
      ctx.out.result({status: 'UNKNOWN', summary: 'bad age'}, () => 'VMBACKUP UNKNOWN - --warning-age and --critical-age take a number with s, m, h or d, e.g. 26h');
      return CHECK.unknown;
    }
    try {
      const input = await withDaemon(ctx, values, async (d) => {
        const [jobs, sessions, status, settings] = await Promise.all([
          d.list<JobRow>('jobs'), d.sessions({limit: 500}), d.status(), d.settings(),
        ]);
        return {jobs, sessions, repositories: status.repositories, lowSpacePercent: settings.lowSpacePercent ?? 10};
      });
      const v = evaluate({...input, now: Date.now(), warningAgeMs, criticalAgeMs, job: typeof values.job === 'string' ? values.job : undefined});
      ctx.out.result({status: LABEL[v.level], summary: v.summary, details: v.details, perfdata: v.perfdata}, () =>
        [`VMBACKUP ${LABEL[v.level]} - ${v.summary}${v.perfdata.length ? ` | ${v.perfdata.join(' ')}` : ''}`, ...v.details.slice(1)].join('\n'),
      );
      return CHECK[v.level];
    } catch (err) {
      const msg = isUserError(err) ? err.message : String(err);
      ctx.out.result({status: 'UNKNOWN', summary: msg}, () => `VMBACKUP UNKNOWN - ${msg}`);
      return CHECK.unknown;
    }
  },
};
