/**
 * explainMailError on the cases that a local SMTP server cannot produce (a missing route, a
 * refused sender, a failing sendmail), with error objects shaped as nodemailer raises them, and
 * the scrubbing of secrets from whatever the server echoes back.
 */
import {describe, expect, it} from 'vitest';
import {explainMailError, redactSecrets} from '../../src/notify/mail-errors.js';
import {parseEmailSettings} from '../../src/notify/settings.js';
import {ExitCode} from '../../src/util/errors.js';

const smtp = parseEmailSettings({
  transport: 'smtp',
  host: 'mail.example.test',
  port: 587,
  from: 'vmbackup@example.test',
  auth: {user: 'backup', password: 'S3cret!pw'},
});

function nodemailerError(message: string, props: object): Error {
  return Object.assign(new Error(message), props);
}

describe('explainMailError', () => {
  it('explains a missing route', () => {
    const err = explainMailError(nodemailerError('connect EHOSTUNREACH 10.9.9.9:587', {code: 'ESOCKET', command: 'CONN'}), smtp);
    expect(err.message).toBe('There is no network route from this appliance to the mail server mail.example.test:587.');
    expect(err.exitCode).toBe(ExitCode.unreachable);
  });

  it('explains a refused sender', () => {
    const err = explainMailError(
      nodemailerError('Mail command failed: 553 5.7.1 Sender address rejected: not owned by user backup', {
        code: 'EENVELOPE',
        command: 'MAIL FROM',
        responseCode: 553,
        response: '553 5.7.1 Sender address rejected: not owned by user backup',
      }),
      smtp,
    );
    expect(err.message).toContain('refused the sender address vmbackup@example.test');
    expect(err.message).toContain('"553 5.7.1 Sender address rejected: not owned by user backup"');
    expect(err.hint).toMatch(/match the SMTP user/);
  });

  it('explains a sendmail that exits with an error', () => {
    const sendmail = parseEmailSettings({transport: 'sendmail', from: 'root@localhost'});
    const err = explainMailError(new Error('Sendmail exited with code 75'), sendmail);
    expect(err.message).toBe('Handing the mail to /usr/sbin/sendmail failed: Sendmail exited with code 75');
    expect(err.hint).toContain('/usr/sbin/sendmail -t');
  });

  it('falls back to a general message that still quotes the server', () => {
    const err = explainMailError(nodemailerError('Message failed: 452 4.3.1 Insufficient system storage', {code: 'EMESSAGE', response: '452 4.3.1 Insufficient system storage'}), smtp);
    expect(err.message).toContain('452 4.3.1 Insufficient system storage');
  });

  it('never repeats the password, in clear or as AUTH PLAIN / LOGIN base64', () => {
    const plain = Buffer.from('\0backup\0S3cret!pw').toString('base64');
    const login = Buffer.from('S3cret!pw').toString('base64');
    const echoed = `535 5.7.8 bad credentials for ${plain} / ${login} / S3cret!pw`;
    const err = explainMailError(nodemailerError(`Invalid login: ${echoed}`, {code: 'EAUTH', responseCode: 535, response: echoed}), smtp);
    for (const secret of ['S3cret!pw', plain, login]) {
      expect(err.message).not.toContain(secret);
      expect(err.hint ?? '').not.toContain(secret);
    }
    expect(err.cause).toBeUndefined();
    expect(redactSecrets('x S3cret!pw y', smtp)).toBe('x *** y');
  });
});
