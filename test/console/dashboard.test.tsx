/** The app shell and the dashboard against the fake API: attention, jobs, running sessions, keys, 80×24. */
import {afterEach, describe, expect, it} from 'vitest';
import {UserError, ExitCode} from '../../src/util/errors.js';
import {makeSession, seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

describe('dashboard', () => {
  it('puts the failed VM at the top, lists jobs and repositories, and fits 80×24', async () => {
    const api = seeded();
    r = await renderApp(api);
    const f = await r.waitFor('nightly');
    expect(f.split('\n')[1]).toContain('✖ nightly: 1 VM failed (web01: host unreachable)');
    expect(f).toMatch(/nightly\s+✖ failed\s+2026-11-23/);
    expect(f).toMatch(/main\s+10 GiB\s+90 GiB\s+2\.5×/);
    expect(overlong(f)).toEqual([]);
    expect(f.split('\n').length).toBeLessThanOrEqual(24);
  });

  it('shows a running session with its progress from events', async () => {
    const api = seeded();
    api.sessionsList.push(makeSession({id: 's-2', state: 'running', endedAt: undefined}));
    r = await renderApp(api);
    await r.waitFor('▶ nightly');
    await r.press(''); // no-op: keeps act() flushing
    await r!.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'vm-started', vmId: 'vm-1', vmName: 'web01', incremental: false, disks: [{key: 'd1', name: 'disk', size: 1000}]}}));
    await r!.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'disk-progress', vmId: 'vm-1', disk: 'd1', doneBytes: 500, size: 1000, readBytes: 500, rate: 100}}));
    const f = await r.waitFor('50%');
    expect(f).toMatch(/100 B\/s\s+5s left/);
  });

  it('shows a running restore with its progress too', async () => {
    const api = seeded();
    api.sessionsList.push(makeSession({id: 'r-3', jobId: 'restore', jobName: 'Restore of web01', trigger: 'restore', state: 'running', endedAt: undefined}));
    r = await renderApp(api);
    await r.waitFor('▶ Restore of web01');
    await r!.act(() => api.emit({type: 'engine', sessionId: 'r-3', jobId: 'restore', event: {type: 'vm-started', vmId: 'vm-1', vmName: 'web01', incremental: false, disks: [{key: 'd1', name: 'disk', size: 1000}]}}));
    await r!.act(() => api.emit({type: 'engine', sessionId: 'r-3', jobId: 'restore', event: {type: 'disk-progress', vmId: 'vm-1', disk: 'd1', doneBytes: 250, size: 1000, readBytes: 250, rate: 50}}));
    await r.waitFor('25%');
  });

  it('says when email reports cannot be delivered, with the server answer and what to do', async () => {
    const api = seeded();
    api.statusExtra = {mail: {pending: 2, failed: 0, lastError: {message: 'The SMTP server refused the password (535)', hint: 'Check the user and password'}}};
    r = await renderApp(api);
    const f = await r.waitFor('Email: 2 report(s) waiting');
    expect(f).toContain('refused the password');
  });

  it('puts a failed health check and low space at the top', async () => {
    const api = seeded();
    api.statusExtra = {repositories: [{id: 'main', name: 'main', path: '/srv', usedBytes: 95, freeBytes: 5, totalBytes: 100, needsFullVms: 2}]};
    r = await renderApp(api);
    await r.waitFor('low on space');
    await r.act(() => api.emit({type: 'maintenance', repository: 'main', action: 'verify', state: 'finished', detail: '3 problems'}));
    const f = await r.waitFor('found damage');
    const top = f.split('\n').slice(1, 4).join('\n');
    expect(top).toContain('✖ Repository main: the health check found damage (3 problems)');
    expect(top).toContain('✖ nightly: 1 VM failed');
    expect(top).toContain('⚠ Repository main: low on space (5% free)');
    expect(f).toContain('… and 1 more');
  });

  it('warns about space at the appliance’s threshold, not a fixed one', async () => {
    const api = seeded();
    api.settingsData = {lowSpacePercent: 95};
    r = await renderApp(api);
    const f = await r.waitFor('low on space');
    expect(f).toContain('⚠ Repository main: low on space (90% free)');
  });

  it('follows a resize of the terminal', async () => {
    r = await renderApp(seeded());
    let f = await r.waitFor('nightly');
    expect(f.split('\n').every((l) => [...l].length <= 80)).toBe(true);
    await r.resize(120, 40);
    f = await r.waitFor(/Repository\s{60,}/);
    expect(overlong(f, 120)).toEqual([]);
  });

  it('grows with the window', async () => {
    r = await renderApp(seeded(), undefined, {columns: 120, rows: 40});
    const f = await r.waitFor('nightly');
    expect(f.split('\n').some((l) => l.length > 80)).toBe(true);
    expect(overlong(f, 120)).toEqual([]);
  });

  it('says in words when the daemon is not running', async () => {
    const api = seeded();
    api.fail('status', new UserError('vmbackupd is not running (nothing listens on /run/vmbackup/api.sock).', {hint: 'Start it with systemctl start vmbackupd.', exitCode: ExitCode.unreachable}));
    r = await renderApp(api);
    const f = await r.waitFor('not running');
    expect(f).toContain('✖ vmbackupd is not running');
    expect(f).toContain('systemctl start vmbackupd');
  });

  it('Enter opens the job; ↓ ↓ Enter in one write in the menu opens the third screen; Esc goes back', async () => {
    const api = seeded();
    r = await renderApp(api);
    await r.waitFor('nightly');
    await r.press(KEY.enter);
    await r.waitFor('Run the job now');
    await r.press(KEY.esc);
    await r.waitFor('Enter open job');
    await r.press('m');
    await r.waitFor('Repositories');
    await r.press(KEY.down + KEY.down + KEY.enter);
    expect(r.frame().split('\n')[0]).toContain('Menu › Workers');
  });

  it('? opens help, Esc closes it, q quits', async () => {
    r = await renderApp(seeded());
    await r.waitFor('nightly');
    await r.press('?');
    expect(r.frame()).toContain('Help: Dashboard');
    await r.press(KEY.esc);
    expect(r.frame()).not.toContain('Help: Dashboard');
    await r.press('q');
    await r.waitFor(/./);
    expect(r.exited()).toBe(true);
  });
});
