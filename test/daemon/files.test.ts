/**
 * The console's file browser on a real daemon with real libguestfs: open on a restore point
 * (held while open), list, copy out into a directory the daemon makes, then left alone it
 * closes by itself after the idle time (hold released, guestfish gone; one libguestfs start for
 * the whole file, the suite's time is counted); the console's fake answers in the same shapes.
 */
import {mkdir, readFile, readdir, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {consoleApi} from '../../src/console/api.js';
import {createRepository} from '../../src/repository/index.js';
import {FakeApi} from '../console/fake-api.js';
import {outside, shapeOf} from '../lib/shape.js';
import {backupImage, scratch} from '../repository/helpers.js';
import {isolate, sleep, startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let d: RunningDaemon;
let point: string;
const MiB = 1024 * 1024;

const holds = async () => (await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'));
/** The daemon's guestfish processes (its children). */
const guestfish = async () => (await execa('pgrep', ['-P', String(d.proc.pid), '-x', 'guestfish'], {reject: false})).stdout.split('\n').filter(Boolean).length;

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-daemon-files-'));
  const stage = join(dir, 'stage');
  await mkdir(join(stage, 'etc', 'app'), {recursive: true});
  await writeFile(join(stage, 'etc', 'hostname'), 'guest01\n');
  await writeFile(join(stage, 'etc', 'app', 'config.yml'), 'port: 8080\n');
  const image = join(dir, 'disk.raw');
  await execa('truncate', ['-s', `${32 * MiB}`, image]);
  await execa('mkfs.ext4', ['-q', '-F', '-d', stage, image]);
  const repo = await createRepository(join(dir, 'repo'));
  point = (await backupImage(repo, await readFile(image), {vmName: 'guest01', key: 'vda'})).id;
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'), {VMBACKUP_FILE_BROWSER_IDLE_SECONDS: '3'});
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
}, 60_000);
afterAll(async () => {
  await d?.stop();
  await cleanup?.();
});

describe('file browser on the daemon', () => {
  it('open, list, copy out, then closed by the idle timeout; the fake answers in the same shapes', async () => {
    const real = consoleApi(d.client);
    const fake = new FakeApi();
    fake.points.r = await d.client.restorePoints('r');
    fake.guestFiles['/etc'] = [];
    const s = await real.openFiles({repository: 'r', restorePointId: point});
    expect(await guestfish()).toBe(1);
    expect(s).toMatchObject({repository: 'r', restorePointId: point, vmName: 'guest01', disks: ['vda'], layout: {kind: 'filesystem', mounts: [{mountpoint: '/', device: '/dev/sda'}]}});
    expect(await holds()).toHaveLength(1);
    const f = await fake.openFiles({repository: 'r', restorePointId: point});
    expect(outside(shapeOf(f), shapeOf(s)), 'openFiles').toEqual([]);

    const etc = await real.listFiles(s.id, '/etc');
    expect(etc.entries.map((e) => `${e.type} ${e.name}`)).toEqual(['dir app', 'file hostname']);
    fake.guestFiles['/etc'] = [{name: 'hostname', type: 'file', size: 8, mode: 0o100644, uid: 0, gid: 0, mtime: '2026-11-20T10:00:00.000Z', mtimeMs: 0, atimeMs: 0}];
    expect(outside(shapeOf(await fake.listFiles(f.id, '/etc')), shapeOf(etc)), 'listFiles').toEqual([]);
    await expect(real.listFiles(s.id, '/nope')).rejects.toMatchObject({exitCode: 16});

    const to = join(dir, 'restored', 'here');
    const got = await real.getFiles(s.id, ['/etc/app', '/etc/hostname'], to);
    expect(got.copied.map((c) => c.type)).toEqual(['dir', 'file']);
    expect(outside(shapeOf(await fake.getFiles(f.id, ['/etc/hostname'], to)), shapeOf(got)), 'getFiles').toEqual([]);
    expect(await readFile(join(to, 'hostname'), 'utf8')).toBe('guest01\n');
    expect(await readFile(join(to, 'app', 'config.yml'), 'utf8')).toBe('port: 8080\n');
    expect((await stat(to)).mode & 0o777).toBe(0o700);
    // Never over what is there.
    await expect(real.getFiles(s.id, ['/etc/hostname'], to)).rejects.toMatchObject({exitCode: 17});

    // Unused, it closes by itself: guestfish ends, the hold goes, the browser says it has ended.
    for (let i = 0; i < 200 && (await holds()).length > 0; i++) await sleep(100);
    expect(await holds()).toEqual([]);
    expect(await guestfish()).toBe(0);
    await expect(real.listFiles(s.id, '/')).rejects.toMatchObject({exitCode: 16, message: expect.stringContaining('has ended')});
    const closed = await real.closeFiles(s.id);
    expect(closed).toEqual({closed: false});
    expect(outside(shapeOf(await fake.closeFiles(f.id)), shapeOf(closed)), 'closeFiles').toEqual([]);
  }, 180_000);
});
