/**
 * sendTestMessage and the error explanations, against a real SMTP server (smtp-server on
 * 127.0.0.1) with and without STARTTLS, implicit TLS and authentication.
 */
import {chmod, mkdtemp, readFile, writeFile} from 'node:fs/promises';
import net from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {parseEmailSettings} from '../../src/notify/settings.js';
import {sendTestMessage} from '../../src/notify/test-message.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {parseMail, partOf} from './rfc822.js';
import {freePort, makeCert, SmtpHarness, smtpSettings, type TestCert} from './smtp-harness.js';

const PASSWORD = 'correct-h0rse;battery "staple"';

const smtp = smtpSettings;

async function failure(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a failure');
}

let cert: TestCert;
beforeAll(async () => {
  cert = await makeCert();
});

describe('sendTestMessage over plain SMTP', () => {
  const server = new SmtpHarness({tls: 'none'});
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('delivers a test message to the global recipients', async () => {
    const result = await sendTestMessage(smtp(server.port), {hostname: 'vmbackup-01', appVersion: '0.1.0'});
    expect(result.accepted).toEqual(['ops@example.test']);
    const [got] = await server.waitFor(1);
    expect(got.from).toBe('vmbackup@example.test');
    expect(got.to).toEqual(['ops@example.test']);
    expect(got.mail.subject).toBe('vmbackup test message from vmbackup-01');
    expect(partOf(got.mail, 'text/plain')).toContain('This is a test message from vmbackup 0.1.0 on vmbackup-01');
    expect(got.mail.headers.get('x-vmbackup-kind')).toBe('test');
  });

  it('says so when there is no recipient', async () => {
    const err = await failure(sendTestMessage(smtp(server.port, {recipients: []})));
    expect(err.message).toMatch(/no recipient/);
  });
});

describe('sendTestMessage with authentication', () => {
  const server = new SmtpHarness({tls: 'none', credentials: {user: 'backup', password: PASSWORD}});
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('logs in with the right password', async () => {
    await sendTestMessage(smtp(server.port, {auth: {user: 'backup', password: PASSWORD}}));
    const [got] = await server.waitFor(1);
    expect(got.user).toBe('backup');
  });

  it('explains a wrong password (535) without revealing it', async () => {
    const wrong = 'Wr0ng-Secret-42';
    const err = await failure(sendTestMessage(smtp(server.port, {auth: {user: 'backup', password: wrong}})));
    expect(server.passwordsTried).toContain(wrong); // it really was sent, and refused
    expect(err.message).toMatch(/rejected the user name or password for "backup"/);
    expect(err.message).toContain('535 5.7.8 Authentication credentials invalid');
    expect(err.hint).toMatch(/app password/);
    expect(err.exitCode).toBe(ExitCode.authFailed);
    const everything = JSON.stringify({m: err.message, h: err.hint, s: err.stack, c: String(err.cause)});
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`\0backup\0${wrong}`).toString('base64'));
  });

  it('explains a server that requires authentication when none is set', async () => {
    const err = await failure(sendTestMessage(smtp(server.port)));
    expect(err.message).toMatch(/requires authentication/);
    expect(err.exitCode).toBe(ExitCode.authFailed);
  });
});

describe('refused relay', () => {
  const server = new SmtpHarness({tls: 'none', refuseRecipients: ['outside@elsewhere.test']});
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('explains 554 relay denied with what to do', async () => {
    const err = await failure(sendTestMessage(smtp(server.port), {to: ['outside@elsewhere.test']}));
    expect(err.message).toMatch(/refused the recipient\(s\): it will not relay/);
    expect(err.message).toContain('554 5.7.1 Relaying denied');
    expect(err.hint).toMatch(/relay/);
  });

  it('reports recipients refused while others were accepted', async () => {
    const err = await failure(sendTestMessage(smtp(server.port), {to: ['ops@example.test', 'outside@elsewhere.test']}));
    expect(err.message).toContain('refused these recipients: outside@elsewhere.test');
  });
});

describe('STARTTLS', () => {
  let server: SmtpHarness;
  beforeAll(async () => {
    server = await new SmtpHarness({tls: 'starttls', cert}).start();
  });
  afterAll(() => server.stop());

  it('delivers with the CA given and the certificate\'s host name', async () => {
    await sendTestMessage(smtp(server.port, {host: 'localhost', security: 'starttls', tls: {ca: cert.cert}}));
    expect((await server.waitFor(1)).length).toBeGreaterThanOrEqual(1);
  });

  it('explains a self-signed certificate', async () => {
    const err = await failure(sendTestMessage(smtp(server.port, {host: 'localhost', security: 'starttls'})));
    expect(err.message).toMatch(/certificate of the mail server localhost:\d+ is not trusted \(self-signed certificate\)/);
    expect(err.hint).toMatch(/CA certificate/);
    expect(err.exitCode).toBe(ExitCode.untrusted);
  });

  it('explains a host name that does not match the certificate', async () => {
    const err = await failure(sendTestMessage(smtp(server.port, {host: '127.0.0.1', security: 'starttls', tls: {ca: cert.cert}})));
    expect(err.message).toMatch(/was not issued for the name "127.0.0.1"/);
    expect(err.exitCode).toBe(ExitCode.untrusted);
  });

  it('accepts any certificate only when told to', async () => {
    const before = server.received.length;
    await sendTestMessage(smtp(server.port, {host: '127.0.0.1', security: 'starttls', tls: {acceptAnyCertificate: true}}));
    await server.waitFor(before + 1);
  });
});

describe('STARTTLS required but not offered', () => {
  const server = new SmtpHarness({tls: 'none'});
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('refuses to fall back to plain text and says why', async () => {
    const err = await failure(sendTestMessage(smtp(server.port, {security: 'starttls'})));
    expect(err.message).toMatch(/does not offer STARTTLS/);
    expect(err.hint).toMatch(/'tls'/);
    expect(server.received).toHaveLength(0);
  });

  it('explains a TLS handshake against a plain port', async () => {
    const err = await failure(sendTestMessage(smtp(server.port, {security: 'tls'})));
    expect(err.message).toMatch(/TLS handshake .* failed \(wrong version number\)/);
    expect(err.hint).toMatch(/465/);
  });
});

describe('implicit TLS', () => {
  let server: SmtpHarness;
  beforeAll(async () => {
    server = await new SmtpHarness({tls: 'tls', cert}).start();
  });
  afterAll(() => server.stop());

  it('delivers over TLS from the first byte', async () => {
    await sendTestMessage(smtp(server.port, {host: 'localhost', security: 'tls', tls: {ca: cert.cert}}));
    await server.waitFor(1);
  });
});

describe('unreachable servers', () => {
  it('explains a refused connection', async () => {
    const port = await freePort();
    const err = await failure(sendTestMessage(smtp(port)));
    expect(err.message).toBe(`The connection to the mail server 127.0.0.1:${port} was refused: nothing accepts connections on that port.`);
    expect(err.hint).toMatch(/firewall/);
    expect(err.exitCode).toBe(ExitCode.unreachable);
  });

  it('explains a name that does not resolve', async () => {
    const err = await failure(sendTestMessage(smtp(25, {host: 'no-such-mail-host.invalid'})));
    expect(err.message).toMatch(/"no-such-mail-host.invalid" could not be resolved/);
    expect(err.exitCode).toBe(ExitCode.unreachable);
  });

  it('explains a server that never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const err = await failure(sendTestMessage(smtp(port, {timeoutSeconds: 1})));
      expect(err.message).toBe(`The mail server 127.0.0.1:${port} did not answer within 1 s.`);
      expect(err.hint).toMatch(/firewall/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('sendmail transport', () => {
  it('pipes the message to the sendmail program', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmbackup sendmail ü;'));
    const program = join(dir, 'fake sendmail');
    const out = join(dir, 'message.eml');
    // A stand-in MTA: records its arguments and the message it is given.
    await writeFile(program, `#!/bin/sh\nprintf '%s\\n' "$@" > "${join(dir, 'args')}"\ncat > "${out}"\n`);
    await chmod(program, 0o755);
    // The program comes from the daemon's environment (root's choice), never from the settings.
    process.env['VMBACKUP_SENDMAIL'] = program;
    let settings;
    try {
      settings = parseEmailSettings({transport: 'sendmail', from: 'root@localhost', recipients: ['ops@example.test']});
    } finally {
      delete process.env['VMBACKUP_SENDMAIL'];
    }
    expect(settings.transport === 'sendmail' && settings.path).toBe(program);
    await sendTestMessage(settings, {hostname: 'appliance'});
    const mail = parseMail(await readFile(out, 'utf8'));
    expect(mail.subject).toBe('vmbackup test message from appliance');
    expect(await readFile(join(dir, 'args'), 'utf8')).toContain('ops@example.test');
  });

  it('explains a missing sendmail program', async () => {
    process.env['VMBACKUP_SENDMAIL'] = '/nonexistent/sendmail';
    let settings;
    try {
      settings = parseEmailSettings({transport: 'sendmail', from: 'root@localhost', recipients: ['ops@example.test']});
    } finally {
      delete process.env['VMBACKUP_SENDMAIL'];
    }
    const err = await failure(sendTestMessage(settings));
    expect(err.message).toBe('The sendmail program /nonexistent/sendmail does not exist.');
    expect(err.hint).toMatch(/msmtp-mta|postfix/);
  });
});
