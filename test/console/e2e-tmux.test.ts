/**
 * The console in a real terminal (tmux, 80×24, xterm-256color) against a real vmbackupd and the
 * oVirt simulator: the first-start walk-through, a job made with the wizard, run, watched to the
 * end, the dashboard afterwards, and the restore wizard. Keys go one at a time and in bursts.
 * Screens are kept under test-artifacts/console/.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DEFAULT_VMS, startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from '../daemon/helpers.js';
import {firstStartRepository, firstStartSkipToWizard, wizardDefaultsToSummary} from './console-steps.js';
import {Tmux} from './tmux.js';
import {MENU} from '../../src/console/screens/menu/view.js';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ART = join(ROOT, 'test-artifacts/console');

let dir: string;
let sim: Simulator;
let d: RunningDaemon;
let t: Tmux;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb console e2e '));
  // A VM with more data than the others, so that the session view shows its disk in progress.
  const big = {name: 'big01', status: 'up' as const, tags: ['bulk'], disks: [{alias: 'big_os', size: 512 * 2 ** 20, format: 'cow' as const, bootable: true, fill: [{offset: 0, length: 160 * 2 ** 20, seed: 9}]}]};
  sim = await startSimulator({delayMs: 20, vms: [...DEFAULT_VMS, big]});
  const sock = join(dir, 'api.sock');
  d = await startDaemon(join(dir, 'state'), sock);
  await isolate(d.client);
  t = await Tmux.start(`vmb-console-${process.pid}`, [process.execPath, CLI_MAIN, 'console'], {
    cwd: ROOT,
    // Ink draws only the last frame when it believes it runs in CI (is-in-ci); an administrator's
    // SSH session is no CI, so the test must not look like one either (CI=true under .ci/run).
    env: {VMBACKUP_SOCKET: sock, TERM: 'xterm-256color', CI: '0', CONTINUOUS_INTEGRATION: '0'},
  });
});

afterAll(async () => {
  await t?.kill();
  await d?.stop();
  await sim?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('console in tmux against a real daemon', () => {
  it('first start → job wizard → run → session → dashboard → restore', async () => {
    // Nothing configured yet: the console opens the walk-through.
    // The demo lab is offered first: no, this test sets up its own.
    // Encrypted, with the passphrase typed in the form (the rest of the day goes through it).
    await firstStartRepository(t, 'main repo', join(dir, 'repo ü'), 'typed in tmux, twice');
    expect(await d.client.list('repositories')).toEqual([expect.objectContaining({id: 'main-repo', name: 'main repo', path: join(dir, 'repo ü'), passphrase: '••••'})]);
    expect(JSON.parse(await readFile(join(dir, 'repo ü', 'vmbackup-repository.json'), 'utf8'))).toMatchObject({version: 3});
    expect(await t.screen()).not.toContain('typed in tmux');

    // The oVirt step asks the daemon for the engine's CA; this daemon has no such endpoint yet.
    await t.keys('Enter');
    await t.waitFor('Which platform');
    await t.keys('Enter');
    await t.waitFor('Engine URL');
    await t.text('engine');
    await t.keys('Enter');
    await t.text(sim.url);
    await t.keys('Enter');
    await t.text(sim.user);
    await t.keys('Enter');
    await t.text(sim.password);
    await t.keys('Enter');
    // The daemon downloads the engine CA (POST /connections/ovirt-ca) for the administrator to confirm.
    const caScreen = await t.waitFor('SHA-256 fingerprint');
    expect(caScreen).not.toContain(sim.password);
    await t.keys('Enter');
    await firstStartSkipToWizard(t);

    // The job wizard.
    await t.waitFor('step 1/7: Name');
    await t.text('e2e job');
    await t.keys('Enter', 'Enter');
    await t.waitFor('web01');
    await t.keys('/');
    await t.text('web01');
    await t.keys('Enter');
    await t.keys('Space');
    const vms = await t.waitFor('⚠ web01: web01_data');
    await t.save(join(ART, 'job-wizard-vms.txt'));
    expect(vms).toMatch(/\[x\]\s+web01/);
    await t.keys('/');
    await t.text('big01');
    await t.keys('Enter', 'Space'); // burst
    await t.waitFor(/\[x\]\s+big01/);
    await t.keys('Enter');
    await wizardDefaultsToSummary(t);
    await t.save(join(ART, 'job-wizard-summary.txt'));
    await t.keys('Down', 'Enter');

    // The session view until the session ends.
    await t.waitFor('Log');
    await t.waitFor(/big_os\s+█+░*\s+\d+%\s+[\d.]+ [KMG]iB\/s/);
    const running = await t.save(join(ART, 'session-running.txt'));
    expect(running).toContain('▶ e2e job · running');
    const job = (await d.client.list<{id: string; name: string}>('jobs')).find((j) => j.name === 'e2e job')!;
    const [first] = await d.client.sessions({job: job.id});

    // Esc → the dashboard while it runs (progress bar, rate, time left), if it still runs.
    await t.keys('Escape');
    const live = await t.waitFor(/▶ e2e job\s+[█░]+\s+\d+%|e2e job\s+[✔⚠✖] (success|warning|failed)/);
    if (live.includes('▶ e2e job')) await t.save(join(ART, 'dashboard-running.txt'));
    const done = await waitForSession(d.client, first!.id);
    const dash = await t.waitFor(new RegExp(`e2e job\\s+[✔⚠✖] ${done.state}`));
    await t.save(join(ART, 'dashboard.txt'));
    expect(dash).toMatch(/main repo\s+(–|[\d.]+ \S+)\s+[\d.]+ [KMGT]iB/);
    for (const line of dash.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);

    // The job's history → the session, finished.
    await t.keys('Enter');
    await t.waitFor('Run the job now');
    await t.keys('Down', 'Down', 'Down', 'Down', 'Down', 'Down', 'Enter'); // burst: the first past session
    const end = await t.waitFor(new RegExp(`[✔⚠✖] e2e job · ${done.state}`));
    await t.save(join(ART, 'session-finished.txt'));
    expect(end).toMatch(/web01 (success|warning)/);
    expect(end).toMatch(/✔ big01 success/);
    // The whole log, then only warnings and errors.
    await t.keys('l');
    await t.waitFor(/Log · all levels · all VMs · \d+ line/);
    await t.save(join(ART, 'session-log.txt'));
    await t.keys('e');
    await t.waitFor('warnings and errors');
    await t.keys('Escape');
    await t.waitFor('l whole log');
    await t.keys('Escape');
    await t.waitFor('Run the job now');
    await t.keys('Escape');
    await t.waitFor('Enter open job');

    // Restore wizard.
    await t.keys('r');
    await t.waitFor('point(s), latest');
    await t.save(join(ART, 'restore-wizard.txt'));
    await t.keys('Enter');
    await t.waitFor('which restore point');
    await t.keys('Enter');
    await t.waitFor('where to');
    await t.keys('Down', 'Enter');
    await t.waitFor('New VM name');
    await t.keys(...Array(4).fill('Enter'));
    await t.waitFor('summary');
    await t.save(join(ART, 'restore-summary.txt'));
    await t.keys('Enter');
    await t.waitFor('Restore finished');
    await t.save(join(ART, 'restore-result.txt'));
    // The restored VM exists on the engine with the VM's disks.
    expect([...sim.state.vms.values()].some((v) => v.name.endsWith('-restored'))).toBe(true);
    await t.keys('Escape');
    await t.waitFor('Enter open job');

    // Day two: the repository's restore points, one of them protected.
    await t.keys('m');
    await t.waitFor('Repositories');
    await t.keys('Enter');
    await t.waitFor('main repo');
    await t.keys('Enter');
    await t.waitFor('Restore points');
    await t.keys('Down', 'Down', 'Down', 'Down', 'Enter');
    await t.waitFor(/Restore points \(\d+\)/);
    await t.save(join(ART, 'restore-points.txt'));
    await t.keys('Enter');
    await t.waitFor('Protect it');
    await t.keys('Down', 'Enter');
    await t.waitFor('Protected: retention never removes it.');
    await t.save(join(ART, 'restore-point.txt'));
    expect((await d.client.request<{protected: boolean}[]>('GET', '/repositories/main-repo/restore-points')).some((p) => p.protected)).toBe(true);
    // The appliance's health, and editing the engine connection.
    for (let i = 0; i < 4; i++) await t.keys('Escape');
    await t.waitFor('Enter open job');
    await t.keys('m');
    await t.waitFor('Appliance');
    await t.keys(...Array(MENU.findIndex((m) => m.value === 'appliance')).fill('Down'), 'Enter');
    await t.waitFor(/main repo: .* free of .* · checked|main repo: .* free of .* · never checked/);
    await t.save(join(ART, 'appliance.txt'));
    await t.keys('Escape');
    await t.waitFor('Connections');
    await t.keys('Down', 'Enter');
    await t.waitFor('engine');
    await t.keys('Enter');
    await t.waitFor('Edit');
    await t.keys('Down', 'Down', 'Enter');
    await t.waitFor('Edit engine');
    await t.save(join(ART, 'connection-edit.txt'));
    await t.keys('Enter', 'Enter', 'Enter');
    await t.waitFor('Saved:');
    for (let i = 0; i < 3; i++) await t.keys('Escape');
    await t.waitFor('Enter open job');

    // ? and q.
    await t.keys('?');
    await t.waitFor('Help: Dashboard');
    await t.keys('Escape');
    await t.keys('q');
    for (let i = 0; i < 100 && !(await t.dead()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await t.dead()).toBe(true);
  });
});
