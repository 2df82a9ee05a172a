/**
 * The repository on every storage backend: the same life of a repository — full and
 * incremental backups, reads, protection, prune, forget, GC, verify with a damaged chunk and its
 * healing, statistics, the VM lock — on the local directory and on the in-memory backend. That
 * the in-memory backend passes is the proof that the StorageBackend interface is all the
 * repository needs (no file-system path is used behind its back).
 */
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {createRepository, createRepositoryOn, openRepositoryOn, type Repository} from '../../src/repository/index.js';
import {LocalDirectoryBackend} from '../../src/repository/storage/local.js';
import {MemoryBackend} from '../../src/repository/storage/memory.js';
import {ageSwiftObject, emptySwiftPrefix, swiftBackend} from '../lib/swift.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {ageChunks, backupImage, expectContent, pseudoRandom, scratch} from './helpers.js';

const CS = 64 * 1024;

interface Bed {
  repo: Repository;
  /** Makes every chunk look written an hour ago. */
  ageChunks(): Promise<void>;
  /** Flips a byte of the stored chunk `key`. */
  damage(key: string): Promise<void>;
  cleanup(): Promise<void>;
}

const BACKENDS: {name: string; make: () => Promise<Bed>}[] = [
  {
    name: 'local directory',
    make: async () => {
      const s = await scratch();
      const root = join(s.dir, 'repo');
      const repo = await createRepository(root, {chunkSize: CS});
      return {
        repo,
        ageChunks: () => ageChunks(root, 3_600_000),
        damage: async (key) => {
          const f = new LocalDirectoryBackend(root).path(key);
          const raw = await readFile(f);
          raw[raw.length - 1]! ^= 0xff;
          await writeFile(f, raw);
        },
        cleanup: s.cleanup,
      };
    },
  },
  {
    name: 'in memory',
    make: async () => {
      const backend = new MemoryBackend();
      const repo = await createRepositoryOn(backend, {chunkSize: CS});
      return {
        repo,
        ageChunks: async () => {
          for (const [k, e] of backend.objects) if (k.startsWith('chunks/')) e.modifiedMs = Date.now() - 3_600_000;
        },
        damage: async (key) => {
          const e = backend.objects.get(key)!;
          e.data[e.data.length - 1]! ^= 0xff;
        },
        cleanup: async () => undefined,
      };
    },
  },
  {
    // A real S3 server: OpenStack Swift with s3api (test/setup.d/50-swift.sh).
    name: 'S3 (Swift s3api)',
    make: async () => {
      const backend = await swiftBackend('backends');
      const repo = await createRepositoryOn(backend, {chunkSize: CS});
      return {
        repo,
        ageChunks: async () => {
          for (const d of await backend.list('chunks')) {
            if (d.dir) for (const e of await backend.list(`chunks/${d.name}`)) await ageSwiftObject(backend, `chunks/${d.name}/${e.name}`, 3_600_000);
          }
        },
        damage: async (key) => {
          const raw = (await backend.get(key, {max: 1 << 24, what: 'chunk'}))!;
          raw[raw.length - 1]! ^= 0xff;
          await backend.put(key, [raw]);
        },
        cleanup: async () => {
          await emptySwiftPrefix(backend);
          backend.client.close();
        },
      };
    },
  },
];

function image(seeds: number[]): Buffer {
  // A chunk per seed; seed 0 is a zero chunk.
  return Buffer.concat(seeds.map((s) => (s === 0 ? Buffer.alloc(CS) : pseudoRandom(CS, s))));
}

describe.each(BACKENDS)('the repository on the $name backend', ({make}) => {
  let bed: Bed;
  let repo: Repository;
  beforeEach(async () => {
    bed = await make();
    repo = bed.repo;
  });
  afterEach(async () => bed.cleanup());

  it('writes, reads, protects, prunes, forgets, collects garbage and verifies', async () => {
    const v1 = image([1, 2, 0, 3]);
    const p1 = await backupImage(repo, v1);
    expect(p1.type).toBe('full');
    await expectContent(repo, p1.id, 'vda', v1);

    const v2 = image([1, 2, 0, 4]);
    const p2 = await backupImage(repo, v2, {base: p1.id});
    expect(p2.type).toBe('incremental');
    await expectContent(repo, p2.id, 'vda', v2);
    const d2 = (await repo.openRestorePoint(p2.id)).manifest.disks[0]!;
    expect(d2.stats.newChunks).toBe(1);
    expect(d2.stats.reusedChunks).toBe(2); // the zero chunk is not stored, so not reused either

    const v3 = image([5, 2, 0, 4]);
    const p3 = await backupImage(repo, v3, {base: p2.id});
    await repo.setProtected(p1.id, true);
    const pruned = await repo.prune({keepLast: 1});
    expect(pruned.removed.map((d) => d.id)).toEqual([p2.id]);
    expect((await repo.listRestorePoints()).map((p) => [p.id, p.protected])).toEqual([
      [p1.id, true],
      [p3.id, false],
    ]);

    // Chunk 4 is used by p3 only now; chunk 3 by p1 only. GC keeps both, frees nothing referenced.
    await bed.ageChunks();
    let gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(0);
    expect(gc.missingChunks).toBe(0);

    await expect(repo.forget(p1.id)).rejects.toThrow(/protected/);
    await repo.forget(p1.id, {force: true});
    gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(2); // chunks 1 and 3
    await expectContent(repo, p3.id, 'vda', v3);
    expect((await repo.verify()).ok).toBe(true);

    const stats = await repo.stats();
    expect(stats.restorePoints).toBe(1);
    expect(stats.chunks).toBe(3);
    expect(stats.uniqueBytes).toBe(3 * CS);
  });

  it('verify finds a damaged chunk, sets it aside, and the next backup of the same data stores it again', async () => {
    const v = image([7, 8]);
    const p = await backupImage(repo, v);
    const id = (await import('node:crypto')).createHash('sha256').update(pseudoRandom(CS, 8)).digest('hex');
    const key = `chunks/${id.slice(0, 2)}/${id}`;
    await bed.damage(key);
    const report = await repo.verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatchObject({chunk: id, problem: 'damaged'});
    expect(report.problems[0]!.quarantinedTo).toMatch(/\.bad$/);
    await expect(expectContent(repo, p.id, 'vda', v)).rejects.toThrow(/missing/);
    const again = await backupImage(repo, v, {base: p.id});
    expect((await repo.openRestorePoint(again.id)).manifest.disks[0]!.stats.newChunks).toBe(1);
    await expectContent(repo, again.id, 'vda', v);
    expect((await repo.verify({restorePoints: [again.id]})).ok).toBe(true);
  });

  it('serializes writers of one VM: a second one waits, then fails as locked', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt'});
    const err = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt', lockTimeoutMs: 100}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.locked);
    const other = await repo.beginRestorePoint({vmId: 'vm-2', vmName: 'db', platform: 'libvirt', lockTimeoutMs: 100});
    await other.abort();
    await w.abort();
    // An aborted writer leaves nothing committed; its chunks are the next GC's.
    expect(await repo.listRestorePoints()).toEqual([]);
  });

  it('an abandoned write is invisible and GC removes it', async () => {
    const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'web 01', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * CS});
    await d.put(0, pseudoRandom(2 * CS, 9));
    await d.finish();
    await w.abort();
    expect(await repo.listRestorePoints()).toEqual([]);
    await bed.ageChunks();
    const gc = await repo.gc({safetyMarginMs: 0});
    expect(gc.removedChunks).toBe(2);
    expect((await repo.stats()).chunks).toBe(0);
  });
});

describe('opening a repository on a backend', () => {
  it('an empty backend is not a repository; a created one opens with its id', async () => {
    const backend = new MemoryBackend();
    const err = await openRepositoryOn(backend).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(ExitCode.notARepository);
    const made = await createRepositoryOn(backend);
    expect((await openRepositoryOn(backend)).id).toBe(made.id);
    await expect(createRepositoryOn(backend)).rejects.toThrow(/not empty/);
  });
});
