import {describe, expect, it} from 'vitest';
import {ExitCode, UserError, explainIoError} from '../../src/util/errors.js';

describe('explainIoError', () => {
  it('turns ENOSPC into a UserError that names the path and says what to do', () => {
    const err = Object.assign(new Error('write failed'), {code: 'ENOSPC'});
    const out = explainIoError(err, '/srv/repo/chunks/ab/cd', 'writing a chunk');
    expect(out).toBeInstanceOf(UserError);
    const u = out as UserError;
    expect(u.exitCode).toBe(ExitCode.noSpace);
    expect(u.message).toContain('/srv/repo/chunks/ab/cd');
    expect(u.hint).toMatch(/prune/);
  });

  it('returns other errors unchanged', () => {
    const err = Object.assign(new Error('odd'), {code: 'EIO'});
    expect(explainIoError(err, '/x', 'reading')).toBe(err);
  });
});
