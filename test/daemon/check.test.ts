/**
 * `vmbackup check` for monitoring systems against a real vmbackupd and the oVirt simulator: the
 * Nagios exit codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, from real sessions and ages; the
 * repository rules on the verdict function.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {evaluate, parseAge} from '../../src/cli/check.js';
import {renderMetrics} from '../../src/api/metrics.js';
import {readFile} from 'node:fs/promises';
import {vmbackup} from '../lib/cli.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {startDaemon, waitForSession, type RunningDaemon} from './helpers.js';

let dir: string;
let d: RunningDaemon;
let sim: Simulator;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-check-'));
  sim = await startSimulator({delayMs: 5});
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  env = {VMBACKUP_SOCKET: join(dir, 'api.sock')};
  await d.client.create('repositories', {id: 'r', name: 'main', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
  const web = sim.vm('web01');
  await d.client.create('jobs', {id: 'nightly', name: 'Nightly', source: {connection: 'engine', vms: [{id: web.id, name: web.name}]}, repository: 'r', schedule: {kind: 'daily', at: '23:00'}});
  const s = await d.client.startJob('nightly');
  await waitForSession(d.client, s.id);
}, 120_000);
afterAll(async () => {
  await d?.stop();
  await sim?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('vmbackup check', () => {
  it('OK after a good backup, with performance data', async () => {
    const r = await vmbackup(['check'], {env});
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^VMBACKUP OK - 1 job\(s\) backed up within 26h, 1 repository\(ies\) healthy \| 'nightly_age'=\d+s;93600;180000 'main_free'=\d+%;10;;0;100/);
  });

  it('WARNING and CRITICAL by the age of the last good backup', async () => {
    await new Promise((r) => setTimeout(r, 1200));
    const warn = await vmbackup(['check', '--warning-age', '1s'], {env});
    expect(warn.exitCode).toBe(1);
    expect(warn.stdout).toMatch(/^VMBACKUP WARNING - 1 problem\(s\): Nightly: last good backup \d+s ago/);
    const crit = await vmbackup(['check', '--warning-age', '0.5s', '--critical-age', '1s', '--json'], {env});
    expect(crit.exitCode).toBe(2);
    expect(JSON.parse(crit.stdout)).toMatchObject({status: 'CRITICAL'});
  });

  it('a job whose last session failed is a WARNING; --job checks one job; a bad age is UNKNOWN', async () => {
    await d.client.create('jobs', {id: 'ghost', name: 'Ghost', source: {connection: 'engine', vms: [{id: '00000000-0000-4000-8000-000000000000', name: 'gone'}]}, repository: 'r', retries: {count: 0}, schedule: {kind: 'none'}});
    const s = await d.client.startJob('ghost');
    await waitForSession(d.client, s.id);
    const r = await vmbackup(['check', '--job', 'ghost'], {env});
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('Ghost: no good backup yet (last session failed)');
    expect((await vmbackup(['check', '--job', 'nope'], {env})).exitCode).toBe(3);
    expect((await vmbackup(['check', '--warning-age', 'soon'], {env})).exitCode).toBe(3);
    // A manual-only job does not count in the overall check.
    expect((await vmbackup(['check'], {env})).exitCode).toBe(0);
  });

  it('metrics in the Prometheus text format, on stdout or atomically into a textfile-collector file', async () => {
    const r = await vmbackup(['metrics'], {env});
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^# HELP vmbackup_job_enabled /m);
    expect(r.stdout).toMatch(/^vmbackup_job_last_result\{job="nightly",name="Nightly"\} [01]$/m);
    expect(r.stdout).toMatch(/^vmbackup_job_last_success_timestamp_seconds\{job="nightly",name="Nightly"\} \d+(\.\d+)?$/m);
    expect(r.stdout).toMatch(/^vmbackup_repository_free_bytes\{repository="r",name="main"\} \d+$/m);
    expect(r.stdout).toMatch(/^vmbackup_sessions_running 0$/m);
    const file = join(dir, 'vmbackup.prom');
    expect((await vmbackup(['metrics', '--output', file], {env})).exitCode).toBe(0);
    expect(await readFile(file, 'utf8')).toContain('vmbackup_job_last_read_bytes{job="nightly"');
  });

  it('escapes label values as the format demands', () => {
    const text = renderMetrics([{id: 'j', name: 'a "quoted"\\name\nx'}], [], [], 0);
    expect(text).toContain('vmbackup_job_enabled{job="j",name="a \\"quoted\\"\\\\name\\nx"} 1');
  });

  it('--version and -V name the version', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await vmbackup([flag]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/^vmbackup \d+\.\d+\.\d+ \(node v\d+/);
    }
  });

  it('UNKNOWN when the daemon cannot be asked', async () => {
    const r = await vmbackup(['check'], {env: {VMBACKUP_SOCKET: join(dir, 'no-such.sock')}});
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^VMBACKUP UNKNOWN - vmbackupd is not running/);
  });

  it('repositories: damage found by a health check is CRITICAL, low space a WARNING', () => {
    const base = {now: Date.parse('2026-12-06T12:00:00Z'), jobs: [], sessions: [], lowSpacePercent: 10, warningAgeMs: parseAge('26h')!, criticalAgeMs: parseAge('2d')!};
    expect(evaluate({...base, repositories: [{name: 'a', freeBytes: 5, totalBytes: 100}]}).level).toBe('warning');
    const damaged = evaluate({...base, repositories: [{name: 'a', freeBytes: 50, totalBytes: 100, lastHealthCheck: {at: '2026-12-06T04:00:00Z', ok: false, problems: 3}}]});
    expect(damaged.level).toBe('critical');
    expect(damaged.summary).toContain('repository a: the health check of 2026-12-06 04:00 found 3 problem(s)');
    expect(evaluate({...base, repositories: [{name: 'a', freeBytes: 50, totalBytes: 100}]}).level).toBe('ok');
  });
});
