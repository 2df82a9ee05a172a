/**
 * The retention lock (immutability on the appliance's own repositories): no restore point younger
 * than the lock can be forgotten or pruned — through the CLI (--force too), through the daemon's
 * API (what the console uses), through prune — and the lock can be raised, never lowered. A point
 * older than the lock goes as before; a lock file that cannot be read removes nothing. A job's own
 * lock (retentionLockDays, recorded in each point it writes) holds the same way, and copies keep it.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {vmbackup} from '../lib/cli.js';
import {isolate, startDaemon} from '../daemon/helpers.js';

let dir: string;
const repo = () => join(dir, 'repo');

async function point(r: Repository, copyOf?: {id: string; time: string}, lockDays?: number): Promise<string> {
  const w = await r.beginRestorePoint({vmId: 'vm-1', vmName: 'web01', platform: 'libvirt', ...(copyOf ? {copyOf} : {}), ...(lockDays ? {lockDays, jobId: 'locked-job'} : {})});
  const d = await w.addDisk({key: 'vda', name: 'vda', size: 64 * 1024});
  await d.put(0, Buffer.alloc(64 * 1024, 7));
  await d.finish();
  return (await w.commit()).id;
}

let recent: string[] = [];
let old: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-lock-'));
  const r = await createRepository(repo());
  old = await point(r, {id: 'web01-20200101t000000z-aaaaaa', time: '2020-01-01T00:00:00.000Z'});
  recent = [await point(r), await point(r)];
});

afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('repository retention lock', () => {
  it('holds against forget (--force too), the daemon API and prune; an older point goes; raised, never lowered', async () => {
    expect((await vmbackup(['repo', 'lock', repo()])).stdout).toContain('has no retention lock');
    const set = await vmbackup(['repo', 'lock', repo(), '--days', '30']);
    expect(set.exitCode, set.stderr).toBe(0);

    const forget = await vmbackup(['repo', 'forget', repo(), recent[0]!, '--force']);
    expect(forget.exitCode).toBe(17);
    expect(forget.stderr).toContain(`Restore point ${recent[0]} is under the repository's retention lock (30 days): it cannot be forgotten before `);

    // The daemon (and so the console) goes through the same repository code.
    const d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
    try {
      await isolate(d.client);
      await d.client.create('repositories', {id: 'r', name: 'Locked', path: repo()});
      await expect(d.client.forgetRestorePoint('r', recent[1]!, true)).rejects.toThrow(/retention lock/);
    } finally {
      await d.stop();
    }

    const prune = await vmbackup(['repo', 'prune', repo(), '--keep-last', '1', '--json']);
    expect(prune.exitCode, prune.stderr).toBe(0);
    const result = JSON.parse(prune.stdout) as {kept: {id: string; reasons: string[]}[]; removed: {id: string}[]};
    // The point older than the lock is pruned as before; the recent ones stay, one of them only because of the lock.
    expect(result.removed.map((p) => p.id)).toEqual([old]);
    expect(result.kept.find((p) => p.id === recent[0])?.reasons).toEqual(['retention lock']);
    expect((await (await openRepository(repo())).listRestorePoints()).map((p) => p.id).sort()).toEqual([...recent].sort());

    const lower = await vmbackup(['repo', 'lock', repo(), '--days', '7']);
    expect(lower.exitCode).toBe(17);
    expect(lower.stderr).toContain('a lock can be raised, not lowered');
    expect((await vmbackup(['repo', 'lock', repo(), '--days', '60'])).exitCode).toBe(0);
    expect((await vmbackup(['repo', 'lock', repo()])).stdout).toContain('is locked for 60 days');
  }, 120_000);

  it('a job\'s lock recorded in its points holds against forget (--force too), the API and prune; copies keep it; an expired one does not hold', async () => {
    const other = join(dir, 'jobs-repo');
    const r = await createRepository(other);
    const locked = await point(r, undefined, 14);
    const newer = await point(r, undefined, 14);
    const expired = await point(r, {id: 'web01-20200101t000000z-bbbbbb', time: '2020-01-01T00:00:00.000Z'}, 14);
    expect((await r.listRestorePoints()).find((p) => p.id === locked)?.lockDays).toBe(14);
    const forget = await vmbackup(['repo', 'forget', other, locked, '--force']);
    expect(forget.exitCode).toBe(17);
    expect(forget.stderr).toContain(`Restore point ${locked} is under its job's retention lock (14 days): it cannot be forgotten before `);
    const prune = await vmbackup(['repo', 'prune', other, '--keep-last', '1', '--json']);
    expect(prune.exitCode, prune.stderr).toBe(0);
    const result = JSON.parse(prune.stdout) as {kept: {id: string; reasons: string[]}[]; removed: {id: string}[]};
    expect(result.removed.map((p) => p.id)).toEqual([expired]);
    expect(result.kept.find((p) => p.id === locked)?.reasons).toEqual(['retention lock']);
    expect(result.kept.find((p) => p.id === newer)).toBeDefined();
    // Copied elsewhere, the copies are locked as long.
    const target = join(dir, 'jobs-copy');
    await createRepository(target);
    expect((await vmbackup(['repo', 'copy', other, target])).exitCode).toBe(0);
    expect((await (await openRepository(target)).listRestorePoints()).map((p) => p.lockDays)).toEqual([14, 14]);
    const d = await startDaemon(join(dir, 'state2'), join(dir, 'api2.sock'));
    try {
      await isolate(d.client);
      await d.client.create('repositories', {id: 'c', name: 'Copy', path: target});
      await expect(d.client.forgetRestorePoint('c', locked, true)).rejects.toThrow(/its job's retention lock \(14 days\)/);
    } finally {
      await d.stop();
    }
  }, 120_000);

  it('a lock file that cannot be read removes nothing, and says so', async () => {
    await writeFile(join(repo(), 'retention-lock.json'), '{"days": "forever"}');
    const forget = await vmbackup(['repo', 'forget', repo(), recent[0]!]);
    expect(forget.exitCode).not.toBe(0);
    expect(forget.stderr).toContain('the retention lock cannot be read; no restore point is removed until it can');
    expect((await (await openRepository(repo())).listRestorePoints()).map((p) => p.id)).toContain(recent[0]);
  });
});
