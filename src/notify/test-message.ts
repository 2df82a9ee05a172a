/**
 * The "Send test message" button: sends one short mail now, through the same transport the
 * reports use, and turns any failure into a UserError that says what the server answered and
 * what to do. Unlike report delivery (mail-queue.ts) this is synchronous: the administrator is
 * waiting for the answer.
 */
import {ExitCode, UserError} from '../util/errors.js';
import {explainMailError} from './mail-errors.js';
import type {EmailSettings} from './settings.js';
import {smtpPort} from './settings.js';
import {sendMail, type SendResult} from './transport.js';

export interface TestMessageOptions {
  /** Recipients; default: the global recipients in the settings. */
  to?: string[];
  /** Shown in the message so that the recipient knows which appliance sent it. */
  hostname?: string;
  appVersion?: string;
  /** For the message text; defaults to the current time. */
  now?: Date;
}

export async function sendTestMessage(settings: EmailSettings, opts: TestMessageOptions = {}): Promise<SendResult> {
  const to = opts.to ?? settings.recipients;
  if (to.length === 0) {
    throw new UserError('There is no recipient for the test message.', {
      hint: 'Add at least one global recipient in the email settings, or give an address to send the test to.',
      exitCode: ExitCode.invalidInput,
    });
  }
  const via = settings.transport === 'smtp' ? `SMTP ${settings.host}:${smtpPort(settings)} (${settings.security})` : `sendmail (${settings.path})`;
  const host = opts.hostname ?? 'the vmbackup appliance';
  const text = [
    `This is a test message from vmbackup${opts.appVersion ? ` ${opts.appVersion}` : ''} on ${host}.`,
    '',
    `Sent at ${(opts.now ?? new Date()).toISOString()} via ${via}.`,
    'If you can read this, backup session reports will reach you too.',
    '',
  ].join('\n');
  let result: SendResult;
  try {
    result = await sendMail(settings, {to, subject: `vmbackup test message from ${host}`, text, headers: {'X-Vmbackup-Kind': 'test'}});
  } catch (err) {
    throw explainMailError(err, settings);
  }
  if (result.rejected.length > 0) {
    throw new UserError(`The mail server accepted the test message but refused these recipients: ${result.rejected.join(', ')}.`, {
      hint: 'Check those addresses, and that the server relays to their domain for this appliance.',
      exitCode: ExitCode.invalidInput,
    });
  }
  return result;
}
