/**
 * Explains a failed delivery in words an administrator understands, with what to do.
 *
 * nodemailer reports failures with a `code` (EAUTH, EENVELOPE, ETLS, ESOCKET, EDNS, ETIMEDOUT,
 * ...), often the server's `responseCode` and `response`, and the SMTP `command` that failed;
 * TLS failures arrive as ESOCKET carrying OpenSSL's message. The mapping below was worked out
 * against smtp-server and Node's TLS stack (test/notify/smtp.test.ts reproduces each case).
 *
 * The server's own answer is quoted, but the password (and its base64 forms, which is what
 * AUTH PLAIN/LOGIN put on the wire) is scrubbed from anything we return. The original error is
 * not attached as `cause`, because it may hold the transport options.
 */
import {ExitCode, UserError, type ExitCodeValue} from '../util/errors.js';
import type {EmailSettings} from './settings.js';
import {smtpPort} from './settings.js';

interface MailErrorLike {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
  reason?: string;
  errno?: number;
  syscall?: string;
}

function asMailError(err: unknown): MailErrorLike {
  return typeof err === 'object' && err !== null ? (err as MailErrorLike) : {message: String(err)};
}

/** Removes the password in clear and in the base64 forms used by AUTH PLAIN and AUTH LOGIN. */
export function redactSecrets(text: string, settings: EmailSettings | undefined): string {
  if (settings?.transport !== 'smtp' || !settings.auth?.password) return text;
  const {user, password} = settings.auth;
  const secrets = [
    password,
    Buffer.from(password).toString('base64'),
    Buffer.from(`\0${user}\0${password}`).toString('base64'),
    Buffer.from(`${user}\0${user}\0${password}`).toString('base64'),
  ].filter((s) => s.length >= 3);
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

function where(settings: EmailSettings): string {
  return settings.transport === 'smtp' ? `${settings.host}:${smtpPort(settings)}` : settings.path;
}

/** "(the server said: 535 5.7.8 Authentication failed)" or "". */
function serverSaid(e: MailErrorLike, settings: EmailSettings): string {
  const said = (e.response ?? '').replace(/\s+/g, ' ').trim();
  return said ? ` The server said: "${redactSecrets(said, settings)}".` : '';
}

function fail(message: string, hint: string, exitCode: ExitCodeValue): UserError {
  return new UserError(message, {hint, exitCode});
}

const TLS_UNTRUSTED = /self[- ]signed|unable to verify|unable to get (local )?issuer|certificate has expired|not yet valid|unknown ca|certificate chain/i;
const TLS_NAME = /hostname\/ip does not match|altnames|does not match certificate/i;
const TLS_PROTOCOL = /wrong version number|packet length too long|unexpected eof|ssl routines|handshake|tls/i;

export function explainMailError(err: unknown, settings: EmailSettings): UserError {
  if (err instanceof UserError) return err;
  const e = asMailError(err);
  const raw = redactSecrets(String(e.message ?? ''), settings);
  const server = where(settings);
  const said = serverSaid(e, settings);

  if (settings.transport === 'sendmail') {
    if (e.code === 'ENOENT' || /ENOENT/.test(raw)) {
      return fail(
        `The sendmail program ${settings.path} does not exist.`,
        'Install a mail transfer agent that provides it (for example: apt-get install msmtp-mta, or postfix), or switch the email settings to SMTP.',
        ExitCode.notFound,
      );
    }
    return fail(
      `Handing the mail to ${settings.path} failed: ${raw}`,
      `Run "${settings.path} -t" by hand to see why, or look in the mail log (journalctl) of the appliance; or switch the email settings to SMTP.`,
      ExitCode.platformFailed,
    );
  }

  const user = settings.auth?.user;
  const rc = e.responseCode;

  // Authentication: a wrong user or password (535), or a server that requires one we do not send.
  if (e.code === 'EAUTH' || rc === 535 || rc === 534) {
    return fail(
      `The mail server ${server} rejected the user name or password${user ? ` for "${user}"` : ''}.${said}`,
      'Check the SMTP user and password in the email settings. Providers with two-factor sign-in (Microsoft 365, Gmail) need an app password, and some need SMTP AUTH enabled for the mailbox.',
      ExitCode.authFailed,
    );
  }
  if (rc === 530 || (rc !== undefined && rc >= 500 && /auth/i.test(e.response ?? ''))) {
    return fail(
      `The mail server ${server} requires authentication before it accepts mail.${said}`,
      'Set the SMTP user and password in the email settings (and use STARTTLS or TLS: most servers only offer login over an encrypted connection).',
      ExitCode.authFailed,
    );
  }

  // Envelope: the sender or a recipient refused; 550/554 on RCPT TO is the classic "relay denied".
  if (e.code === 'EENVELOPE' || e.command === 'RCPT TO' || e.command === 'MAIL FROM') {
    if (e.command === 'MAIL FROM') {
      return fail(
        `The mail server ${server} refused the sender address ${settings.from}.${said}`,
        'Use a sender address of a domain this server accepts mail from (often it must match the SMTP user), then send a test message again.',
        ExitCode.invalidInput,
      );
    }
    return fail(
      `The mail server ${server} refused the recipient(s): it will not relay this mail.${said}`,
      'Allow this appliance to relay on the mail server (by its IP address), or set an SMTP user and password the server accepts for relaying, or check the recipient addresses.',
      ExitCode.invalidInput,
    );
  }

  // STARTTLS not offered, or refused.
  if (e.code === 'ETLS' || e.command === 'STARTTLS') {
    return fail(
      `The mail server ${server} does not offer STARTTLS, so no encrypted connection could be started.${said}`,
      "If the server expects TLS from the first byte (usually port 465), set security to 'tls'. Only on a trusted local network, set security to 'none'.",
      ExitCode.untrusted,
    );
  }

  if (TLS_NAME.test(raw)) {
    return fail(
      `The certificate of the mail server ${server} was not issued for the name "${settings.host}" (${raw.replace(/\s*$/, '')}).`,
      'Set the SMTP host to the name in the server\'s certificate (not an IP address or an alias), or, if you trust this server, turn on "accept any certificate".',
      ExitCode.untrusted,
    );
  }
  if (TLS_UNTRUSTED.test(raw)) {
    const detail = raw.split(';')[0].trim();
    return fail(
      `The certificate of the mail server ${server} is not trusted (${detail}).`,
      'Paste the CA certificate (PEM) of your mail server into the email settings, or, if you trust this server, turn on "accept any certificate".',
      ExitCode.untrusted,
    );
  }
  if (e.code === 'ESOCKET' && TLS_PROTOCOL.test(raw) && !/ECONN|EHOST|ENET/.test(raw)) {
    return fail(
      `The TLS handshake with the mail server ${server} failed (${(e.reason ?? raw).trim()}).`,
      "The port and the security setting probably do not match: use 'tls' with port 465 and 'starttls' with port 587 or 25.",
      ExitCode.untrusted,
    );
  }

  if (/ECONNREFUSED/.test(raw) || e.code === 'ECONNREFUSED') {
    return fail(
      `The connection to the mail server ${server} was refused: nothing accepts connections on that port.`,
      'Check the SMTP host and port (587 for STARTTLS, 465 for TLS, 25 for plain), that the mail server is running, and that no firewall rejects the connection.',
      ExitCode.unreachable,
    );
  }
  if (e.code === 'EDNS' || /ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(raw)) {
    return fail(
      `The mail server's name "${settings.host}" could not be resolved (DNS).`,
      'Check the spelling of the SMTP host, and that the appliance has a working DNS server (resolvectl status, /etc/resolv.conf); an IP address also works.',
      ExitCode.unreachable,
    );
  }
  if (/EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL/.test(raw)) {
    return fail(
      `There is no network route from this appliance to the mail server ${server}.`,
      'Check the appliance\'s network settings (address, gateway) and that the mail server is on a network it can reach.',
      ExitCode.unreachable,
    );
  }
  if (e.code === 'ETIMEDOUT' || /timed? ?out|greeting never received/i.test(raw)) {
    return fail(
      `The mail server ${server} did not answer within ${settings.timeoutSeconds} s.`,
      'A firewall probably drops the connection, or the port is wrong (465 expects TLS at once, 587 and 25 expect STARTTLS or plain). Check the host, the port and the firewall.',
      ExitCode.unreachable,
    );
  }
  if (e.code === 'ECONNECTION' || e.code === 'ESOCKET') {
    return fail(
      `The connection to the mail server ${server} failed: ${raw}`,
      'Check the SMTP host, port and security setting, and the network between this appliance and the server.',
      ExitCode.unreachable,
    );
  }
  return fail(
    `Sending mail through ${server} failed: ${raw}${said}`,
    'Check the email settings and send a test message; the mail server\'s log shows why it refused.',
    ExitCode.platformFailed,
  );
}
