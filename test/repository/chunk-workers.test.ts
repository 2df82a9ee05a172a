/**
 * The chunk worker pool: threads that die fail their requests clearly and are replaced; two
 * concurrent puts of the same new chunk count once; compiled JavaScript (what the bench and the
 * appliance run) starts its workers from the .js next to the pool.
 */
import {afterAll, describe, expect, it} from 'vitest';
import {readFile, symlink, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {ChunkWorkerPool} from '../../src/repository/chunk-workers.js';
import {chunkId} from '../../src/repository/chunk-file.js';
import {createRepository} from '../../src/repository/index.js';
import {chunkFiles, expectContent, pseudoRandom, scratch, textLike} from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const s = await scratch('vmb-workers-');
afterAll(() => s.cleanup());

describe('chunk worker pool', () => {
  it('a thread that dies fails the requests queued on it with a clear error, and is replaced', async () => {
    const repo = await createRepository(join(s.dir, 'die'), {chunkSize: 65536});
    const pool = new ChunkWorkerPool(2);
    try {
      // Two puts at once start both threads.
      const first = await Promise.all([pool.put(repo.path, 2, pseudoRandom(65536, 1)), pool.put(repo.path, 2, pseudoRandom(65536, 2))]);
      expect(first.map((r) => r.isNew)).toEqual([true, true]);
      expect(pool.threads).toBe(2);
      pool.exitAllForTest(7);
      // Queued behind the exit request on the dying threads.
      const doomed = await Promise.allSettled([pool.put(repo.path, 2, pseudoRandom(65536, 3)), pool.read(join(repo.path, 'x'), 'ab'.repeat(32))]);
      for (const r of doomed) {
        expect(r.status).toBe('rejected');
        expect(((r as PromiseRejectedResult).reason as Error).message).toMatch(/chunk worker thread stopped \(exit code 7\) while (storing a chunk|reading chunk)/);
      }
      // New threads take the next requests.
      const again = await pool.put(repo.path, 2, pseudoRandom(65536, 3));
      expect(again.isNew).toBe(true);
      const back = await pool.read(join(repo.path, 'chunks', Buffer.from(again.id).toString('hex').slice(0, 2), Buffer.from(again.id).toString('hex')), Buffer.from(again.id).toString('hex'));
      expect(back.status).toBe('ok');
      expect(Buffer.from((back as {data: ArrayBuffer}).data, (back as {offset: number}).offset, (back as {length: number}).length).equals(pseudoRandom(65536, 3))).toBe(true);
      expect(pool.threads).toBeGreaterThan(0);
      expect(pool.threads).toBeLessThanOrEqual(2);
    } finally {
      await pool.close();
    }
  });

  it('bounds the requests on its threads; the rest wait (back-pressure)', async () => {
    const repo = await createRepository(join(s.dir, 'bound'), {chunkSize: 65536});
    const pool = new ChunkWorkerPool(2);
    try {
      let most = 0;
      const jobs = Array.from({length: 40}, (_, i) => {
        const p = pool.put(repo.path, 2, textLike(65536, i + 1));
        most = Math.max(most, (pool as unknown as {inFlight: number}).inFlight);
        return p;
      });
      expect(most).toBeLessThanOrEqual(pool.maxInFlight);
      expect((await Promise.all(jobs)).filter((r) => r.isNew)).toHaveLength(40);
    } finally {
      await pool.close();
    }
  });

  it('two puts of the same new chunk at once count once as new; the chunk is there once', async () => {
    const repo = await createRepository(join(s.dir, 'same'), {chunkSize: 65536});
    const same = textLike(65536, 9);
    const image = Buffer.concat([same, same, same, same, pseudoRandom(65536, 1)]);
    const w = await repo.beginRestorePoint({vmId: 'vm', vmName: 'vm', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
    await d.put(0, image); // one call: all five chunks are in the workers at once
    const st = await d.finish();
    const p = await w.commit();
    expect(st.newChunks).toBe(2);
    expect(st.reusedChunks).toBe(3);
    expect(st.newPlainBytes).toBe(2 * 65536);
    const files = (await chunkFiles(repo.path)).filter((f) => /[0-9a-f]{64}$/.test(f));
    expect(files).toHaveLength(2);
    expect(files.some((f) => f.endsWith(chunkId(same).toString('hex')))).toBe(true);
    await expectContent(repo, p.id, 'vda', image);
  });

  it('a put keeps no reference to the caller\'s buffer once it settled (the disk task reuses its read buffers)', async () => {
    const repo = await createRepository(join(s.dir, 'reuse'), {chunkSize: 65536});
    const image = Buffer.concat([textLike(3 * 65536, 4), pseudoRandom(2 * 65536, 5)]);
    const buffer = Buffer.from(image);
    const w = await repo.beginRestorePoint({vmId: 'vm', vmName: 'vm', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * image.length});
    await d.put(0, buffer); // five chunks at once: some wait in the pool's queue for a slot
    buffer.fill(0xa5); // reused for the next read
    const second = pseudoRandom(image.length, 6);
    second.copy(buffer);
    await d.put(image.length, buffer);
    buffer.fill(0x5a);
    await d.finish();
    const p = await w.commit();
    await expectContent(repo, p.id, 'vda', Buffer.concat([image, second]));
  });

  for (const chunkSize of [65536, 2 * 1024 * 1024]) {
    it(`large reads copy each chunk straight into the caller's buffer, at any offset (chunk size ${chunkSize / 1024} KiB${chunkSize > 1 << 20 ? ', larger than a shared slot' : ''})`, async () => {
      const repo = await createRepository(join(s.dir, `into-${chunkSize}`), {chunkSize});
      const image = Buffer.concat([textLike(2 * chunkSize, 7), Buffer.alloc(chunkSize), pseudoRandom(chunkSize + 1000, 8)]);
      const w = await repo.beginRestorePoint({vmId: 'vm', vmName: 'vm', platform: 'libvirt'});
      const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
      await d.put(0, image);
      await d.finish();
      const p = await w.commit();
      const r = await (await repo.openRestorePoint(p.id)).openDisk('vda');
      const into = Buffer.alloc(image.length + 10, 0xee);
      for (const [offset, length] of [
        [0, image.length],
        [123, 3 * chunkSize],
        [chunkSize - 7, 2 * chunkSize + 1007],
        [chunkSize + 1, image.length - chunkSize - 1],
      ] as const) {
        const got = await r.read(offset, length, into);
        expect(got.equals(image.subarray(offset, offset + length)), `read(${offset}, ${length})`).toBe(true);
        expect(into[length]).toBe(0xee); // nothing written past the asked length
        into.fill(0xee);
      }
      expect((await r.read(5, 2 * chunkSize)).equals(image.subarray(5, 5 + 2 * chunkSize))).toBe(true);
    });
  }

  it('compiled JavaScript runs its workers from the .js files (backup, restore, verify)', async () => {
    const out = join(s.dir, 'dist');
    const tsc = await execa(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '--outDir', out, '--rootDir', join(ROOT, 'src'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2023', '--strict', '--skipLibCheck', '--types', 'node', join(ROOT, 'src/repository/index.ts'), join(ROOT, 'src/repository/chunk-worker.ts')],
      {reject: false, cwd: ROOT},
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    await writeFile(join(out, 'package.json'), '{"type":"module"}\n');
    // ESM resolves bare imports by walking up from the importing file (as bench/lib/child-protocol.ts does).
    await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'));
    const script = join(out, 'run.mjs');
    await writeFile(
      script,
      `import {createRepository} from './repository/index.js';
const repo = await createRepository(process.argv[2], {chunkSize: 65536});
const image = Buffer.alloc(8 * 65536);
for (let i = 0; i < image.length; i += 7) image[i] = (i * 31 + (i >> 16) * 7) & 255;
const w = await repo.beginRestorePoint({vmId: 'vm', vmName: 'vm', platform: 'libvirt'});
const d = await w.addDisk({key: 'vda', name: 'disk', size: image.length});
await d.put(0, image);
await d.finish();
const p = await w.commit();
const r = await (await repo.openRestorePoint(p.id)).openDisk('vda');
const back = await r.read(0, image.length);
const v = await repo.verify();
console.log(JSON.stringify({same: back.equals(image), ok: v.ok, checked: v.checkedChunks}));
`,
    );
    const r = await execa(process.execPath, [script, join(s.dir, 'compiled repo')], {cwd: ROOT, env: {NODE_OPTIONS: ''}, reject: false});
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({same: true, ok: true, checked: 8});
    expect((await readFile(join(s.dir, 'compiled repo', 'vmbackup-repository.json'), 'utf8')).length).toBeGreaterThan(0);
  });
});
