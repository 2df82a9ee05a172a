/**
 * A real SMTP server for the tests (the smtp-server package on 127.0.0.1, port 0), with optional
 * STARTTLS or implicit TLS from a self-signed certificate made by openssl, optional
 * authentication, and hooks to refuse recipients. Received messages are kept raw and parsed.
 */
import {mkdtemp, readFile} from 'node:fs/promises';
import net from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {SMTPServer, type SMTPServerOptions} from 'smtp-server';
import {parseEmailSettings, type EmailSettings, type EmailSettingsInput} from '../../src/notify/settings.js';
import {parseMail, type ParsedMail} from './rfc822.js';

/** Email settings for a harness on 127.0.0.1:`port`, plain SMTP unless `extra` says otherwise. */
export function smtpSettings(port: number, extra: Partial<EmailSettingsInput> = {}): EmailSettings {
  return parseEmailSettings({
    transport: 'smtp',
    host: '127.0.0.1',
    port,
    security: 'none',
    from: 'vmbackup@example.test',
    recipients: ['ops@example.test'],
    timeoutSeconds: 5,
    // The harness speaks plain SMTP on loopback: a login there is allowed explicitly.
    ...('auth' in extra && ((extra as {security?: string}).security ?? 'none') === 'none' ? {allowPlaintextAuth: true} : {}),
    ...extra,
  } as EmailSettingsInput);
}

export {freePort} from '../lib/ports.js';

export interface Received {
  from: string;
  to: string[];
  raw: string;
  mail: ParsedMail;
  user?: string;
}

export interface TestCert {
  key: string;
  cert: string;
}

/** A self-signed certificate for "localhost" only (so 127.0.0.1 does not match it). */
export async function makeCert(): Promise<TestCert> {
  const dir = await mkdtemp(join(tmpdir(), 'vmbackup-notify-cert-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await execa('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
  ]);
  return {key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8')};
}

export interface HarnessOptions {
  /** 'starttls' offers STARTTLS; 'tls' is TLS from the first byte; 'none' offers no TLS. */
  tls?: 'starttls' | 'tls' | 'none';
  cert?: TestCert;
  /** Require this user and password; anything else gets 535. */
  credentials?: {user: string; password: string};
  /** Refuse these recipients with 554 relay denied (all, if `true`). */
  refuseRecipients?: boolean | string[];
  /** Listen on this port (to restart a server on the same port); default: any free port. */
  port?: number;
}

export class SmtpHarness {
  readonly received: Received[] = [];
  /** Every password tried in AUTH, to check what the client sent. */
  readonly passwordsTried: string[] = [];
  private server!: SMTPServer;
  port = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly opts: HarnessOptions = {}) {}

  async start(): Promise<this> {
    const o = this.opts;
    const options: SMTPServerOptions = {
      logger: false,
      // Reverse DNS of 127.0.0.1 only slows every connection down.
      disableReverseLookup: true,
      secure: o.tls === 'tls',
      key: o.cert?.key,
      cert: o.cert?.cert,
      disabledCommands: o.tls === 'starttls' || o.tls === 'tls' ? [] : ['STARTTLS'],
      authOptional: !o.credentials,
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth: (auth, _session, cb) => {
        this.passwordsTried.push(auth.password ?? '');
        if (o.credentials && auth.username === o.credentials.user && auth.password === o.credentials.password) return cb(null, {user: auth.username});
        const err = new Error('5.7.8 Authentication credentials invalid') as Error & {responseCode: number};
        err.responseCode = 535;
        return cb(err);
      },
      onRcptTo: (address, _session, cb) => {
        const refuse = o.refuseRecipients === true || (Array.isArray(o.refuseRecipients) && o.refuseRecipients.includes(address.address));
        if (!refuse) return cb();
        const err = new Error('5.7.1 Relaying denied') as Error & {responseCode: number};
        err.responseCode = 554;
        return cb(err);
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          this.received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw,
            mail: parseMail(raw),
            user: typeof session.user === 'string' ? session.user : undefined,
          });
          for (const w of this.waiters.splice(0)) w();
          cb();
        });
      },
    };
    this.server = new SMTPServer(options);
    // Client-side TLS failures surface here as errors; they are the point of some tests.
    this.server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const addr = this.server.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  /** Resolves once at least `n` messages have arrived (the test's own timeout bounds the wait). */
  async waitFor(n: number): Promise<Received[]> {
    while (this.received.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.received;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
