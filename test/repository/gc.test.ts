import {beforeEach, describe, expect, it} from 'vitest';
import {mkdir, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import type {Repository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {ageChunks, backupImage, chunkFiles, expectContent, pseudoRandom, putAll, useRepository} from './helpers.js';

const CS = 64 * 1024;
const t = useRepository(CS);
let repo: Repository;
beforeEach(() => {
  repo = t.repo;
});

async function deadPid(): Promise<number> {
  const p = execa('true');
  await p;
  return p.pid!;
}

describe('garbage collection', () => {
  it('removes chunks no committed index references once they are older than the cut-off', async () => {
    const shared = pseudoRandom(CS, 1);
    const a = await backupImage(repo, Buffer.concat([shared, pseudoRandom(CS, 2)]));
    const b = await backupImage(repo, Buffer.concat([shared, pseudoRandom(CS, 3)]));
    expect((await chunkFiles(repo.path)).length).toBe(3);
    await repo.prune({keepLast: 1});
    // Fresh garbage is pending: a writer might be about to reuse it.
    const fresh = await repo.gc({safetyMarginMs: 60_000});
    expect(fresh.removedChunks).toBe(0);
    expect(fresh.pendingChunks).toBe(1);
    await ageChunks(repo.path, 3_600_000);
    const phases = new Set<string>();
    const res = await repo.gc({safetyMarginMs: 60_000, onProgress: (p) => phases.add(p.phase)});
    expect(res.removedChunks).toBe(1);
    expect(res.referencedChunks).toBe(2);
    expect(res.removedBytes).toBeGreaterThan(CS);
    expect(res.missingChunks).toBe(0);
    expect([...phases]).toEqual(['writers', 'mark', 'sweep']);
    expect((await chunkFiles(repo.path)).length).toBe(2);
    await expectContent(repo, b.id, 'vda', Buffer.concat([shared, pseudoRandom(CS, 3)]));
    expect((await repo.verify()).ok).toBe(true);
    await expect(repo.openRestorePoint(a.id)).rejects.toMatchObject({exitCode: ExitCode.notFound});
  });

  it('is exclusive with another GC', async () => {
    await backupImage(repo, pseudoRandom(CS, 1));
    const results = await Promise.allSettled([repo.gc(), repo.gc()]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(failed.length).toBe(1);
    expect(failed[0]!.reason).toMatchObject({exitCode: ExitCode.locked});
    expect(String(failed[0]!.reason.message)).toMatch(/garbage collection/);
    // The lock is released afterwards.
    await repo.gc();
  });

  it('clears what a dead writer left: its partial restore point, registration and temp files', async () => {
    const kept = await backupImage(repo, pseudoRandom(CS, 1));
    const id = 'dead-20260101t000000z-abcdef';
    await mkdir(join(repo.path, 'points', id));
    await writeFile(join(repo.path, 'points', id, 'disk-0.idx.tmp-1-aa'), 'partial');
    await writeFile(join(repo.path, 'writers', `${id}.json`), JSON.stringify({pid: await deadPid(), pidStart: '1', host: (await import('node:os')).hostname(), since: Date.now(), purpose: 'x'}));
    await mkdir(join(repo.path, 'chunks', 'ab'), {recursive: true});
    await writeFile(join(repo.path, 'chunks', 'ab', `${'ab'.repeat(32)}.tmp-1-bb`), 'half a chunk');
    await ageChunks(repo.path, 3_600_000);
    const res = await repo.gc({safetyMarginMs: 0});
    expect(res.removedPartialRestorePoints).toEqual([id]);
    expect(res.removedTempFiles).toBe(1);
    expect(await readdir(join(repo.path, 'points'))).toEqual([kept.id]);
    expect(await readdir(join(repo.path, 'writers'))).toEqual([]);
    expect((await repo.verify()).ok).toBe(true);
  });

  it('puts back a needed chunk that a GC killed mid-sweep left under a temp name', async () => {
    const data = pseudoRandom(CS, 5);
    const a = await backupImage(repo, Buffer.concat([data, pseudoRandom(CS, 6)]));
    const hex = (await import('../../src/repository/chunk-file.js')).chunkId(data).toString('hex');
    const path = join(repo.path, 'chunks', hex.slice(0, 2), hex);
    const {rename} = await import('node:fs/promises');
    await rename(path, `${path}.tmp-99999-deadbeef`);
    await ageChunks(repo.path, 3_600_000);
    const res = await repo.gc({safetyMarginMs: 0});
    expect(res.recoveredChunks).toBe(1);
    expect(res.missingChunks).toBe(0);
    expect(res.removedTempFiles).toBe(0);
    await expectContent(repo, a.id, 'vda', Buffer.concat([data, pseudoRandom(CS, 6)]));
    // A temp file that does not hold its chunk is garbage.
    await writeFile(`${path}.tmp-1-00`, 'not the chunk');
    await rename(path, `${path}.tmp-1-01`);
    await writeFile(`${path}.tmp-1-01`, 'truncated');
    await ageChunks(repo.path, 3_600_000);
    const res2 = await repo.gc({safetyMarginMs: 0});
    expect(res2.recoveredChunks).toBe(0);
    expect(res2.removedTempFiles).toBe(2);
    expect(res2.missingChunks).toBe(1);
  });

  it('never removes what running backups need: several backups and GC at once, then every restore point verifies', async () => {
    // Garbage that the new backups will reuse: the exact race GC must survive.
    const data = (vm: number, n: number) => Buffer.concat(Array.from({length: n}, (_, i) => pseudoRandom(CS, vm * 1000 + i)));
    const vms = [1, 2, 3, 4];
    for (const vm of vms) await backupImage(repo, data(vm, 24), {vmId: `vm-${vm}`});
    for (const vm of vms) await backupImage(repo, pseudoRandom(CS, 99 + vm), {vmId: `vm-${vm}`});
    await repo.prune({keepLast: 1}); // the 24-chunk points are garbage now
    await ageChunks(repo.path, 3_600_000);

    let writing = true;
    const gcRuns: number[] = [];
    const gcLoop = (async () => {
      while (writing) {
        const r = await repo.gc({safetyMarginMs: 0});
        gcRuns.push(r.removedChunks);
      }
    })();
    const expected = new Map<string, Buffer>();
    const writer = async (vm: number) => {
      let base: string | undefined;
      for (let round = 0; round < 5; round++) {
        // Each round reuses the aged garbage and adds a little new data; odd rounds are incrementals.
        const image = Buffer.concat([data(vm, 24), pseudoRandom(CS, vm * 7777 + round)]);
        const w = await repo.beginRestorePoint({vmId: `vm-${vm}`, vmName: `vm ${vm}`, platform: 'libvirt', ...(base ? {base} : {})});
        try {
          const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
          if (base && round % 2 === 1) {
            for (const r of await d.missingBaseRanges()) await d.put(r.offset, image.subarray(r.offset, r.offset + r.length));
            await d.put(24 * CS, image.subarray(24 * CS));
          } else {
            await putAll(d, image, CS);
          }
          await d.finish();
          const sum = await w.commit();
          expected.set(sum.id, image);
          base = sum.id;
        } finally {
          await w.abort();
        }
      }
    };
    await Promise.all(vms.map(writer));
    writing = false;
    await gcLoop;
    expect(gcRuns.length).toBeGreaterThan(0);
    // Some garbage was really swept while the backups ran or right after.
    await repo.gc({safetyMarginMs: 0});
    const report = await repo.verify();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    for (const [id, image] of expected) await expectContent(repo, id, 'vda', image);
  });
});
