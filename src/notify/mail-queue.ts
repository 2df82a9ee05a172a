/**
 * The mail queue: a DeliveryQueue (delivery-queue.ts: durable spool, backoff, give up after
 * maxAgeMs) of outgoing mails with one target, the mail server.
 *
 * - A failure that concerns the server (connection, TLS, login) pauses the whole queue until the
 *   backoff expires; one that concerns a single message (a refused recipient) only delays it.
 * - Settings are read at each attempt, so a corrected password applies to messages already
 *   queued; nothing secret is stored with them.
 */
import {explainMailError} from './mail-errors.js';
import type {EmailSettings} from './settings.js';
import {sendMail, type OutgoingMail, type SendResult} from './transport.js';
import type {Clock} from './clock.js';
import {DeliveryQueue, type DeliveryOutcome, type DeliveryQueueStatus} from './delivery-queue.js';
import {UserError} from '../util/errors.js';

export interface MailQueueOptions {
  spoolDir: string;
  /** The current email settings, read at every attempt; undefined when email is not set up. */
  settings: () => EmailSettings | undefined | Promise<EmailSettings | undefined>;
  clock?: Clock;
  /** First retry delay; doubles with each failure up to maxDelayMs. Default 30 s. */
  initialDelayMs?: number;
  /** Longest delay between two attempts. Default 1 hour. */
  maxDelayMs?: number;
  /** Give a message up after this long in the queue. Default 7 days. */
  maxAgeMs?: number;
  /** The delivery function; default: nodemailer through sendMail(). */
  send?: (settings: EmailSettings, mail: OutgoingMail) => Promise<SendResult>;
  /** Where to write one line per delivery event (no addresses' contents, no secrets). */
  log?: (line: string) => void;
}

export type MailQueueStatus = DeliveryQueueStatus;

/** nodemailer codes for failures of one message rather than of the server or the connection. */
const MESSAGE_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

export class MailQueue extends DeliveryQueue<OutgoingMail> {
  constructor(options: MailQueueOptions) {
    const send = options.send ?? sendMail;
    super({
      ...options,
      kind: 'mail',
      spoolName: 'the mail spool',
      valid: (m): m is OutgoingMail => typeof m === 'object' && m !== null && Array.isArray((m as OutgoingMail).to) && typeof (m as OutgoingMail).subject === 'string',
      target: () => 'smtp',
      describe: (mail) => `for ${mail.to.length} recipient(s)`,
      deliver: (mail) => deliverMail(options.settings, send, mail),
    });
  }
}

async function deliverMail(
  readSettings: MailQueueOptions['settings'],
  send: NonNullable<MailQueueOptions['send']>,
  mail: OutgoingMail,
): Promise<DeliveryOutcome> {
  let settings: EmailSettings | undefined;
  try {
    settings = await readSettings();
  } catch (err) {
    // The config store failed: back off like a server failure instead of spinning.
    const error =
      err instanceof UserError
        ? err
        : new UserError(`The email settings could not be read: ${err instanceof Error ? err.message : String(err)}`, {hint: 'Check the email settings in the configuration.'});
    return {ok: false, scope: 'target', error};
  }
  if (!settings) {
    return {
      ok: false,
      scope: 'target',
      error: new UserError('Email is not set up, so reports cannot be sent.', {hint: 'Configure the mail server in the email settings; queued reports are sent then.'}),
    };
  }
  try {
    const result = await send(settings, mail);
    const warning =
      result.rejected.length > 0
        ? new UserError(`The mail server refused these recipients: ${result.rejected.join(', ')}; the others received the report.`, {
            hint: 'Check those addresses, and that the server relays to their domain for this appliance.',
          })
        : undefined;
    return {ok: true, detail: result.response, warning};
  } catch (err) {
    return {ok: false, scope: MESSAGE_ERRORS.has((err as {code?: string}).code ?? '') ? 'message' : 'target', error: explainMailError(err, settings)};
  }
}
