import {describe, expect, it} from 'vitest';
import {
  parseDailySummary,
  parseEmailSettings,
  parseJobNotification,
  smtpPort,
  type SmtpSettings,
} from '../../src/notify/settings.js';
import {smtpTransportOptions} from '../../src/notify/transport.js';
import {ExitCode, UserError} from '../../src/util/errors.js';

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

const base = {transport: 'smtp', host: 'mail.example.test', from: 'vmbackup@example.test'};

describe('email settings', () => {
  it('refuses a login over SMTP without TLS unless the administrator allows it explicitly', () => {
    const auth = {user: 'backup', password: 'secret'};
    const err = errorOf(() => parseEmailSettings({...base, security: 'none', auth}));
    expect(err.message).toContain("'none' sends the password in clear text");
    const allowed = parseEmailSettings({...base, security: 'none', auth, allowPlaintextAuth: true}) as SmtpSettings;
    expect(allowed.auth?.user).toBe('backup');
    // Without a login, a plain relay needs no permission; with TLS, none either.
    expect(parseEmailSettings({...base, security: 'none'}).transport).toBe('smtp');
    expect((parseEmailSettings({...base, security: 'starttls', auth}) as SmtpSettings).allowPlaintextAuth).toBe(false);
    // STARTTLS is required, never opportunistic: a server (or a man in the middle) that hides it gets no password.
    expect(smtpTransportOptions(parseEmailSettings({...base, auth}) as SmtpSettings).requireTLS).toBe(true);
  });

  it('fills defaults: STARTTLS on 587, certificates verified, no recipients', () => {
    const s = parseEmailSettings(base) as SmtpSettings;
    expect(s.security).toBe('starttls');
    expect(smtpPort(s)).toBe(587);
    expect(s.tls.acceptAnyCertificate).toBe(false);
    expect(s.recipients).toEqual([]);
    expect(smtpPort(parseEmailSettings({...base, security: 'tls'}) as SmtpSettings)).toBe(465);
    expect(smtpPort(parseEmailSettings({...base, security: 'none'}) as SmtpSettings)).toBe(25);
  });

  it('names each bad field', () => {
    const err = errorOf(() => parseEmailSettings({...base, port: 0, security: 'ssl', recipients: ['ok@example.test', 'not an address'], from: 'x'}));
    expect(err.exitCode).toBe(ExitCode.invalidInput);
    expect(err.message).toContain('smtp port: must be a whole number from 1 to 65535');
    expect(err.message).toContain("smtp security: must be 'starttls', 'tls' or 'none'");
    expect(err.message).toContain('recipient 2: not a valid email address');
    expect(err.message).toContain('sender: not a valid email address');
    expect(errorOf(() => parseEmailSettings({...base, host: 'smtp://mail'})).message).toContain('smtp host: not a host name');
    expect(errorOf(() => parseEmailSettings({...base, host: ''})).message).toContain('smtp host: a host name or IP address is required');
    expect(errorOf(() => parseEmailSettings({...base, transport: 'pigeon'})).message).toContain("email transport: must be 'smtp' or 'sendmail'");
    expect(errorOf(() => parseEmailSettings({...base, tls: {ca: 'hello'}})).message).toContain('smtp tls ca: must be a PEM certificate');
    // No request can choose the program the daemon (root) runs: only root's VMBACKUP_SENDMAIL can.
    expect(errorOf(() => parseEmailSettings({transport: 'sendmail', from: 'a@b', path: '/tmp/evil'})).message).toContain('sendmail path: cannot be set');
    expect(errorOf(() => parseEmailSettings({transport: 'sendmail', from: 'a@b', path: 'sendmail'})).message).toContain('sendmail path: cannot be set');
    const ok = parseEmailSettings({transport: 'sendmail', from: 'a@b', path: '/usr/sbin/sendmail'});
    expect(ok.transport === 'sendmail' && ok.path).toBe('/usr/sbin/sendmail');
  });

  it('never puts the password into a validation message', () => {
    const err = errorOf(() => parseEmailSettings({...base, port: 'x', auth: {user: '', password: 'Sup3rSecret'}}));
    expect(err.message).toContain('smtp user: required');
    expect(JSON.stringify(err)).not.toContain('Sup3rSecret');
    expect(err.message).not.toContain('Sup3rSecret');
  });

  it('refuses addresses that could break a header', () => {
    expect(() => parseEmailSettings({...base, recipients: ['a@b.test\r\nBcc: x@y.test']})).toThrow(UserError);
    expect(() => parseEmailSettings({...base, from: 'a@b.test, c@d.test'})).toThrow(UserError);
    expect(parseEmailSettings({transport: 'sendmail', from: 'root@localhost'}).transport).toBe('sendmail');
  });
});

describe('SMTP transport options', () => {
  const opts = (extra: object) => smtpTransportOptions(parseEmailSettings({...base, ...extra}) as SmtpSettings);

  it('requires the STARTTLS upgrade, and verifies certificates by default', () => {
    const o = opts({});
    expect([o.secure, o.requireTLS, o.ignoreTLS]).toEqual([false, true, false]);
    expect(o.tls?.rejectUnauthorized).toBe(true);
  });

  it('maps tls, none, CA, accept-any and auth', () => {
    expect([opts({security: 'tls'}).secure, opts({security: 'none'}).ignoreTLS]).toEqual([true, true]);
    expect(opts({tls: {ca: '-----BEGIN CERTIFICATE-----\nx'}}).tls?.ca).toEqual(['-----BEGIN CERTIFICATE-----\nx']);
    expect(opts({tls: {acceptAnyCertificate: true}}).tls?.rejectUnauthorized).toBe(false);
    expect(opts({auth: {user: 'u', password: 'p'}}).auth).toEqual({user: 'u', pass: 'p'});
    expect(opts({}).logger).toBe(false);
  });
});

describe('job notification and daily summary settings', () => {
  it('defaults like Veeam: all results, only after the last retry, the default subject', () => {
    expect(parseJobNotification(undefined)).toEqual({
      recipients: [],
      onSuccess: true,
      onWarning: true,
      onFailure: true,
      onlyLastAttempt: true,
      webhooks: [],
      subject: '[%JobResult%] %JobName% (%ObjectCount% VMs) %Issues%',
    });
    expect(errorOf(() => parseJobNotification({subject: '  '})).message).toContain('subject template: must not be empty');
    expect(errorOf(() => parseJobNotification({onSuccess: 'yes'})).message).toContain('notify on success: must be true or false');
  });

  it('is off by default and takes a 24-hour time', () => {
    expect(parseDailySummary(undefined)).toEqual({enabled: false, time: '08:00'});
    expect(parseDailySummary({enabled: true, time: '23:59'}).time).toBe('23:59');
    expect(errorOf(() => parseDailySummary({time: '24:00'})).message).toContain('daily summary time: must be HH:MM');
    expect(errorOf(() => parseDailySummary({time: '7:30'})).message).toContain('daily summary time');
  });
});
