/**
 * A copy job in a real vmbackupd killed with SIGKILL in the middle of a point: the target shows
 * no part of it, the session is closed as interrupted at the next start, and the next run stores
 * only the chunks the target still lacks; the copy reads back identical to the original.
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, expect, it} from 'vitest';
import {createRepository, openRepository} from '../../src/repository/index.js';
import {isolate, sleep, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';

const MiB = 2 ** 20;
const CHUNKS = 48;
let dir: string;
let d: RunningDaemon;
let point: string;
const state = () => join(dir, 'state');
const sock = () => join(dir, 'api.sock');

async function chunkFiles(repo: string): Promise<number> {
  const entries = await readdir(join(repo, 'chunks'), {recursive: true, withFileTypes: true}).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-copy-kill-'));
  const src = await createRepository(join(dir, 'src'));
  const w = await src.beginRestorePoint({vmId: 'id-db', vmName: 'db', platform: 'libvirt'});
  const dw = await w.addDisk({key: 'vda', name: 'vda.raw', size: CHUNKS * MiB, format: 'raw'});
  for (let i = 0; i < CHUNKS; i++) await dw.put(i * MiB, randomBytes(MiB));
  await dw.finish();
  point = (await w.commit()).id;
  d = await startDaemon(state(), sock());
  await isolate(d.client);
  await d.client.create('repositories', {id: 'src', name: 'Main', path: join(dir, 'src')});
  await d.client.create('repositories', {id: 'dst', name: 'Second copy', path: join(dir, 'dst')});
  await d.client.create('jobs', {id: 'copy', name: 'Second copy', source: {repository: 'src'}, repository: 'dst', retries: {count: 0}});
}, 120_000);

afterAll(async () => {
  await d?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

it('killed mid-copy: nothing of the point in the target, the session closed at the next start, and the next run stores only what is missing', async () => {
  const first = await d.client.startJob('copy');
  const dst = join(dir, 'dst');
  for (let i = 0; i < 3000 && (await chunkFiles(dst)) < 12; i++) await sleep(5);
  await d.kill();
  const stored = await chunkFiles(dst);
  d = await startDaemon(state(), sock());
  expect(stored).toBeGreaterThanOrEqual(12);
  expect(stored).toBeLessThan(CHUNKS);
  expect(await (await openRepository(dst)).listRestorePoints()).toEqual([]);
  // The killed session is not left "running".
  expect((await d.client.session(first.id)).state).not.toBe('running');

  const s = await waitForSession(d.client, (await d.client.startJob('copy')).id);
  expect(s.state, JSON.stringify(s.log)).toBe('success');
  const added = Number(/\((\d+) new chunks\)/.exec(s.log.find((l) => l.code === 'copied')?.message ?? '')?.[1]);
  expect(added).toBeGreaterThan(0);
  // Only what the killed run had not stored (a few may have been in flight).
  expect(added).toBeLessThanOrEqual(CHUNKS - stored + 2);
  const [a, b] = [await (await openRepository(join(dir, 'src'))).openRestorePoint(point), await (await openRepository(dst)).openRestorePoint(point)];
  const [x, y] = [await a.openDisk('vda'), await b.openDisk('vda')];
  expect((await y.read(0, y.size)).equals(await x.read(0, x.size))).toBe(true);
}, 180_000);
