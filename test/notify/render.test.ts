import {describe, expect, it} from 'vitest';
import {adviceFor, hasAdvice} from '../../src/notify/advice.js';
import {formatBytes, formatDuration, formatRatio, wrap} from '../../src/notify/format.js';
import {renderSessionReport} from '../../src/notify/render.js';
import {HTML_BUDGET_BYTES} from '../../src/notify/report-html.js';
import {DEFAULT_SUBJECT_TEMPLATE, expandSubject} from '../../src/notify/subject.js';
import {largeReport, sampleReport} from './fixtures.js';

const utc = {timeZone: 'UTC'};

/** The HTML with tags removed and entities decoded, as a reader sees it. */
function visibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;|\u00a0/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&middot;/g, '·')
    .replace(/&mdash;/g, '—')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

describe('formatters', () => {
  it('formats sizes, durations and ratios', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(220 * 1024 ** 3)).toBe('220 GiB');
    expect(formatDuration(754_000)).toBe('0:12:34');
    expect(formatDuration(90_061_000)).toBe('1d 1:01:01');
    expect(formatRatio(3.44)).toBe('3.4x');
    expect(formatRatio(0)).toBe('1.0x');
  });

  it('wraps to the width and breaks words longer than a line', () => {
    const lines = wrap(`short ${'x'.repeat(100)} end`, 40, '  ');
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(40);
    expect(lines.join('').replace(/\s/g, '')).toBe(`short${'x'.repeat(100)}end`);
  });
});

describe('subject', () => {
  it('uses the Veeam-like default template', () => {
    expect(renderSessionReport(sampleReport(), utc).subject).toBe('[Warning] Nightly production (3 VMs) 1 failed, 1 warning');
    const ok = sampleReport({result: 'success', vms: sampleReport().vms.slice(0, 1)});
    expect(renderSessionReport(ok, utc).subject).toBe('[Success] Nightly production (1 VMs)');
  });

  it('expands every variable and keeps unknown ones visible', () => {
    const s = expandSubject('%JobName%|%JobResult%|%ObjectCount%|%Issues%|%Time%|%jobname%|%Nope%', sampleReport(), utc);
    expect(s).toBe('Nightly production|Warning|3|1 failed, 1 warning|2026-11-23 01:12:34|Nightly production|%Nope%');
    expect(DEFAULT_SUBJECT_TEMPLATE).toBe('[%JobResult%] %JobName% (%ObjectCount% VMs) %Issues%');
  });

  it('cannot be used to inject a header', () => {
    const s = expandSubject('%JobName%', sampleReport({jobName: 'evil\r\nBcc: victim@example.test'}));
    expect(s).not.toMatch(/[\r\n]/);
  });
});

describe('renderSessionReport HTML', () => {
  const mail = renderSessionReport(sampleReport(), utc);

  it('shows the header, session times and every figure', () => {
    const text = visibleText(mail.html);
    for (const want of [
      'Nightly production',
      'All production VMs on cluster A',
      'Warning',
      '2 of 3 VMs processed',
      '2026-11-23 01:00:00',
      '2026-11-23 01:12:34',
      '0:12:34',
      'Total size 220 GiB',
      'Data read 123 GiB',
      'Transferred 15.0 GiB',
      'Stored 13.7 GiB',
      'Dedupe 3.4x',
      'Compression 1.9x',
      'Rate 166 MiB/s',
      'Bottleneck Source',
      '1.20 TiB free of 4.00 TiB (30%)',
      'vmbackup-01.example.test',
    ]) {
      expect(text).toContain(want);
    }
    expect(mail.html).toContain('#f2a900'); // amber header for a warning
    expect(renderSessionReport(sampleReport({result: 'success'})).html).toContain('#2e7d32');
    expect(renderSessionReport(sampleReport({result: 'failed'})).html).toContain('bgcolor="#c62828"');
    // A bucket has no size: no "0 B free of 0 B" and no bar, in either part.
    const bucket = renderSessionReport(sampleReport({repository: {name: 's3-offsite', path: 's3://s3.example.test/backups', freeBytes: 0, totalBytes: 0}}), utc);
    for (const part of [bucket.text, visibleText(bucket.html)].map((p) => p.replace(/\s+/g, ' '))) {
      expect(part).toContain('s3://s3.example.test/backups): object storage, no fixed size (no free-space figure)');
      expect(part).not.toContain('free of 0 B');
    }
    // A backup job's report says so; a copy job's says it is one.
    expect(text).toContain('Backup job');
    expect(visibleText(renderSessionReport(sampleReport({copy: true}), utc).html)).toContain('Copy job');
  });

  it('has one row per VM with status symbol, times, sizes and details', () => {
    const rows = mail.html.split('\n').filter((l) => l.startsWith('<tr class="vm"'));
    expect(rows).toHaveLength(3);
    // One block per VM: name and result, then times and figures, then details (reads on a phone too).
    expect(visibleText(rows[0])).toContain('web-01 ✔ Success 01:00:03–01:03:15 · 0:03:12 · 40.0 GiB · read 2.50 GiB · sent 812 MiB incremental, 2 disks');
    expect(visibleText(rows[1])).toContain('⚠ Warning');
    expect(visibleText(rows[1])).toContain('vdb: The disk has RAW format');
    expect(visibleText(rows[2])).toContain('✖ Failed');
  });

  it('gives a "what to do" line for each issue code', () => {
    const text = visibleText(mail.html);
    expect(text).toContain(`What to do: ${adviceFor('raw-disk-full-scan').action}`);
    expect(text).toContain(`What to do: ${adviceFor('no-guest-agent').action}`);
    expect(text).toContain(`What to do: ${adviceFor('unreachable-host').action}`);
    expect(text).toContain('db-02 (vdb)');
  });

  it('escapes user text everywhere', () => {
    const evil = sampleReport({
      jobName: '<script>alert(1)</script>',
      jobDescription: '"><img src=x onerror=alert(2)>',
      hostname: '<b>host</b>',
      vms: [
        {
          ...sampleReport().vms[1],
          name: '<script>alert(3)</script>',
          details: '<iframe>',
          issues: [{severity: 'error', code: '<svg onload=x>', message: '<img src=y>', disk: '<a href=z>'}],
        },
      ],
      repository: {name: '<r>', path: '/srv/"quoted" & <odd>', freeBytes: 1, totalBytes: 2},
    });
    const html = renderSessionReport(evil).html;
    expect(html).not.toMatch(/<script|<img|<iframe|<svg|<a |<r>|<b>host/i);
    expect(visibleText(html)).toContain('<script>alert(3)</script>');
    expect(visibleText(html)).toContain('/srv/"quoted" & <odd>');
  });

  it('loads nothing from outside and uses inline CSS only', () => {
    expect(mail.html).not.toMatch(/<link|<style|<script|src=|url\(|https?:/i);
  });

  it('stays under 100 KB with 200 VMs, and still lists them all', () => {
    const big = renderSessionReport(largeReport(200)).html;
    expect(Buffer.byteLength(big)).toBeLessThanOrEqual(100 * 1024);
    expect(big.split('\n').filter((l) => l.startsWith('<tr class="vm"'))).toHaveLength(200);
  });

  it('with 500 VMs (where one row each would be 130 KiB, past Gmail clipping at 102 KB) keeps rows for errors and names the rest', () => {
    const report = largeReport(500);
    report.vms.forEach((vm, i) => {
      if (i % 100 === 7) {
        vm.status = 'failed';
        vm.issues = [{severity: 'error', code: 'disk-read-error', message: 'Read error on vda'}];
      } else if (i % 25 === 3) vm.status = 'warning';
      else {
        vm.status = 'success';
        vm.issues = [];
      }
    });
    const mail = renderSessionReport(report);
    expect(Buffer.byteLength(mail.html)).toBeLessThanOrEqual(HTML_BUDGET_BYTES);
    const rows = mail.html.split('\n').filter((l) => l.startsWith('<tr class="vm"'));
    expect(rows).toHaveLength(5);
    for (const r of rows) expect(r).toContain('Failed');
    const names = mail.html.split('\n').filter((l) => l.startsWith('<tr class="vm-names"'));
    expect(names[0]).toContain('With warnings (20)');
    expect(names[1]).toContain('Backed up without remarks (475)');
    for (const vm of report.vms) expect(mail.html).toContain(vm.name);
    for (const vm of report.vms) expect(mail.text).toContain(vm.name.slice(0, 20));
    expect(mail.html).toContain('This session has many VMs');
    // Every VM with a warning, 500 of them: still within the budget.
    const warned = largeReport(500);
    for (const vm of warned.vms) vm.status = 'warning';
    expect(Buffer.byteLength(renderSessionReport(warned).html)).toBeLessThanOrEqual(HTML_BUDGET_BYTES);
  });

  it('switches to the compact form when messages would blow the budget', () => {
    const report = largeReport(200);
    for (const vm of report.vms) {
      vm.issues = [1, 2, 3].map((n) => ({severity: 'error' as const, code: 'disk-read-error', message: `Read error ${n} `.repeat(20)}));
    }
    const html = renderSessionReport(report).html;
    expect(Buffer.byteLength(html)).toBeLessThanOrEqual(HTML_BUDGET_BYTES);
    expect(html).toContain('3 errors');
    expect(html.split('\n').filter((l) => l.startsWith('<tr class="vm"'))).toHaveLength(200);
  });
});

describe('renderSessionReport text', () => {
  const mail = renderSessionReport(sampleReport(), utc);

  it('fits an 80-column terminal', () => {
    for (const line of mail.text.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
    const long = sampleReport({jobName: 'J'.repeat(150)});
    long.vms[0].name = 'a-very-long-vm-name-that-does-not-fit-in-the-column.example.test';
    long.vms[1].issues[0].message = 'word '.repeat(60) + '/a/very/long/path/'.repeat(10);
    for (const line of renderSessionReport(long).text.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
  });

  it('carries the same figures as the HTML', () => {
    for (const want of [
      'Result: Warning - 2 of 3 VMs processed',
      'Total size:  220 GiB',
      'Dedupe:      3.4x',
      'Stored:      13.7 GiB',
      '1.20 TiB free of 4.00 TiB (30%)',
      'web-01                   Success   40.0 GiB  2.50 GiB     812 MiB   0:03:12',
      'WARNING: vdb: The disk has RAW format',
      'What to do: Convert the disk to qcow2',
      'vmbackup-01.example.test',
    ]) {
      expect(mail.text).toContain(want);
    }
  });
});

describe('session-level issues', () => {
  it('are listed with their advice in both parts, and the repository is flagged when low', () => {
    const report = sampleReport({
      issues: [{severity: 'warning', code: 'repository-low-space', message: 'Repository local-1 has 8% free space left'}],
      repository: {name: 'local-1', path: '/srv/r', freeBytes: 8, totalBytes: 100},
    });
    const mail = renderSessionReport(report);
    expect(mail.text).toContain('WARNING: Repository low on space\n  Details: Repository local-1 has 8% free space left');
    expect(mail.text).toContain('(8%) - LOW ON SPACE');
    expect(visibleText(mail.html)).toContain('Repository low on space · Repository local-1 has 8% free space left');
    expect(visibleText(mail.html)).toContain('low on space');
  });
});

describe('advice', () => {
  it('has an entry for every code the engine is expected to use, and a default', () => {
    for (const code of [
      'raw-disk-full-scan',
      'no-guest-agent',
      'checkpoint-lost',
      'unreachable-host',
      'auth-failed',
      'vm-not-found',
      'repository-low-space',
      'cbt-disabled',
      'damaged-chunks-healed',
    ]) {
      expect(hasAdvice(code)).toBe(true);
    }
    expect(adviceFor('checkpoint-lost').action).toMatch(/^Nothing to do/);
    const unknown = adviceFor('brand-new-code', 'Something odd');
    expect(unknown.title).toBe('Something odd');
    expect(unknown.action).toMatch(/session log/);
  });
});
