/** `vmbackup console` without a terminal draws nothing and says how to use the CLI instead. */
import {describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';

describe('vmbackup console without a TTY', () => {
  it('exits with the usage code and a message, no Ink output', async () => {
    const r = await vmbackup(['console'], {env: {VMBACKUP_SOCKET: '/nonexistent/api.sock'}});
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('vmbackup console needs an interactive terminal (over SSH use ssh -t)');
    expect(r.stderr).toContain('vmbackup --help');
    expect(r.stdout).toBe('');
  });

  it('is listed in vmbackup --help', async () => {
    const r = await vmbackup(['--help']);
    expect(r.stdout + r.stderr).toContain('console');
  });
});
