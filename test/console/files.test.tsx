/**
 * The file browser (file-level restore) against the fake API (its replies are checked against the
 * real daemon's with real libguestfs in test/daemon/files.test.ts): opened from the restore
 * wizard, directories entered and left, entries marked with Space, copied out with c, and the
 * browser closed on the daemon when the screen is left.
 */
import {afterEach, describe, expect, it} from 'vitest';
import type {GuestEntry, RestorePointInfo} from '../../src/console/api.js';
import {seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

const POINT: RestorePointInfo = {id: 'rp-k', vmId: 'u-1', vmName: 'db01', time: '2026-11-22T22:00:00Z', type: 'full', sizeBytes: 8 * 2 ** 30, storedBytes: 0, protected: false, platform: 'libvirt', disks: [{key: 'vda', name: 'vda', size: 8 * 2 ** 30}]};

const entry = (name: string, type: GuestEntry['type'], size = 0, extra: Partial<GuestEntry> = {}): GuestEntry => ({
  name, type, size, mode: type === 'dir' ? 0o40755 : 0o100644, uid: 0, gid: 0, mtime: '2026-11-20T10:00:00.000Z', mtimeMs: Date.parse('2026-11-20T10:00:00Z'), atimeMs: 0, ...extra,
});

function api() {
  const a = seeded();
  a.points.main = [POINT];
  a.guestFiles = {
    '/': [entry('etc', 'dir'), entry('home', 'dir'), entry('vmlinuz', 'link', 0, {target: 'boot/vmlinuz-6.1'})],
    '/etc': [entry('hostname', 'file', 5), entry('nginx', 'dir'), entry('passwd', 'file', 1200)],
    '/etc/nginx': [],
  };
  return a;
}

describe('file browser', () => {
  it('restore wizard → browse → into /etc → mark two → copy out → back up → Esc at / closes it', async () => {
    const a = api();
    r = await renderApp(a, {name: 'restore'});
    await r.waitFor('db01');
    await r.press(KEY.enter);
    await r.waitFor('which restore point');
    await r.press(KEY.enter);
    await r.waitFor('Browse and copy files');
    await r.press(KEY.down.repeat(4) + KEY.enter);
    const root = await r.waitFor('vmlinuz → boot/vmlinuz-6.1');
    expect(root).toContain('[ ] etc/');
    expect(overlong(root)).toEqual([]);
    expect(a.called('openFiles')[0]!.args[0]).toEqual({repository: 'main', restorePointId: 'rp-k'});
    await r.press(KEY.enter); // etc/
    await r.waitFor('hostname');
    expect(r.frame()).toContain('..');
    await r.press(`${KEY.down} ${KEY.down}${KEY.down} `); // .. → hostname (mark) → nginx → passwd (mark)
    const f = await r.waitFor('2 marked');
    expect(f).toContain('[x] hostname');
    expect(f).toContain('[x] passwd');
    expect(f).toContain('[ ] nginx/');
    await r.press('c');
    await r.waitFor('Copy 2 marked entries');
    await r.press(KEY.enter);
    await r.waitFor('Copied 2 item(s) to /var/tmp/restore-db01.');
    expect(a.called('getFiles')[0]!.args).toEqual(['files-1', ['/etc/hostname', '/etc/passwd'], '/var/tmp/restore-db01']);
    // Marks are cleared after a copy; an empty directory says so; Backspace and Esc go up.
    await r.press(`${KEY.up}${KEY.enter}`); // nginx/
    await r.waitFor('(empty directory)');
    await r.press(KEY.backspace);
    await r.waitFor('passwd');
    expect(r.frame()).not.toContain('[x]');
    await r.press(KEY.esc);
    await r.waitFor('vmlinuz');
    expect(a.called('closeFiles')).toEqual([]);
    await r.press(KEY.esc);
    await r.waitFor('which VM');
    expect(a.called('closeFiles')[0]!.args).toEqual(['files-1']);
  });

  it('c with nothing marked copies the entry under the cursor; a failed open says why', async () => {
    const a = api();
    r = await renderApp(a, {name: 'files', params: {repository: 'main', point: 'rp-k'}});
    await r.waitFor('etc/');
    await r.press(`${KEY.down}${KEY.down}c`);
    await r.waitFor('Copy /vmlinuz');
    await r.press(`${KEY.backspace.repeat(40)}/srv/out${KEY.enter}`);
    await r.waitFor('Copied 1 item(s) to /srv/out.');
    expect(a.called('getFiles')[0]!.args).toEqual(['files-1', ['/vmlinuz'], '/srv/out']);
    await r.unmount();
    const b = api();
    b.points.main = [];
    r = await renderApp(b, {name: 'files', params: {repository: 'main', point: 'rp-k'}});
    await r.waitFor('has no restore point rp-k');
  });
});
