/**
 * Instant recovery in the console against the fake API (its replies are checked against the real
 * daemon's in test/daemon/instant.test.ts): the restore wizard's "Start it from the backup now"
 * (libvirt restore points; an oVirt one "on a libvirt host" when there is a libvirt connection), the dashboard's line and `i`, and the instant screen's
 * finish (with progress, rate and time left) and stop (asks first; No is the first choice).
 */
import {afterEach, describe, expect, it} from 'vitest';
import type {RestorePointInfo} from '../../src/console/api.js';
import {initRestore, instantRequest, restoreReducer} from '../../src/console/screens/restore/restore-state.js';
import {makeSession, seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

const POINTS: RestorePointInfo[] = [
  {id: 'rp-k', vmId: 'u-1', vmName: 'db01', time: '2026-11-22T22:00:00Z', type: 'full', sizeBytes: 8 * 2 ** 30, storedBytes: 0, protected: false, platform: 'libvirt', disks: [{key: 'vda', name: 'vda', size: 8 * 2 ** 30}]},
  {id: 'rp-o', vmId: 'vm-1', vmName: 'web01', time: '2026-11-22T22:00:00Z', type: 'full', sizeBytes: 2 ** 30, storedBytes: 0, protected: false, platform: 'ovirt', disks: [{key: 'd1', name: 'web01_disk', size: 2 ** 30}]},
];

function api() {
  const a = seeded();
  a.points.main = POINTS;
  return a;
}

describe('instant recovery in the console', () => {
  it('the request: name, host and storage when given, no network unless asked', () => {
    let s = restoreReducer(initRestore('main'), {type: 'vm', id: 'u-1'});
    s = restoreReducer(s, {type: 'point', point: POINTS[0]!});
    s = restoreReducer(s, {type: 'target', target: 'instant'});
    expect(s.step).toBe('details');
    s = restoreReducer(s, {type: 'details', values: {name: ' db01-now ', host: '', storage: ' /srv/fast ', network: 'no'}});
    expect(instantRequest(s)).toEqual({repository: 'main', restorePointId: 'rp-k', network: false, name: 'db01-now', storage: '/srv/fast'});
    expect(instantRequest({...s, details: {network: 'yes'}})).toEqual({repository: 'main', restorePointId: 'rp-k', network: true});
  });

  it('restore wizard → "Start it from the backup now" → the VM runs → the instant screen lists it', async () => {
    const a = api();
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('db01');
    await r.press(KEY.enter); // db01 (VMs sort by name)
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    const where = await r.waitFor('Start it from the backup now');
    expect(overlong(where)).toEqual([]);
    // original place, new VM, disks to a VM, disks to files, browse files, then this one.
    await r.press(KEY.down.repeat(5) + KEY.enter);
    await r.waitFor('Overlay directory');
    await r.press(`${KEY.enter}${KEY.enter}/srv/fast${KEY.enter}${KEY.enter}`);
    const summary = await r.waitFor('Start the VM now');
    expect(summary).toContain('Starts: a new VM "db01-instant" from the backup, without network');
    expect(overlong(summary)).toEqual([]);
    await r.press(KEY.enter);
    await r.waitFor('Running from backup');
    expect(a.called('startInstant')[0]!.args[0]).toEqual({repository: 'main', restorePointId: 'rp-k', network: false, name: 'db01-instant', storage: '/srv/fast'});
    const list = await r.waitFor('db01-instant');
    expect(list).toContain('kvm1 · runs from the backup');
  });

  it('an oVirt restore point: not offered without a libvirt connection; with one, started there (cross-platform)', async () => {
    const a = api();
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('web01');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    const f = await r.waitFor('Chosen disks to image files');
    expect(f).not.toContain('from the backup now');
    expect(f).not.toContain('on a libvirt host now');
    await r.unmount();

    const b = api();
    b.data.connections.push({id: 'kvm', kind: 'morpheus', name: 'KVM hosts', clusters: [{name: 'c1', hosts: [{name: 'kvm1', connection: {kind: 'local'}}]}]});
    r = await renderApp(b, {name: 'restore'});
    await r.waitFor('web01');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    const where = await r.waitFor('Start it on a libvirt host now');
    expect(overlong(where)).toEqual([]);
    // original place, new VM, disks to a VM, disks to files, browse files, then this one.
    await r.press(KEY.down.repeat(5) + KEY.enter);
    const form = await r.waitFor('libvirt hosts');
    expect(form).toContain('KVM hosts');
    await r.press(KEY.enter.repeat(5));
    await r.waitFor('Start the VM now');
    await r.press(KEY.enter);
    await r.waitFor('Running from backup');
    expect(b.called('startInstant')[0]!.args[0]).toEqual({repository: 'main', restorePointId: 'rp-o', network: false, name: 'web01-instant', connection: 'kvm'});
  });

  it('finish: a storage directory, then the move with progress, rate and time left', async () => {
    const a = api();
    await a.startInstant({repository: 'main', restorePointId: 'rp-k', network: false});
    r = await renderApp(a, {name: 'instant'});
    await r.waitFor('db01-instant');
    await r.press(KEY.enter);
    await r.waitFor('Finish: move it to storage');
    await r.press(KEY.enter);
    await r.waitFor('Storage directory');
    await r.press(`/srv/prod${KEY.enter}`);
    await r.waitFor('moving to storage');
    expect(a.called('finishInstant')[0]!.args).toEqual(['instant-1', '/srv/prod']);
    a.instant[0]!.progress = {doneBytes: 2 * 2 ** 30, totalBytes: 8 * 2 ** 30};
    await r.waitFor('2.0 GiB of 8.0 GiB');
    a.instant[0]!.progress = {doneBytes: 4 * 2 ** 30, totalBytes: 8 * 2 ** 30};
    const f = await r.waitFor('4.0 GiB of 8.0 GiB');
    expect(f).toMatch(/4\.0 GiB of 8\.0 GiB · [\d.]+ (MiB|GiB)\/s · \S+ left/);
    expect(overlong(f)).toEqual([]);
    a.instant = [];
    await r.waitFor('Back to the list');
  });

  it('stop asks first (No is the first choice), then discards', async () => {
    const a = api();
    await a.startInstant({repository: 'main', restorePointId: 'rp-k', network: true, name: 'db01-try'});
    r = await renderApp(a, {name: 'instant'});
    await r.waitFor('db01-try');
    await r.press(KEY.enter);
    await r.waitFor('Stop and discard it');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Stop and discard db01-try?');
    await r.press(KEY.enter); // No
    await r.waitFor('Finish: move it to storage');
    expect(a.called('stopInstant')).toEqual([]);
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Yes, discard it');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('db01-try was stopped and discarded.');
    expect(a.called('stopInstant')[0]!.args).toEqual(['instant-1']);
    expect(a.instant).toEqual([]);
  });

  it('the dashboard shows a VM running from a backup; i opens the instant screen', async () => {
    const a = api();
    await a.startInstant({repository: 'main', restorePointId: 'rp-k', network: false});
    a.sessionsList.push(makeSession({id: 'instant-1', jobId: 'restore', jobName: 'Instant recovery of db01', trigger: 'instant', state: 'running', endedAt: undefined}));
    r = await renderApp(a, {name: 'dashboard'});
    const f = await r.waitFor('Instant recovery of db01: runs from the backup');
    expect(f).toContain('i instant VMs');
    expect(overlong(f)).toEqual([]);
    await r.press('i');
    await r.waitFor('db01-instant');
  });
});
