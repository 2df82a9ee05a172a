/** The New Backup Job wizard against the fake API: every step, bursts, warnings, back, edit. */
import {afterEach, describe, expect, it} from 'vitest';
import {initPicker, pickerReducer, rows, trackingWarnings} from '../../src/console/screens/job-wizard/vm-picker-state.js';
import {fromJob, initWizard, toJob, wizardReducer} from '../../src/console/screens/job-wizard/wizard-state.js';
import type {JobConfig} from '../../src/config/schema.js';
import {jobSchema} from '../../src/config/schema.js';
import {seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

describe('wizard reducers', () => {
  it('the picker picks clusters, VMs, tags; excludes; chooses disks; searches; warns about RAW', () => {
    const vms = seeded().inventoryVms.engine!;
    let s = initPicker(undefined, vms);
    expect(rows(s).map((x) => (x.kind === 'vm' ? x.vm.name : `${x.kind}:${'name' in x ? x.name : ''}`))).toEqual(['cluster:Default', 'web01', 'web02', 'cluster:Prod', 'db01', 'tag:db', 'tag:web']);
    const key = (input: string, k = {}) => (s = pickerReducer(s, {type: 'key', input, key: k}));
    key(' '); // cluster Default
    key('', {downArrow: true});
    key('x'); // exclude web01
    expect(s.sel).toMatchObject({clusters: ['Default'], exclude: ['vm-1']});
    expect(trackingWarnings(s)).toEqual([]);
    key('/');
    for (const ch of 'db0') key(ch);
    key('', {return: true});
    key(' ');
    expect(s.sel.vms).toEqual([{id: 'vm-3', name: 'db01'}]);
    expect(trackingWarnings(s)[0]).toContain('db01: db01_raw (raw)');
    key('d');
    key('', {downArrow: true});
    key(' '); // deselect the RAW disk: no warning any more
    expect(s.sel.vms).toEqual([{id: 'vm-3', name: 'db01', disks: []}]);
    expect(trackingWarnings(s)).toEqual([]);
  });

  it('a job made by the wizard passes the daemon’s schema and comes back the same for editing', () => {
    let s = initWizard({repository: 'main', name: 'web', preset: 'weekdays', at: '21:30', gfs: 'yes', recipients: 'a@example.com', 'webhook:chat': 'yes', 'webhook:other': 'no'}, undefined, 'engine');
    s = wizardReducer(s, {type: 'selection', selection: {vms: [{id: 'vm-1', name: 'web01'}], clusters: [], hosts: [], tags: ['web'], exclude: []}});
    const job = jobSchema.parse(toJob(s, 'web')) as JobConfig;
    expect(job.schedule).toEqual({kind: 'daily', at: '21:30', days: ['mon', 'tue', 'wed', 'thu', 'fri']});
    expect(job.retention).toEqual({restorePoints: 14, gfs: {weekly: 4, monthly: 12, yearly: 1}});
    expect(job.notification.webhooks).toEqual(['chat']);
    const back = fromJob({...job, notification: {...job.notification, onlyLastAttempt: false, subject: 'custom %JobName%'}});
    // What the wizard does not show (the subject, only-last-attempt) survives an edit.
    expect(jobSchema.parse(toJob(back, 'web'))).toEqual({...job, notification: {...job.notification, onlyLastAttempt: false, subject: 'custom %JobName%'}});
  });

  it('a step with something missing stays and says what', () => {
    let s = initWizard();
    s = wizardReducer(s, {type: 'next'});
    expect([s.step, s.problem]).toEqual([0, 'Give the job a name.']);
    s = wizardReducer(s, {type: 'next', values: {name: 'x'}});
    s = wizardReducer(s, {type: 'next'});
    expect([s.step, s.problem]).toEqual([1, 'Add a connection first (menu → Connections).']);
  });
});

describe('job wizard screen', () => {
  it('walks every step with bursts, shows the RAW warning at selection, the cron in words, saves and runs', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job-wizard'});
    await r.waitFor('step 1/7: Name');
    await r.press(`Web prod; ü${KEY.enter}front ends${KEY.enter}`);
    await r.waitFor('step 2/7');
    expect(overlong(r.frame())).toEqual([]);
    // cluster Prod is the 4th row: ↓ ↓ ↓ Space in one write.
    await r.press(`${KEY.down}${KEY.down}${KEY.down} `);
    let f = await r.waitFor('⚠ db01: db01_raw (raw)');
    expect(f).toMatch(/\[~\]\s+db01/);
    await r.press(KEY.enter);
    await r.waitFor('step 3/7: Storage');
    await r.press(KEY.enter.repeat(7));
    await r.waitFor('step 4/7: Schedule');
    // Choose "cron expression" (4 × →), go to the cron field and type one.
    await r.press(`${KEY.right.repeat(4)}${KEY.down.repeat(4)}`);
    await r.press(KEY.backspace.repeat(20) + '30 1 * * 6');
    f = await r.waitFor('Means: At 01:30, only on Saturday');
    expect(f).toMatch(/Next runs: \d{4}-\d\d-\d\d 01:30 · \d{4}-\d\d-\d\d 01:30 · \d{4}-\d\d-\d\d 01:30/);
    await r.press(KEY.enter);
    await r.waitFor('step 5/7');
    // Esc goes back one step, the values stay.
    await r.press(KEY.esc);
    await r.waitFor('step 4/7');
    expect(r.frame()).toContain('30 1 * * 6');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('step 5/7');
    // The last field turns the boot check (restore verification) on.
    await r.press(KEY.enter.repeat(4) + ' ' + KEY.enter);
    await r.waitFor('step 6/7');
    await r.press(KEY.enter.repeat(4));
    f = await r.waitFor('step 7/7: Summary');
    expect(f).toContain('VMs: cluster Prod (1 now)');
    expect(f).toContain('boot check yes');
    expect(overlong(f)).toEqual([]);
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Session');
    const job = api.data.jobs[1]!;
    expect(job).toMatchObject({id: 'web-prod-u', name: 'Web prod; ü', description: 'front ends', repository: 'main', schedule: {kind: 'cron', expression: '30 1 * * 6'}, restoreVerification: {enabled: true, timeoutSeconds: 300}});
    expect(() => jobSchema.parse(job)).not.toThrow();
    expect(api.called('startJob')[0]!.args).toEqual(['web-prod-u']);
  });

  it('"/q" in one burst searches for q instead of quitting; q outside the search quits', async () => {
    r = await renderApp(seeded(), {name: 'job-wizard'});
    await r.press(`x${KEY.enter}${KEY.enter}`);
    await r.waitFor('web01');
    await r.press('/q?');
    expect(r.frame()).toContain('Search: q?');
    expect(r.exited()).toBe(false);
    await r.press(`${KEY.backspace}${KEY.backspace}${KEY.backspace}${KEY.enter}?`);
    expect(r.frame()).toContain('Help: Job wizard');
    // (ESC and q in one chunk would read as Alt-q: two writes.)
    await r.press(KEY.esc);
    await r.press('q');
    await r.waitFor(/./);
    expect(r.exited()).toBe(true);
  });

  it('after c the VMs shown and picked are the new connection\'s, never the previous one\'s while it loads', async () => {
    const api = seeded();
    api.data.connections.push({id: 'kvm', kind: 'morpheus', name: 'kvm', clusters: []});
    api.inventoryVms.kvm = [{id: 'lv-1', name: 'libvirt-vm', state: 'running', tags: [], disks: [{key: 'vda', name: 'vda', format: 'qcow2', size: 2 ** 30, trackable: true}]}];
    // The second connection's inventory takes a while (a host over SSH).
    let release: () => void = () => {};
    const slow = new Promise<void>((res) => (release = res));
    const inventory = api.inventory.bind(api);
    api.inventory = async (c, refresh) => {
      if (c === 'kvm') await slow;
      return inventory(c, refresh);
    };
    r = await renderApp(api, {name: 'job-wizard'});
    await r.press(`mixed${KEY.enter}${KEY.enter}`);
    await r.waitFor('web01');
    // c, then ↓ Space Enter typed ahead while kvm's VMs load: they go to kvm's list
    // ("(no cluster)", then libvirt-vm), not to web01's.
    await r.press('c');
    await r.waitFor('Connection: kvm');
    expect(r.frame()).not.toContain('web01');
    await r.press(`${KEY.down} `);
    release();
    await r.waitFor(/\[x\]\s+libvirt-vm/);
    await r.press(KEY.enter);
    await r.waitFor('step 3/7');
    await r.press(KEY.enter.repeat(7));
    await r.waitFor('step 4/7');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('step 5/7');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('step 6/7');
    await r.press(KEY.enter.repeat(4));
    await r.waitFor('step 7/7: Summary');
    await r.press(KEY.enter);
    await r.waitFor('mixed');
    const job = api.data.jobs.find((j) => j.id === 'mixed') as unknown as JobConfig;
    expect(job.source).toMatchObject({connection: 'kvm', vms: [{id: 'lv-1'}]});
  });

  it('Tab on the VM step takes every default to the summary; a step changed from there comes back to it', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job-wizard'});
    await r.press(`quick${KEY.enter}${KEY.enter}`);
    await r.waitFor('web01');
    await r.press(`${KEY.down} ${KEY.tab}`);
    let f = await r.waitFor('step 7/7: Summary');
    expect(f).toContain('Schedule: At 22:00');
    // Change the schedule from the summary: the 4th "Change" item; Enter on its last field returns.
    await r.press(KEY.down.repeat(5) + KEY.enter);
    await r.waitFor('step 4/7: Schedule');
    await r.press(KEY.down + KEY.backspace.repeat(5) + '21:30');
    await r.press(KEY.enter.repeat(4));
    f = await r.waitFor('step 7/7: Summary');
    expect(f).toContain('Schedule: At 21:30');
    await r.press(KEY.enter);
    // The job's screen says so: the message does not vanish with the wizard.
    await r.waitFor('✔ Job created.');
    expect(api.data.jobs.find((j) => j.id === 'quick')).toMatchObject({schedule: {kind: 'daily', at: '21:30'}, source: {vms: [{id: 'vm-1', name: 'web01'}]}});
  });

  it('shows how old the inventory is, and r reads it again from the platform (a VM made meanwhile appears)', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job-wizard'});
    await r.press(`fresh${KEY.enter}${KEY.enter}`);
    let f = await r.waitFor('web01');
    expect(f).toMatch(/inventory of \d\d:\d\d/);
    expect(f).not.toContain('brand-new');
    api.inventoryVms.engine!.push({id: 'vm-9', name: 'brand-new', state: 'running', cluster: 'Default', tags: [], disks: []});
    await r.press('r');
    f = await r.waitFor('brand-new');
    expect(api.called('inventory').at(-1)!.args).toEqual(['engine', true]);
  });

  it('will not leave the VM step without a pick, and Esc on the first step cancels', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job-wizard'});
    await r.press(`x${KEY.enter}${KEY.enter}`);
    await r.waitFor('step 2/7');
    await r.waitFor('web01');
    await r.press(KEY.enter);
    await r.waitFor('✖ Pick at least one VM');
    await r.press(KEY.esc);
    await r.waitFor('step 1/7');
    await r.press(KEY.esc);
    await r.waitFor('Enter open job');
    expect(api.data.jobs).toHaveLength(1);
  });

  it('edit opens the same steps filled and saves with PUT', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job-wizard', params: {id: 'nightly'}});
    await r.waitFor('Edit job · step 1/7');
    expect(r.frame()).toContain('all web servers');
    await r.press(KEY.enter + KEY.enter);
    await r.waitFor('[x]   web01');
    await r.press(KEY.enter);
    await r.waitFor('step 3/7');
    await r.press(KEY.enter.repeat(7));
    await r.waitFor('step 4/7');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('step 5/7');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('step 6/7');
    await r.press(KEY.enter.repeat(4));
    await r.waitFor('Summary');
    await r.press(KEY.enter);
    await r.waitFor('Run the job now');
    expect(api.called('update')[0]!.args.slice(0, 2)).toEqual(['jobs', 'nightly']);
    expect(api.data.jobs[0]).toMatchObject({schedule: {kind: 'daily', at: '22:00'}});
  });
});
