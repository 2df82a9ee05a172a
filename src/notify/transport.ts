/**
 * Thin adapter over nodemailer: turns EmailSettings into a transport and sends one message.
 *
 * SMTP security modes: 'tls' is implicit TLS from the first byte (port 465); 'starttls' upgrades
 * a plain connection and *requires* the upgrade (requireTLS), so a server or a man in the middle
 * that hides STARTTLS cannot downgrade us to plain text; 'none' never encrypts (ignoreTLS), for a
 * local relay only. Certificates are verified unless acceptAnyCertificate is set explicitly.
 */
import nodemailer, {type Transporter} from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type SendmailTransport from 'nodemailer/lib/sendmail-transport/index.js';
import type {EmailSettings, SmtpSettings} from './settings.js';
import {smtpPort} from './settings.js';

/** A message ready for the wire, without the sender (that comes from the settings at send time). */
export interface OutgoingMail {
  to: string[];
  subject: string;
  text: string;
  html?: string;
  /** Extra headers, e.g. X-Vmbackup-Session, so that mail rules can sort reports. */
  headers?: Record<string, string>;
  /** Inline images the HTML part shows (restore verification screenshots), base64 so the spool stays JSON. */
  attachments?: MailAttachment[];
}

export interface MailAttachment {
  filename: string;
  contentType: 'image/png';
  /** The HTML part's `cid:` reference. */
  cid: string;
  contentBase64: string;
}

export interface SendResult {
  accepted: string[];
  rejected: string[];
  /** The server's last answer, e.g. "250 2.0.0 Ok: queued as 4XyZ". */
  response: string;
}

export function smtpTransportOptions(s: SmtpSettings): SMTPTransport.Options {
  const timeout = s.timeoutSeconds * 1000;
  return {
    host: s.host,
    port: smtpPort(s),
    secure: s.security === 'tls',
    requireTLS: s.security === 'starttls',
    ignoreTLS: s.security === 'none',
    auth: s.auth ? {user: s.auth.user, pass: s.auth.password} : undefined,
    tls: {
      rejectUnauthorized: !s.tls.acceptAnyCertificate,
      ca: s.tls.ca ? [s.tls.ca] : undefined,
      minVersion: 'TLSv1.2',
    },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // nodemailer's logger would print the AUTH exchange; it stays off.
    logger: false,
    debug: false,
  };
}

export function sendmailTransportOptions(path: string): SendmailTransport.Options {
  return {sendmail: true, path, newline: 'unix'};
}

export function createMailTransport(settings: EmailSettings): Transporter {
  return settings.transport === 'smtp'
    ? nodemailer.createTransport(smtpTransportOptions(settings))
    : nodemailer.createTransport(sendmailTransportOptions(settings.path));
}

/** Sends one message; rejects with nodemailer's error (explain it with explainMailError). */
export async function sendMail(settings: EmailSettings, mail: OutgoingMail): Promise<SendResult> {
  const transport = createMailTransport(settings);
  try {
    const info = await transport.sendMail({
      from: settings.fromName ? {name: settings.fromName, address: settings.from} : settings.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      headers: mail.headers,
      attachments: mail.attachments?.map((a) => ({filename: a.filename, contentType: a.contentType, cid: a.cid, content: a.contentBase64, encoding: 'base64'})),
    });
    const addr = (list: unknown[] | undefined) => (list ?? []).map((a) => (typeof a === 'string' ? a : (a as {address: string}).address));
    return {accepted: addr(info.accepted), rejected: addr(info.rejected), response: String(info.response ?? '')};
  } finally {
    transport.close();
  }
}
