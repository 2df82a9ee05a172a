/** The restore wizard against the fake API: each kind of target, a deleted VM, live progress, a daemon without the endpoints. */
import {afterEach, describe, expect, it} from 'vitest';
import type {RestorePointInfo} from '../../src/console/api.js';
import {initRestore, request, restoreReducer} from '../../src/console/screens/restore/restore-state.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {makeSession, seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

const POINTS: RestorePointInfo[] = [
  {id: 'rp-1', vmId: 'vm-1', vmName: 'web01', time: '2026-11-21T22:00:00Z', type: 'full', sizeBytes: 5 * 2 ** 30, storedBytes: 0, protected: false, platform: 'ovirt', disks: [{key: 'd1', name: 'web01_disk', size: 10 * 2 ** 30}]},
  {id: 'rp-2', vmId: 'vm-1', vmName: 'web01', time: '2026-11-22T22:00:00Z', type: 'incremental', sizeBytes: 2 ** 28, storedBytes: 0, protected: false, platform: 'ovirt', disks: [{key: 'd1', name: 'web01_disk', size: 10 * 2 ** 30}, {key: 'd9', name: 'web01_data', size: 2 ** 30}]},
  {id: 'rp-3', vmId: 'vm-9', vmName: 'old-app', time: '2026-10-01T22:00:00Z', type: 'full', sizeBytes: 2 ** 30, vmExists: false, storedBytes: 0, protected: false, platform: 'ovirt', disks: [{key: 'd5', name: 'old_disk', size: 2 ** 30}]},
];

function api() {
  const a = seeded();
  a.points.main = POINTS;
  return a;
}

describe('restore reducer', () => {
  it('goes back over the details step for the original place and builds requests', () => {
    let s = initRestore('main');
    s = restoreReducer(s, {type: 'vm', id: 'vm-1'});
    s = restoreReducer(s, {type: 'point', point: POINTS[1]!});
    s = restoreReducer(s, {type: 'target', target: 'original'});
    expect(s.step).toBe('summary');
    expect(request(s)).toEqual({restorePointId: 'rp-2', repository: 'main', target: {kind: 'original'}});
    expect(restoreReducer(s, {type: 'back'}).step).toBe('target');
    s = restoreReducer(restoreReducer(s, {type: 'back'}), {type: 'target', target: 'files'});
    s = restoreReducer(s, {type: 'details', values: {directory: ' /srv/re store ', format: 'raw', disks: 'd9'}});
    expect(request(s)).toEqual({restorePointId: 'rp-2', repository: 'main', target: {kind: 'files', directory: '/srv/re store', format: 'raw'}, disks: ['d9']});
  });
});

describe('restore wizard screen', () => {
  it('whole VM as a new VM: VM → point → target → details → summary → progress → result', async () => {
    const a = api();
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('old-app');
    expect(r.frame()).toContain('no longer exists');
    await r.press(KEY.down + KEY.enter); // VMs sort by name: old-app, web01
    await r.waitFor('which restore point');
    expect(overlong(r.frame())).toEqual([]);
    expect(r.frame()).toMatch(/2026-11-2\d \d\d:00\s+incremental\s+256 MiB/);
    await r.press(KEY.enter);
    await r.waitFor('where to');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('New VM name');
    await r.press(`${KEY.enter}kvm2${KEY.enter}${KEY.enter}fast ssd${KEY.enter}`);
    const f = await r.waitFor('summary');
    expect(f).toContain('To: a new VM "web01-restored" on kvm2 on fast ssd');
    await r.press(KEY.enter);
    await r.waitFor('progress');
    expect(a.called('startRestore')[0]!.args[0]).toEqual({restorePointId: 'rp-2', repository: 'main', target: {kind: 'new', name: 'web01-restored', host: 'kvm2', cluster: undefined, storageDomain: 'fast ssd'}});
    await r!.act(() => a.emit({type: 'engine', sessionId: 'r-1', jobId: '', event: {type: 'vm-started', vmId: 'vm-1', vmName: 'web01', incremental: false, disks: [{key: 'd1', name: 'web01_disk', size: 100}]}}));
    await r!.act(() => a.emit({type: 'engine', sessionId: 'r-1', jobId: '', event: {type: 'disk-progress', vmId: 'vm-1', disk: 'd1', doneBytes: 50, size: 100, readBytes: 50, rate: 10}}));
    await r.waitFor('50%');
    await r!.act(() => a.emit({type: 'engine', sessionId: 'r-1', jobId: '', event: {type: 'vm-finished', vmId: 'vm-1', vmName: 'web01', status: 'success'}}));
    await r.waitFor('✔ Restore finished.');
  });

  it('a VM that no longer exists cannot go to its original place; disks to image files', async () => {
    const a = api();
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('old-app');
    await r.press(KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    const f = await r.waitFor('where to');
    expect(f).toContain('⚠ The VM no longer exists');
    expect(f).not.toContain('original place');
    await r.press(KEY.down + KEY.down + KEY.enter);
    await r.waitFor('Directory');
    await r.press(`/srv/restore${KEY.enter}${KEY.right}${KEY.enter}${KEY.enter}`);
    await r.waitFor('summary');
    expect(r.frame()).toContain('raw files in /srv/restore');
    // What the restore will create, from the daemon, before it is confirmed.
    const f2 = await r.waitFor('Creates: disk vda: raw image /srv/restore/web01-vda.raw');
    expect(f2).toContain('Start the restore');
    expect(a.called('planRestore')[0]!.args[0]).toMatchObject({target: {kind: 'files', directory: '/srv/restore', format: 'raw'}});
  });

  it('a restore the daemon would refuse says why on the summary and offers only Back', async () => {
    const a = api();
    a.fail('planRestore', new UserError('A VM named web01-restored already exists on kvm2.', {hint: 'Choose another name.', exitCode: ExitCode.invalidInput}));
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('old-app');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    await r.waitFor('where to');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('New VM name');
    await r.press(`${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    const f = await r.waitFor('already exists on kvm2');
    expect(f).toContain('Choose another name.');
    expect(f).not.toContain('Start the restore');
    await r.press(KEY.enter); // ← Back
    await r.waitFor('New VM name');
    expect(a.called('startRestore')).toHaveLength(0);
  });

  it("a libvirt VM's UEFI variable store is labelled as such and not chosen for an existing VM", async () => {
    const a = api();
    a.points.main = [
      ...POINTS,
      {id: 'rp-u', vmId: 'vm-u', vmName: 'a-uefi', time: '2026-11-22T22:00:00Z', type: 'full', sizeBytes: 2 ** 30, storedBytes: 0, protected: false, platform: 'libvirt', disks: [{key: 'vda', name: 'a-uefi.qcow2', size: 2 ** 30}, {key: 'nvram', name: 'a-uefi_VARS.fd', size: 540672}]},
    ];
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('a-uefi');
    await r.press(KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    await r.waitFor('where to');
    await r.press(KEY.down + KEY.down + KEY.enter);
    const f = await r.waitFor('Target VM id');
    expect(f).toContain('UEFI vars (nvram)');
    expect(f).not.toContain('a-uefi_VARS.fd');
    await r.press(`vm-7${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('summary');
    expect(r.frame()).toContain('Disks: vda');
    expect(r.frame()).not.toContain('nvram');
  });

  it('while the restore points load it says so, never "no restore points yet"', async () => {
    const a = api();
    let release: () => void = () => {};
    const gate = new Promise<void>((res) => (release = res));
    const points = a.restorePoints.bind(a);
    a.restorePoints = async (repo) => {
      await gate;
      return points(repo);
    };
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('reading restore points');
    expect(r.frame()).not.toContain('no restore points yet');
    release();
    await r.waitFor('old-app');
  });

  it('a restore session offers no job history, and h there does nothing', async () => {
    const a = api();
    a.sessionsList.push(makeSession({id: 'r-7', jobId: 'restore', jobName: 'restore', state: 'success'}));
    r = await renderApp(a, {name: 'session', params: {id: 'r-7'}});
    const f = await r.waitFor('restore');
    expect(f).not.toContain('h job history');
    await r.press('h');
    await r.press('f');
    expect(r.frame()).not.toContain('There is no job');
    expect(a.called('retryFailed')).toHaveLength(0);
    // s stops the restore, not a job called "restore".
    await r.press('s');
    await r.waitFor('The restore is not running.');
    expect(a.called('stopRestore')[0]!.args).toEqual(['r-7']);
    expect(a.called('stopJob')).toHaveLength(0);
  });

  it('Esc steps back through the wizard and leaves from the first step', async () => {
    r = await renderApp(api(), {name: 'restore'});
    await r.waitFor('old-app');
    await r.press(KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.esc);
    await r.waitFor('which VM');
    await r.press(KEY.esc);
    await r.waitFor('Enter open job');
  });

  it('a daemon without the restore endpoints says so', async () => {
    const a = api();
    a.missing('restorePoints', '/repositories/main/restore-points');
    r = await renderApp(a, {name: 'restore'});
    const f = await r.waitFor('does not offer');
    expect(f).toContain('✖ This daemon does not offer that yet.');
  });
});
