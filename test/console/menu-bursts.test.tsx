/** Every menu: ↓ ↓ Enter (or ↓ Enter where there are two items) in ONE write chooses the right item. */
import {afterEach, describe, expect, it} from 'vitest';
import type {Route} from '../../src/console/router/use-router-state.js';
import {makeSession, seeded} from './fake-api.js';
import {KEY, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

const D = KEY.down;
const CASES: {menu: string; route: Route; ready: string; keys: string; expect: string | RegExp}[] = [
  {menu: 'main menu', route: {name: 'menu'}, ready: 'Repositories', keys: D + D + KEY.enter, expect: 'Menu › Workers'},
  {menu: 'job actions', route: {name: 'job', params: {id: 'nightly'}}, ready: 'Run the job now', keys: D + D + D + KEY.enter, expect: 'Edit job · step 1/7'},
  {menu: 'job history', route: {name: 'job', params: {id: 'nightly'}}, ready: 'failed', keys: D + D + D + D + D + D + D + KEY.enter, expect: '✔ nightly · success'},
  {menu: 'jobs list', route: {name: 'jobs'}, ready: 'nightly', keys: D + KEY.enter, expect: 'step 1/7: Name'},
  {menu: 'sessions list', route: {name: 'sessions'}, ready: 'nightly', keys: D + KEY.enter, expect: /started 2026-11-2\d/},
  {menu: 'repository list', route: {name: 'repositories'}, ready: 'main', keys: D + D + KEY.enter, expect: 'Give the directory of an existing repository'},
  {menu: 'repository actions', route: {name: 'repositories'}, ready: 'main', keys: KEY.enter, expect: 'Verify now'},
  {menu: 'connection list', route: {name: 'connections'}, ready: 'engine', keys: D + KEY.enter, expect: 'Which platform'},
  {menu: 'platform choice', route: {name: 'connection-add'}, ready: 'Which platform', keys: D + KEY.enter, expect: 'Where does libvirt run?'},
  {menu: 'platform choice, then where libvirt runs', route: {name: 'connection-add'}, ready: 'Which platform', keys: D + KEY.enter + KEY.enter, expect: 'SSH key file'},
  {menu: 'workers list', route: {name: 'workers'}, ready: 'Add a worker', keys: KEY.enter, expect: 'Slots'},
  {menu: 'set-up step', route: {name: 'first-start'}, ready: 'Set-up 1/6', keys: D + KEY.enter, expect: 'Set-up 2/6'},
  // Keys typed ahead past a screen change belong to the screen that the Enter opened.
  {menu: 'across a screen change', route: {name: 'menu'}, ready: 'Repositories', keys: D + D + KEY.enter + KEY.enter, expect: 'Slots'},
  {menu: 'across a screen change, then down the next list', route: {name: 'menu'}, ready: 'Repositories', keys: D + D + D + D + D + KEY.enter + D + KEY.enter, expect: 'step 1/7: Name'},
];

describe('menu bursts', () => {
  for (const c of CASES) {
    it(c.menu, async () => {
      const api = seeded();
      api.sessionsList.push(makeSession({id: 's-9', startedAt: '2026-11-20T02:00:00Z', state: 'success'}));
      r = await renderApp(api, c.route);
      await r.waitFor(c.ready);
      await r.press(c.keys);
      await r.waitFor(c.expect);
    });
  }
});

describe('keys typed ahead into a loading screen', () => {
  it('wait for it, but Esc leaves a screen that never loads at once', async () => {
    const api = seeded();
    api.list = () => new Promise<never>(() => {});
    r = await renderApp(api, {name: 'workers'});
    await r.waitFor('loading');
    await r.press(KEY.down);
    await r.press(KEY.esc);
    // Well before the hold would end by itself (HOLD_MAX_MS, 3 s).
    await r.waitFor('vmbackup › Dashboard', 2000);
  });
});

describe('text typed ahead across a screen change', () => {
  it('the text sent with the Enter that opens a form lands in the form', async () => {
    r = await renderApp(seeded(), {name: 'connection-add'});
    await r.waitFor('Which platform');
    await r.press(`${KEY.enter}olvm${KEY.enter}https://olvm.example.com`);
    const f = await r.waitFor('https://olvm.example.com');
    expect(f).toMatch(/Name\s+olvm/);
  });

  it('n and a name on the dashboard open the wizard with that name, not the selected job', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'dashboard'});
    await r.waitFor('nightly');
    await r.press(`nweb servers${KEY.enter}`);
    await r.waitFor('step 1/7: Name');
    const f = await r.waitFor(/Name\s+web servers/);
    expect(f).not.toContain('Run the job now');
  });

  it('Esc Esc in one write goes back two screens', async () => {
    r = await renderApp(seeded(), {name: 'dashboard'});
    await r.waitFor('nightly');
    await r.press('m');
    await r.waitFor('Repositories');
    await r.press(KEY.down + KEY.down + KEY.enter);
    await r.waitFor('Menu › Workers');
    await r.press(KEY.esc + KEY.esc);
    await r.waitFor('vmbackup › Dashboard');
  });
});
