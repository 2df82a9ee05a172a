import {beforeEach, describe, expect, it} from 'vitest';
import {readdir, writeFile} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import type {Repository} from '../../src/repository/index.js';
import {vmLockPath} from '../../src/repository/layout.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {expectContent, pseudoRandom, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

const begin = (vmId: string, lockTimeoutMs?: number) =>
  repo.beginRestorePoint({vmId, vmName: `VM "${vmId}"`, platform: 'libvirt', ...(lockTimeoutMs !== undefined ? {lockTimeoutMs} : {})});

async function writeOne(w: Awaited<ReturnType<typeof begin>>, seed: number) {
  const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * CS});
  await d.put(0, pseudoRandom(2 * CS, seed));
  await d.finish();
  return w.commit();
}

describe('writer locks', () => {
  it('writers of different VMs run at once', async () => {
    const a = await begin('a', 0);
    const b = await begin('b', 0);
    const [sa, sb] = await Promise.all([writeOne(a, 1), writeOne(b, 2)]);
    await expectContent(repo, sa.id, 'vda', pseudoRandom(2 * CS, 1));
    await expectContent(repo, sb.id, 'vda', pseudoRandom(2 * CS, 2));
  });

  it('a second writer of the same VM is refused after the timeout with a clear message', async () => {
    const first = await begin('a');
    const err = (await begin('a', 150).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.locked);
    expect(err.message).toContain('VM "a"');
    expect(err.message).toContain(`process ${process.pid}`);
    expect(err.hint).toMatch(/Wait/);
    await writeOne(first, 1);
    // Released by the commit.
    await (await begin('a', 0)).abort();
  });

  it('a second writer of the same VM waits for the first one and then runs', async () => {
    const first = await begin('a');
    let secondStarted = false;
    const second = begin('a', 60_000).then((w) => {
      secondStarted = true;
      return w;
    });
    // The first writer does all its work while the second is waiting.
    const s1 = await writeOne(first, 1);
    expect(secondStarted).toBe(false);
    const w2 = await second;
    const s2 = await writeOne(w2, 2);
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([s1.id, s2.id]);
  });

  it('abort releases the lock', async () => {
    const first = await begin('a');
    await first.abort();
    await (await begin('a', 0)).abort();
  });

  it('takes over the lock of a dead process, and removes its lock file on release', async () => {
    const child = execa('true');
    await child;
    const dead = child.pid!;
    const lockPath = vmLockPath(repo.path, 'a');
    await writeFile(lockPath, JSON.stringify({pid: dead, pidStart: '1', host: hostname(), since: Date.now() - 1000, purpose: 'backup'}));
    const w = await begin('a', 0);
    await writeOne(w, 3);
    expect(await readdir(join(repo.path, 'locks'))).toEqual([]);
  });

  it('never takes over the lock of another host (shared storage)', async () => {
    await writeFile(vmLockPath(repo.path, 'a'), JSON.stringify({pid: 1, pidStart: '1', host: 'some-other-appliance', since: Date.now(), purpose: 'backup'}));
    await expect(begin('a', 50)).rejects.toThrow(/some-other-appliance/);
  });
});
