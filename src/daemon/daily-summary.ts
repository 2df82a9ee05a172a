/**
 * The optional daily summary mail (off by default): once a day, at the local time set by the
 * administrator, every job's last result and next run and every repository's free space go to
 * the global recipients, through the same mail queue as the session reports.
 *
 * The settings {enabled, time "HH:MM"} are kept in daily-summary.json in the state directory
 * (0600, durable like the configuration) and are read and written through GET/PUT /settings as
 * `dailySummary`; a bad value is refused with the field named (settings.dailySummary.time) and
 * nothing is changed. summaryInput() is pure; DailySummary holds the settings and the sending.
 */
import {join} from 'node:path';
import type {Low} from 'lowdb';
import {ConfigError, fieldPath} from '../config/parse.js';
import type {JobConfig} from '../config/schema.js';
import {openDocument} from '../config/store.js';
import type {MailQueue} from '../notify/mail-queue.js';
import type {DailySummaryInput} from '../notify/model.js';
import {renderDailySummary} from '../notify/daily-summary.js';
import {dailySummarySchema, type DailySummarySettings, type EmailSettings} from '../notify/settings.js';
import type {DaemonLog} from './log.js';
import type {SessionRecord} from '../api/session-model.js';

export const DAILY_SUMMARY_FILE = 'daily-summary.json';
export const DEFAULT_DAILY_SUMMARY: DailySummarySettings = {enabled: false, time: '08:00'};

type SessionSummary = Omit<SessionRecord, 'log'>;

/**
 * Validates a (partial) change of the daily summary settings against the current ones. Errors
 * name the field as the control API sees it: settings.dailySummary.<field>.
 */
export function parseDailySummaryChange(input: unknown, current: DailySummarySettings): DailySummarySettings {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError([{field: 'settings.dailySummary', message: 'must be an object such as {"enabled": true, "time": "07:30"}'}]);
  }
  const result = dailySummarySchema.strict().safeParse({...current, ...input});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      field: fieldPath('settings.dailySummary', issue.code === 'unrecognized_keys' ? [issue.keys[0] ?? ''] : issue.path),
      // notify's messages start with their own field name ("daily summary time: …"): the field is named already.
      message: issue.code === 'unrecognized_keys' ? 'is not a daily summary setting (enabled, time)' : issue.message.replace(/^[a-z][a-zA-Z ]*: /, ''),
    })),
  );
}

/** A cron expression for every day at "HH:MM" (local time). */
export function dailyCron(time: string): string {
  const [h, m] = time.split(':');
  return `${Number(m)} ${Number(h)} * * *`;
}

/** The renderer's input from the daemon's state. Pure. */
export function summaryInput(o: {
  jobs: readonly JobConfig[];
  /** Finished and running sessions, any order. */
  sessions: readonly SessionSummary[];
  nextRun: (jobId: string) => string | undefined;
  repositories: readonly {name: string; freeBytes: number; totalBytes: number}[];
  hostname: string;
  now: Date;
}): DailySummaryInput {
  const newest = new Map<string, SessionSummary>();
  for (const s of o.sessions) {
    const cur = newest.get(s.jobId);
    if (!cur || cur.startedAt < s.startedAt) newest.set(s.jobId, s);
  }
  return {
    jobs: o.jobs.map((j) => {
      const last = newest.get(j.id);
      // A stopped session is reported as failed, as in the session report: some VMs have no new restore point.
      const lastResult = !last ? 'never' : last.state === 'running' ? 'running' : last.state === 'success' || last.state === 'warning' ? last.state : 'failed';
      return {name: j.name, lastResult, lastRun: last?.startedAt, nextRun: j.enabled ? o.nextRun(j.id) : undefined};
    }),
    repositories: o.repositories.map((r) => ({name: r.name, freeBytes: r.freeBytes, totalBytes: r.totalBytes})),
    hostname: o.hostname,
    generatedAt: o.now.toISOString(),
  };
}

export class DailySummary {
  private constructor(
    private readonly doc: Low<DailySummarySettings>,
    private readonly deps: {mail?: MailQueue; email: () => EmailSettings | undefined; log: DaemonLog},
  ) {}

  static async open(stateDir: string, deps: DailySummary['deps']): Promise<DailySummary> {
    const doc = await openDocument<DailySummarySettings>(join(stateDir, DAILY_SUMMARY_FILE), {...DEFAULT_DAILY_SUMMARY});
    return new DailySummary(doc, deps);
  }

  get settings(): DailySummarySettings {
    return {...DEFAULT_DAILY_SUMMARY, ...this.doc.data};
  }

  /** Saves an already validated value (see parseDailySummaryChange). */
  async save(value: DailySummarySettings): Promise<DailySummarySettings> {
    const previous = this.doc.data;
    this.doc.data = value;
    try {
      await this.doc.write();
    } catch (err) {
      this.doc.data = previous;
      throw err;
    }
    return this.settings;
  }

  /**
   * Queues the summary for the global recipients; returns what was done, in words. Nothing is
   * queued when email is not set up or has no global recipient (said in the log, as a warning).
   */
  async send(input: DailySummaryInput): Promise<{queued: boolean; id?: string; to: string[]; reason?: string}> {
    const email = this.deps.email();
    const reason = !email || !this.deps.mail ? 'email is not set up' : email.recipients.length === 0 ? 'the email settings have no global recipient' : undefined;
    if (reason) {
      this.deps.log('warn', `Daily summary not sent: ${reason}.`);
      return {queued: false, to: [], reason};
    }
    const mail = renderDailySummary(input);
    const to = email!.recipients;
    const id = await this.deps.mail!.enqueue({to, subject: mail.subject, text: mail.text, html: mail.html, headers: {'X-Vmbackup-Kind': 'daily-summary'}});
    this.deps.log('info', `Daily summary queued for ${to.length} recipient(s): ${input.jobs.length} job(s), ${input.repositories.length} repository(ies)`);
    return {queued: true, id, to};
  }
}
