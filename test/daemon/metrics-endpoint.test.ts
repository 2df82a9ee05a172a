/**
 * The Prometheus metrics endpoint of a real vmbackupd, read with the real curl: off by default;
 * turned on through the settings (no restart); a request without the bearer token is refused; during
 * a running session (the oVirt simulator with slow reads) it shows the session running; after
 * it, the job's last result and the repository's figures. Turned off again, nothing listens.
 */
import {execa} from 'execa';
import {readFile, stat} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {freePort} from '../lib/ports.js';
import type {Simulator} from '../ovirt-sim/index.js';
import {startEngineBed, waitForSession, type EngineBed, type RunningDaemon} from './helpers.js';

let bed: EngineBed;
let dir: string;
let sim: Simulator;
let d: RunningDaemon;
let port: number;

const curl = (args: string[]) => execa('curl', ['-s', '-S', '--max-time', '10', ...args], {reject: false});

beforeAll(async () => {
  bed = await startEngineBed('vmb-metrics-', {repositoryName: 'Main repo', jobName: 'Web nightly'});
  ({dir, sim, d} = bed);
  port = await freePort();
});
afterAll(async () => bed?.stop());

describe('metrics endpoint', () => {
  it('is off by default, then serves the figures with its token only, during and after a session, and goes when turned off', async () => {
    expect((await curl([`http://127.0.0.1:${port}/metrics`])).exitCode).not.toBe(0); // nothing listens
    const on = await vmbackup(['metrics', '--endpoint', `127.0.0.1:${port}`], {env: {VMBACKUP_SOCKET: d.client.socketPath}});
    expect(on.stdout, on.stderr).toContain(`serves http://127.0.0.1:${port}/metrics`);
    expect((await d.client.settings()).metrics).toEqual({enabled: true, listen: `127.0.0.1:${port}`});
    const tokenFile = join(dir, 'state', 'metrics-token');
    for (let i = 0; i < 50 && !(await stat(tokenFile).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();

    const refused = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/metrics`]);
    expect(refused.stdout).toBe('401');
    const wrong = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${'0'.repeat(64)}`, `http://127.0.0.1:${port}/metrics`]);
    expect(wrong.stdout).toBe('401');
    const elsewhere = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/status`]);
    expect(elsewhere.stdout).toBe('404');

    // A session that runs a while: slow storage on the engine.
    sim.faults.slowReadsMs = 30;
    const started = await d.client.startJob('web');
    let during = '';
    for (let i = 0; i < 100 && !/vmbackup_sessions_running 1/.test(during); i++) {
      during = (await curl(['-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/metrics`])).stdout;
      if (!/vmbackup_sessions_running 1/.test(during)) await new Promise((r) => setTimeout(r, 50));
    }
    expect(during).toContain('vmbackup_sessions_running 1');
    expect(during).toContain('# TYPE vmbackup_sessions_running gauge');
    sim.faults.slowReadsMs = undefined;
    const done = await waitForSession(d.client, started.id);
    expect(done.state).not.toBe('failed');

    const after = await curl(['-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/metrics`]);
    expect(after.stdout).toContain('vmbackup_sessions_running 0');
    expect(after.stdout).toMatch(/vmbackup_job_last_result\{job="web",name="Web nightly"\} [01]/);
    expect(after.stdout).toMatch(/vmbackup_job_last_success_timestamp_seconds\{job="web",[^}]*\} \d+/);
    expect(after.stdout).toMatch(/vmbackup_repository_free_bytes\{repository="r",name="Main repo"\} \d+/);

    const off = await vmbackup(['metrics', '--endpoint', 'off'], {env: {VMBACKUP_SOCKET: d.client.socketPath}});
    expect(off.stdout, off.stderr).toContain('The metrics endpoint is off.');
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = (await curl([`http://127.0.0.1:${port}/metrics`])).exitCode !== 0;
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    expect(gone).toBe(true);
  });

  it('refuses a listen address that is not address:port', async () => {
    await expect(d.client.setSettings({metrics: {enabled: true, listen: 'everywhere'}})).rejects.toThrow(/metrics.listen: must be address:port/);
    await expect(d.client.setSettings({metrics: {enabled: true, listen: '127.0.0.1:70000'}})).rejects.toThrow(/at most 65535/);
  });
});
