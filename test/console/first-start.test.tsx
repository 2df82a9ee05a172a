/** The first-start walk-through against an empty fake appliance. */
import {afterEach, describe, expect, it} from 'vitest';
import {initSetup, setupReducer} from '../../src/console/screens/first-start/first-start-state.js';
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
    expect(s).toMatchObject({step: 2, outcome: {repository: 'skipped', connection: 'done'}});
    expect(setupReducer(initSetup(), {type: 'back'}).left).toBe(true);
  });

  it('repository → oVirt connection (CA confirmed, tested) → skip workers → skip email → job wizard', async () => {
    const api = new FakeApi();
    r = await renderApp(api, {name: 'first-start'});
    await r.waitFor('Set-up 1/5: Backup repository');
    expect(overlong(r.frame())).toEqual([]);
    await r.press(KEY.enter);
    await r.waitFor('Directory');
    await r.press(`main${KEY.enter}/srv/backup/main${KEY.enter}`);
    await r.waitFor('Set-up 2/5');
    expect(api.data.repositories).toEqual([{id: 'main', name: 'main', path: '/srv/backup/main'}]);
    await r.press(KEY.enter);
    await r.waitFor('Which platform');
    await r.press(KEY.enter);
    await r.waitFor('Engine URL');
    await r.press(`olvm${KEY.enter}https://olvm.example.com/ovirt-engine${KEY.enter}admin@internal${KEY.enter}secret${KEY.enter}`);
    await r.waitFor(FINGERPRINT.slice(0, 47));
    await r.press(KEY.enter);
    await r.waitFor('Set-up 3/5: Workers');
    expect(api.data.connections[0]).toMatchObject({id: 'olvm', caFingerprint: FINGERPRINT});
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 4/5: Email');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Set-up 5/5: First backup job');
    await r.press(KEY.enter);
    await r.waitFor('New backup job · step 1/7');
    // Esc from the wizard's first step comes back to the dashboard.
    await r.press(KEY.esc);
    await r.waitFor('No backup jobs yet');
  });

  it('skipping everything ends on a summary that says what is left to do', async () => {
    r = await renderApp(new FakeApi(), {name: 'first-start'});
    await r.waitFor('Set-up 1/5');
    for (let i = 0; i < 5; i++) {
      await r.press(KEY.down + KEY.enter);
    }
    const f = await r.waitFor('Set-up finished');
    expect(f).toContain('⚠ Backup repository: skipped – do it later from the menu (m)');
    await r.press(KEY.enter);
    await r.waitFor('No backup jobs yet');
  });
});
