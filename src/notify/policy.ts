/**
 * Who gets a session report, and whether one is sent at all. Pure functions the daemon calls
 * when a session (or one attempt of it) ends:
 *
 *   const mail = buildSessionMail(report, job.notification, email);
 *   if (mail) await queue.enqueue(mail);
 */
import type {SessionReport} from './model.js';
import {renderSessionReport, type RenderOptions} from './render.js';
import type {EmailSettings, JobNotificationSettings} from './settings.js';
import type {OutgoingMail} from './transport.js';

/**
 * True when this job's settings ask for a mail about this report. With onlyLastAttempt, an
 * attempt that will be retried sends nothing; a success is always final (nothing is retried
 * after it), so it is reported even if the daemon did not mark it as the last attempt.
 */
export function shouldNotify(job: JobNotificationSettings, report: SessionReport): boolean {
  const wanted = report.result === 'success' ? job.onSuccess : report.result === 'warning' ? job.onWarning : job.onFailure;
  if (!wanted) return false;
  if (job.onlyLastAttempt && !report.lastAttempt && report.result !== 'success') return false;
  return true;
}

/** Global recipients then the job's own, each address once (compared without regard to case). */
export function recipientsFor(email: Pick<EmailSettings, 'recipients'>, job: Pick<JobNotificationSettings, 'recipients'>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const address of [...email.recipients, ...job.recipients]) {
    const key = address.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      out.push(address);
    }
  }
  return out;
}

/**
 * The mail to queue for a finished session, or undefined when none should be sent (filtered
 * out by the job's settings, or nobody to send it to).
 */
export function buildSessionMail(
  report: SessionReport,
  job: JobNotificationSettings,
  email: Pick<EmailSettings, 'recipients'>,
  opts: Omit<RenderOptions, 'subjectTemplate'> = {},
): OutgoingMail | undefined {
  if (!shouldNotify(job, report)) return undefined;
  const to = recipientsFor(email, job);
  if (to.length === 0) return undefined;
  const rendered = renderSessionReport(report, {...opts, subjectTemplate: job.subject});
  return {
    to,
    ...rendered,
    headers: {
      'X-Vmbackup-Kind': 'session-report',
      'X-Vmbackup-Job': report.jobId,
      'X-Vmbackup-Session': report.sessionId,
      'X-Vmbackup-Result': report.result,
    },
  };
}
