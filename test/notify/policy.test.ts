import {describe, expect, it} from 'vitest';
import {buildSessionMail, recipientsFor, shouldNotify} from '../../src/notify/policy.js';
import {parseJobNotification, type JobNotificationSettings} from '../../src/notify/settings.js';
import type {SessionReport} from '../../src/notify/model.js';
import {sampleReport} from './fixtures.js';

const job = (over: Partial<JobNotificationSettings> = {}) => ({...parseJobNotification({}), ...over});
const report = (result: SessionReport['result'], lastAttempt = true, attempt = 1) => sampleReport({result, lastAttempt, attempt});

describe('shouldNotify', () => {
  it('follows the success / warning / failure switches', () => {
    for (const result of ['success', 'warning', 'failed'] as const) {
      expect(shouldNotify(job(), report(result))).toBe(true);
    }
    expect(shouldNotify(job({onSuccess: false}), report('success'))).toBe(false);
    expect(shouldNotify(job({onSuccess: false}), report('warning'))).toBe(true);
    expect(shouldNotify(job({onWarning: false}), report('warning'))).toBe(false);
    expect(shouldNotify(job({onWarning: false}), report('failed'))).toBe(true);
    expect(shouldNotify(job({onFailure: false}), report('failed'))).toBe(false);
    expect(shouldNotify(job({onFailure: false}), report('success'))).toBe(true);
  });

  it('holds back attempts that will be retried when "only after the last retry" is on', () => {
    expect(shouldNotify(job(), report('failed', false, 1))).toBe(false);
    expect(shouldNotify(job(), report('warning', false, 2))).toBe(false);
    expect(shouldNotify(job(), report('failed', true, 3))).toBe(true);
    // A success ends the retries, so it is always final.
    expect(shouldNotify(job(), report('success', false, 2))).toBe(true);
    expect(shouldNotify(job({onlyLastAttempt: false}), report('failed', false, 1))).toBe(true);
  });
});

describe('recipients', () => {
  it('adds the job recipients to the global ones, each once', () => {
    expect(recipientsFor({recipients: ['ops@example.test', 'Boss@example.test']}, {recipients: ['boss@example.test', 'app-team@example.test']})).toEqual([
      'ops@example.test',
      'Boss@example.test',
      'app-team@example.test',
    ]);
  });
});

describe('buildSessionMail', () => {
  const email = {recipients: ['ops@example.test']};

  it('renders with the job subject template and tags the mail', () => {
    const mail = buildSessionMail(report('warning'), job({subject: '%JobResult%: %JobName% at %Time%', recipients: ['dba@example.test']}), email, {timeZone: 'UTC'});
    expect(mail?.subject).toBe('Warning: Nightly production at 2026-11-23 01:12:34');
    expect(mail?.to).toEqual(['ops@example.test', 'dba@example.test']);
    expect(mail?.headers?.['X-Vmbackup-Session']).toBe('sess-20261123-0100-7f3a');
    expect(mail?.html).toContain('<table');
    expect(mail?.text).toContain('Result: Warning');
  });

  it('returns nothing when filtered out or when there is nobody to tell', () => {
    expect(buildSessionMail(report('success'), job({onSuccess: false}), email)).toBeUndefined();
    expect(buildSessionMail(report('failed', false), job(), email)).toBeUndefined();
    expect(buildSessionMail(report('failed'), job(), {recipients: []})).toBeUndefined();
  });
});
