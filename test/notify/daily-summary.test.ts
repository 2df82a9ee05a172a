import {describe, expect, it} from 'vitest';
import {renderDailySummary} from '../../src/notify/daily-summary.js';
import type {DailySummaryInput} from '../../src/notify/model.js';

const TiB = 1024 ** 4;
const input: DailySummaryInput = {
  hostname: 'vmbackup-01.example.test',
  generatedAt: '2026-11-23T08:00:00Z',
  jobs: [
    {name: 'Nightly production', lastResult: 'success', lastRun: '2026-11-23T01:00:00Z', nextRun: '2026-11-24T01:00:00Z'},
    {name: 'Hourly <db>', lastResult: 'failed', lastRun: '2026-11-23T07:00:00Z', nextRun: '2026-11-23T09:00:00Z'},
    {name: 'New job', lastResult: 'never', nextRun: '2026-11-23T22:00:00Z'},
  ],
  repositories: [
    {name: 'local-1', freeBytes: 1.2 * TiB, totalBytes: 4 * TiB},
    {name: 'usb-archive', freeBytes: 0.1 * TiB, totalBytes: 2 * TiB},
  ],
};

describe('renderDailySummary', () => {
  const mail = renderDailySummary(input, {timeZone: 'UTC'});

  it('sums up in the subject', () => {
    expect(mail.subject).toBe('[Failed] vmbackup daily summary for vmbackup-01.example.test: 3 jobs, 1 failed, 1 repository low on space');
    const ok = renderDailySummary({...input, jobs: [input.jobs[0]], repositories: [input.repositories[0]]});
    expect(ok.subject).toBe('[Success] vmbackup daily summary for vmbackup-01.example.test: 1 job');
  });

  it('lists every job and repository in both parts', () => {
    expect(mail.html.split('\n').filter((l) => l.startsWith('<tr class="job"'))).toHaveLength(3);
    expect(mail.html.split('\n').filter((l) => l.startsWith('<tr class="repository"'))).toHaveLength(2);
    expect(mail.html).toContain('Hourly &lt;db&gt;');
    expect(mail.html).not.toContain('<db>');
    expect(mail.html).toContain('low on space');
    expect(mail.text).toContain('Hourly <db>                  Failed      2026-11-23 07:00:00 2026-11-23 09:00:00');
    expect(mail.text).toContain('New job                      Never run   –                   2026-11-23 22:00:00');
    expect(mail.text).toContain('usb-archive: 102 GiB free of 2.00 TiB (5%) - LOW ON SPACE');
    for (const line of mail.text.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
  });

  it('says so when nothing is set up', () => {
    const empty = renderDailySummary({hostname: 'h', jobs: [], repositories: []});
    expect(empty.text).toContain('No jobs are set up.');
    expect(empty.html).toContain('No repositories are set up.');
  });
});
