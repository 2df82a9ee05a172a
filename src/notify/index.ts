/**
 * The notify layer's public API: what the daemon, the control API and the console import.
 * Everything else in src/notify/ is internal and may change.
 *
 * Typical use by the daemon:
 *   const queue = new MailQueue({spoolDir: '/var/lib/vmbackup/mail', settings: () => config.email});
 *   await queue.start();                                   // sends what a previous run left
 *   const mail = buildSessionMail(report, job.notification, config.email);
 *   if (mail) await queue.enqueue(mail);                   // never throws, returns at once
 *   queue.status();                                        // for the console
 */
export type {
  Bottleneck,
  DailySummaryInput,
  Issue,
  IssueSeverity,
  RenderedMail,
  RepositorySpace,
  SessionReport,
  SessionResult,
  SessionTotals,
  VmReport,
  VmStatus,
} from './model.js';
export {renderSessionReport, type RenderOptions} from './render.js';
export {renderDailySummary} from './daily-summary.js';
export {DEFAULT_SUBJECT_TEMPLATE, SUBJECT_VARIABLES, expandSubject} from './subject.js';
export {adviceFor, KNOWN_ISSUE_CODES, type Advice} from './advice.js';
export {buildSessionMail, recipientsFor, shouldNotify} from './policy.js';
export {
  DEFAULT_PORT,
  SMTP_SECURITY,
  dailySummarySchema,
  emailSettingsSchema,
  jobNotificationSchema,
  parseDailySummary,
  parseEmailSettings,
  parseJobNotification,
  sendmailSettingsSchema,
  smtpPort,
  smtpSettingsSchema,
  type DailySummarySettings,
  type EmailSettings,
  type EmailSettingsInput,
  type JobNotificationSettings,
  type SendmailSettings,
  type SmtpSecurity,
  type SmtpSettings,
} from './settings.js';
export {sendTestMessage, type TestMessageOptions} from './test-message.js';
export {explainMailError} from './mail-errors.js';
export {sendMail, type OutgoingMail, type SendResult} from './transport.js';
export {MailQueue, type MailQueueOptions, type MailQueueStatus} from './mail-queue.js';
export {ManualClock, systemClock, type Clock, type Timer} from './clock.js';
