/**
 * Notification settings: the mail server (global), per-job notification choices, and the daily
 * summary. These are zod schemas so that the config store, the console and the control API
 * validate the same way; parse errors become a UserError whose message names the bad field
 * (e.g. "smtp port: must be a whole number from 1 to 65535").
 *
 * Secrets: `auth.password` lives only in these settings (the config store keeps them 0600); it is
 * never copied into a spooled message, a log line or an error message.
 */
import {z} from 'zod';
import {ExitCode, UserError} from '../util/errors.js';
import {DEFAULT_SUBJECT_TEMPLATE} from './subject.js';

/**
 * A bare address (no display name). Deliberately lenient about the domain, so that
 * root@localhost works with sendmail, but strict about characters that could break a header.
 */
const ADDRESS = /^[^\s@<>(),;:"\\[\]]+@[^\s@<>(),;:"\\[\]]+$/;

const address = (what: string) =>
  z
    .string({error: `${what}: an email address is required`})
    .trim()
    .regex(ADDRESS, {error: `${what}: not a valid email address (expected name@example.com)`});

const recipients = (what: string) => z.array(address(what), {error: `${what}: must be a list of email addresses`});

export const SMTP_SECURITY = ['starttls', 'tls', 'none'] as const;
export type SmtpSecurity = (typeof SMTP_SECURITY)[number];

/** The usual port for each kind of security, used when `port` is left out. */
export const DEFAULT_PORT: Record<SmtpSecurity, number> = {starttls: 587, tls: 465, none: 25};

const common = {
  /** The From address of every mail. */
  from: address('sender'),
  /** Display name shown with the From address. */
  fromName: z.string().trim().max(200, {error: 'sender name: at most 200 characters'}).optional(),
  /** Recipients of every job's reports, in addition to the job's own. */
  recipients: recipients('recipient').default([]),
};

export const smtpSettingsSchema = z.object({
  transport: z.literal('smtp'),
  host: z
    .string({error: 'smtp host: a host name or IP address is required'})
    .trim()
    .min(1, {error: 'smtp host: a host name or IP address is required'})
    .regex(/^[^\s/:]+$|^\[[0-9a-fA-F:.]+\]$|^[0-9a-fA-F:]+$/, {error: 'smtp host: not a host name or IP address (no spaces, slashes or URL)'}),
  port: z
    .number({error: 'smtp port: must be a whole number from 1 to 65535'})
    .int({error: 'smtp port: must be a whole number from 1 to 65535'})
    .min(1, {error: 'smtp port: must be a whole number from 1 to 65535'})
    .max(65535, {error: 'smtp port: must be a whole number from 1 to 65535'})
    .optional(),
  security: z.enum(SMTP_SECURITY, {error: "smtp security: must be 'starttls', 'tls' or 'none'"}).default('starttls'),
  auth: z
    .object({
      user: z.string({error: 'smtp user: required when authentication is set'}).min(1, {error: 'smtp user: required when authentication is set'}),
      password: z.string({error: 'smtp password: required when authentication is set'}),
    })
    .optional(),
  tls: z
    .object({
      /** Extra CA certificate(s), PEM, for a server with a private CA. */
      ca: z
        .string()
        .refine((pem) => pem.includes('-----BEGIN CERTIFICATE-----'), {error: 'smtp tls ca: must be a PEM certificate (-----BEGIN CERTIFICATE-----)'})
        .optional(),
      /** Accept any certificate (self-signed, wrong name, expired). Off unless chosen explicitly. */
      acceptAnyCertificate: z.boolean({error: 'smtp tls acceptAnyCertificate: must be true or false'}).default(false),
    })
    .default({acceptAnyCertificate: false}),
  timeoutSeconds: z.number().int().min(1, {error: 'smtp timeoutSeconds: at least 1'}).max(600, {error: 'smtp timeoutSeconds: at most 600'}).default(30),
  /**
   * Log in over a connection without TLS (security 'none'): the password crosses the network in
   * clear text, so it is refused unless the administrator says so here.
   */
  allowPlaintextAuth: z.boolean({error: 'smtp allowPlaintextAuth: must be true or false'}).default(false),
  ...common,
}).refine((s) => s.security !== 'none' || s.auth === undefined || s.allowPlaintextAuth, {
  error:
    "smtp security: 'none' sends the password in clear text; choose 'starttls' or 'tls', or allow login without TLS explicitly (allowPlaintextAuth) for a relay on a trusted network",
  path: ['security'],
});

/**
 * The program the sendmail transport runs: /usr/sbin/sendmail, or what root sets in the daemon's
 * environment (VMBACKUP_SENDMAIL). Never from the settings a caller sends: whoever reaches the
 * control API must not be able to make the daemon, which runs as root, run a program of their
 * choosing (docs/security.md).
 */
export function sendmailProgram(): string {
  const env = process.env['VMBACKUP_SENDMAIL'];
  return env && env.startsWith('/') ? env : '/usr/sbin/sendmail';
}

export const sendmailSettingsSchema = z.object({
  transport: z.literal('sendmail'),
  /** Only accepted when it names the program the daemon uses anyway (older settings files). */
  path: z
    .string()
    .optional()
    .refine((p) => p === undefined || p.trim() === sendmailProgram(), {
      error: 'sendmail path: cannot be set through the settings; the appliance runs /usr/sbin/sendmail (root can name another program with VMBACKUP_SENDMAIL in the daemon\'s environment)',
    })
    .transform(() => sendmailProgram()),
  ...common,
});

export const emailSettingsSchema = z.discriminatedUnion('transport', [smtpSettingsSchema, sendmailSettingsSchema], {
  error: "email transport: must be 'smtp' or 'sendmail'",
});

export type SmtpSettings = z.output<typeof smtpSettingsSchema>;
export type SendmailSettings = z.output<typeof sendmailSettingsSchema>;
export type EmailSettings = z.output<typeof emailSettingsSchema>;
export type EmailSettingsInput = z.input<typeof emailSettingsSchema>;

export const jobNotificationSchema = z.object({
  /** Added to the global recipients for this job's reports. */
  recipients: recipients('job recipient').default([]),
  onSuccess: z.boolean({error: 'notify on success: must be true or false'}).default(true),
  onWarning: z.boolean({error: 'notify on warning: must be true or false'}).default(true),
  onFailure: z.boolean({error: 'notify on failure: must be true or false'}).default(true),
  /** Send nothing for an attempt that will be retried; report only the final outcome. */
  onlyLastAttempt: z.boolean({error: 'only after the last retry: must be true or false'}).default(true),
  /** Webhooks (ids) that get this job's reports, besides those set for every job. */
  webhooks: z.array(z.string({error: 'job webhooks: must be webhook ids'}), {error: 'job webhooks: must be a list of webhook ids'}).default([]),
  subject: z
    .string()
    .max(500, {error: 'subject template: at most 500 characters'})
    .refine((s) => s.trim().length > 0, {error: 'subject template: must not be empty'})
    .default(DEFAULT_SUBJECT_TEMPLATE),
});

export type JobNotificationSettings = z.output<typeof jobNotificationSchema>;

export const dailySummarySchema = z.object({
  enabled: z.boolean({error: 'daily summary enabled: must be true or false'}).default(false),
  /** Local time of day, 24-hour "HH:MM". */
  time: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, {error: 'daily summary time: must be HH:MM in 24-hour time, e.g. 07:30'})
    .default('08:00'),
});

export type DailySummarySettings = z.output<typeof dailySummarySchema>;

/** Validates with `schema` and returns the parsed value, or throws a UserError naming every bad field. */
export function parseSettings<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue));
  throw new UserError(`Invalid ${what}: ${[...new Set(problems)].join('; ')}.`, {
    hint: 'Correct the field(s) named above and save again.',
    exitCode: ExitCode.invalidInput,
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // Our messages start with the field's name; zod's own (unknown keys, wrong union) get the path.
  const path = issue.path.map(String).join('.');
  if (/^[a-z][a-zA-Z ]*:/.test(issue.message)) {
    // Array items: say which one ("recipient 2: not a valid email address").
    const index = issue.path.find((p) => typeof p === 'number');
    return index === undefined ? issue.message : issue.message.replace(/^([^:]+):/, `$1 ${index + 1}:`);
  }
  return path ? `${path}: ${issue.message}` : issue.message;
}

export const parseEmailSettings = (input: unknown): EmailSettings => parseSettings(emailSettingsSchema, input, 'email settings');
export const parseJobNotification = (input: unknown): JobNotificationSettings =>
  parseSettings(jobNotificationSchema, input ?? {}, 'job notification settings');
export const parseDailySummary = (input: unknown): DailySummarySettings => parseSettings(dailySummarySchema, input ?? {}, 'daily summary settings');

/** The port to connect to: the configured one, or the usual one for the security mode. */
export function smtpPort(s: SmtpSettings): number {
  return s.port ?? DEFAULT_PORT[s.security];
}
