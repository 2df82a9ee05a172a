/** The first-start walk-through against an empty fake appliance. */
import {afterEach, describe, expect, it} from 'vitest';
import {initSetup, setupReducer} from '../../src/console/screens/first-start/first-start-state.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {FakeApi, FINGERPRINT} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

describe('first start', () => {
  it('reducer: now/skip/done/back', () => {
    let s = setupReducer(initSetup(), {type: 'now'});
    s = setupReducer(s, {type: 'back'});
    expect(s).toMatchObject({step: 0, form: false});
    s = setupReducer(setupReducer(s, {type: 'skip'}), {type: 'now'});
    s = setupReducer(s, {type: 'done'});
    expect(s).toMatchObject({step: 2, outcome: {demo: 'skipped', repository: 'done'}});
    expect(setupReducer(initSetup(), {type: 'back'}).left).toBe(true);
    // A demo lab brings the repository and the connections: the walk-through goes on with the workers.
    expect(setupReducer(setupReducer(initSetup(), {type: 'now'}), {type: 'demo-done'})).toMatchObject({
      step: 3,
      form: false,
      outcome: {demo: 'done', repository: 'done', connection: 'done'},
    });
    expect(setupReducer(s, {type: 'demo-done'})).toBe(s);
  });

  it('no demo lab → repository → oVirt connection (CA confirmed, tested) → skip workers → skip email → job wizard', async () => {
    const api = new FakeApi();
    r = await renderApp(api, {name: 'first-start'});
    await r.waitFor('Set-up 1/6: Demo lab');
    expect(r.frame()).toContain('Set up a demo lab? (two libvirt VMs and an oVirt simulator with two VMs)');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 2/6: Backup repository');
    expect(api.called('demoLab')).toEqual([]);
    expect(overlong(r.frame())).toEqual([]);
    await r.press(KEY.enter);
    await r.waitFor('Directory');
    await r.press(`main${KEY.enter}/srv/backup/main${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('Set-up 3/6');
    expect(api.data.repositories).toEqual([expect.objectContaining({id: 'main', name: 'main', path: '/srv/backup/main'})]);
    await r.press(KEY.enter);
    await r.waitFor('Which platform');
    await r.press(KEY.enter);
    await r.waitFor('Engine URL');
    await r.press(`olvm${KEY.enter}https://olvm.example.com/ovirt-engine${KEY.enter}admin@internal${KEY.enter}secret${KEY.enter}`);
    await r.waitFor(FINGERPRINT.slice(0, 47));
    await r.press(KEY.enter);
    await r.waitFor('Set-up 4/6: Workers');
    expect(api.data.connections[0]).toMatchObject({id: 'olvm', caFingerprint: FINGERPRINT});
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 5/6: Email');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 6/6: First backup job');
    await r.press(KEY.enter);
    await r.waitFor('New backup job · step 1/7');
    // Esc from the wizard's first step comes back to the dashboard.
    await r.press(KEY.esc);
    await r.waitFor('No backup jobs yet');
  });

  it('skipping everything ends on a summary that says what is left to do', async () => {
    r = await renderApp(new FakeApi(), {name: 'first-start'});
    await r.waitFor('Set-up 1/6');
    for (let i = 0; i < 6; i++) {
      await r.press(KEY.down + KEY.enter);
    }
    const f = await r.waitFor('Set-up finished');
    expect(f).toContain('⚠ Backup repository: skipped – do it later from the menu (m)');
    expect(f).toContain('Demo lab: not set up (vmbackup demo-lab sets it up later)');
    await r.press(KEY.enter);
    await r.waitFor('No backup jobs yet');
  });

  it('demo lab → the lab repository and connections are there → workers → email → job wizard', async () => {
    const api = new FakeApi();
    r = await renderApp(api, {name: 'first-start'});
    await r.waitFor('Set-up 1/6: Demo lab');
    await r.press(KEY.enter);
    const f = await r.waitFor('Demo lab ready: 2 libvirt VMs, 2 oVirt VMs');
    expect(f).toContain('Repository: Demo repository (/srv/vmbackup/demo-repo)');
    expect(f).toContain('Demo KVM host: demo-web, demo-db');
    expect(overlong(f)).toEqual([]);
    expect(api.called('demoLab').length).toBe(1);
    expect(api.data.connections.map((c) => c.name)).toEqual(['Demo KVM host', 'Demo oVirt engine']);
    await r.press(KEY.enter);
    await r.waitFor('Set-up 4/6: Workers');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 5/6: Email');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 6/6: First backup job');
    await r.press(KEY.enter);
    // The wizard offers the lab's VMs: the connections are really there.
    await r.waitFor('New backup job · step 1/7');
  });

  it('a demo lab that fails shows the message and hint; try again, or skip to the repository step', async () => {
    const api = new FakeApi();
    api.fail('demoLab', new UserError('Setting up the demo lab failed: something else already listens on 127.0.0.1:8443', {hint: 'Run appliance/demo-lab.sh up by hand as root to see every step.', exitCode: ExitCode.platformFailed}));
    r = await renderApp(api, {name: 'first-start'});
    await r.waitFor('Set-up 1/6: Demo lab');
    await r.press(KEY.enter);
    const f = await r.waitFor('✖ Setting up the demo lab failed');
    expect(f).toContain('Run appliance/demo-lab.sh up by hand');
    await r.press(KEY.enter);
    while (api.called('demoLab').length < 2) await new Promise((res) => setTimeout(res, 10));
    await r.waitFor('Try again');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 2/6: Backup repository');
    expect(api.data.connections).toEqual([]);
  });

  it('a demo lab that outlasts the request (packages being installed) says to ask again', async () => {
    const api = new FakeApi();
    api.fail('demoLab', Object.assign(new Error('Headers Timeout Error'), {code: 'UND_ERR_HEADERS_TIMEOUT'}));
    r = await renderApp(api, {name: 'first-start'});
    await r.waitFor('Set-up 1/6: Demo lab');
    await r.press(KEY.enter);
    const f = await r.waitFor('still setting up the demo lab');
    expect(f).toContain('Ask again in a minute');
    expect(f).not.toContain('Headers Timeout');
  });
});
