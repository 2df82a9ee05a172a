/**
 * Sample session reports for the notify tests: a realistic three-VM warning session, and a
 * generator for large sessions (200 VMs) to check the size budget.
 */
import type {SessionReport, VmReport} from '../../src/notify/model.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export function sampleReport(overrides: Partial<SessionReport> = {}): SessionReport {
  return {
    sessionId: 'sess-20261123-0100-7f3a',
    jobId: 'job-nightly',
    jobName: 'Nightly production',
    jobDescription: 'All production VMs on cluster A',
    result: 'warning',
    startedAt: '2026-11-23T01:00:00Z',
    endedAt: '2026-11-23T01:12:34Z',
    attempt: 1,
    lastAttempt: true,
    vms: [
      {
        name: 'web-01',
        status: 'success',
        startedAt: '2026-11-23T01:00:03Z',
        endedAt: '2026-11-23T01:03:15Z',
        sizeBytes: 40 * GiB,
        readBytes: 2.5 * GiB,
        transferredBytes: 812 * MiB,
        durationMs: 192_000,
        details: 'incremental, 2 disks',
        issues: [],
      },
      {
        name: 'db-02',
        status: 'warning',
        startedAt: '2026-11-23T01:03:16Z',
        endedAt: '2026-11-23T01:11:02Z',
        sizeBytes: 120 * GiB,
        readBytes: 120 * GiB,
        transferredBytes: 14.2 * GiB,
        durationMs: 466_000,
        details: 'full scan',
        issues: [
          {severity: 'warning', code: 'raw-disk-full-scan', message: 'The disk has RAW format and can be backed up only in full scan mode', disk: 'vdb'},
          {severity: 'warning', code: 'no-guest-agent', message: 'qemu-guest-agent is not running: the backup is crash-consistent'},
        ],
      },
      {
        name: 'legacy-app',
        status: 'failed',
        startedAt: '2026-11-23T01:11:03Z',
        endedAt: '2026-11-23T01:12:34Z',
        sizeBytes: 60 * GiB,
        readBytes: 0,
        transferredBytes: 0,
        durationMs: 91_000,
        issues: [{severity: 'error', code: 'unreachable-host', message: 'Host kvm-07.example.test did not answer on port 22 (connection timed out)'}],
      },
    ],
    totals: {
      protectedBytes: 220 * GiB,
      readBytes: 122.5 * GiB,
      transferredBytes: 15.0 * GiB,
      storedBytes: 13.7 * GiB,
      dedupRatio: 3.4,
      compressionRatio: 1.9,
      durationMs: 754_000,
      rateBytesPerSec: 166.4 * MiB,
      bottleneck: 'source',
    },
    repository: {name: 'local-1', path: '/srv/vmbackup/repo1', freeBytes: 1.2 * 1024 * GiB, totalBytes: 4 * 1024 * GiB},
    hostname: 'vmbackup-01.example.test',
    appVersion: '0.1.0',
    ...overrides,
  };
}

/** A session with `n` VMs, each with a long name, details and one warning. */
export function largeReport(n: number): SessionReport {
  const vms: VmReport[] = [];
  for (let i = 0; i < n; i++) {
    vms.push({
      name: `production-application-server-${String(i).padStart(3, '0')}.example.test`,
      status: i % 10 === 0 ? 'warning' : 'success',
      startedAt: '2026-11-23T01:00:00Z',
      endedAt: '2026-11-23T03:00:00Z',
      sizeBytes: (100 + i) * GiB,
      readBytes: (3 + i / 10) * GiB,
      transferredBytes: (1 + i / 100) * GiB,
      durationMs: 120_000 + i * 1000,
      details: 'incremental, 3 disks',
      issues: [{severity: 'warning', code: 'no-guest-agent', message: 'qemu-guest-agent is not running: the backup is crash-consistent'}],
    });
  }
  return sampleReport({vms, result: 'warning'});
}
