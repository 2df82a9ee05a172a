/**
 * Encrypted repositories (format 3, repository/crypto.ts): nothing of a VM in the clear (data,
 * name, id — a plain repository given the same point does hold them, so the search can fail),
 * keyed chunk ids, dedup within the repository, a wrong or missing passphrase refused with its
 * own exit code and nothing changed, files swapped, moved or flipped caught as damage, GC and
 * verify at work, copies plain → encrypted → plain read back identical, a hostile configuration
 * (a KDF that would take all memory) refused before any work.
 */
import {createHash} from 'node:crypto';
import {readdir, readFile, rename, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {copyRestorePoints, createRepository, createRepositoryOn, MemoryBackend, openRepository, openRepositoryOn, type Repository} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {ageChunks, putAll, readAll, scratch, textLike} from './helpers.js';

const PASS = 'correct horse battery staple';
const VM_NAME = 'payroll-db-7f3e';
const VM_ID = 'b8a3c1d2-payroll-vm-id-0042';
const MARKER = 'VMB-SECRET-MARKER-5f1c0e';
const CHUNK = 64 * 1024;

let dir: string;
let cleanup: () => Promise<void>;

/** Disk bytes: text (compressible, so LZ4 keeps the marker's literals) with the marker every 4 KiB. */
function disk(seed: number, size = 8 * CHUNK): Buffer {
  const b = textLike(size, seed);
  for (let off = 0; off + MARKER.length < size; off += 4096) b.write(MARKER, off, 'latin1');
  return b;
}

async function backup(repo: Repository, image: Buffer, base?: string): Promise<string> {
  const w = await repo.beginRestorePoint({vmId: VM_ID, vmName: VM_NAME, platform: 'libvirt', ...(base ? {base} : {}), configuration: {kind: 'libvirt-domain-xml', text: `<domain><name>${VM_NAME}</name></domain>`}});
  const d = await w.addDisk({key: 'vda', name: `${VM_NAME}-disk.qcow2`, size: image.length, format: 'qcow2'});
  await putAll(d, image, repo.chunkSize);
  await d.finish();
  return (await w.commit({checkpoint: {id: `cp-${VM_NAME}`}})).id;
}

/** Every file under `root` (path relative to it) that holds one of `needles` (as bytes), and every path that names one. */
async function leaks(root: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(root, {recursive: true, withFileTypes: true})) {
    const rel = join(e.parentPath, e.name).slice(root.length + 1);
    for (const n of needles) if (rel.includes(n)) found.push(`path ${rel}`);
    if (!e.isFile()) continue;
    const bytes = await readFile(join(e.parentPath, e.name));
    for (const n of needles) if (bytes.includes(Buffer.from(n, 'latin1'))) found.push(`${rel} holds ${n}`);
  }
  return found;
}

async function code(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (err instanceof UserError) return err.exitCode;
    throw err;
  }
}

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-enc-'));
}, 60_000);

afterAll(async () => {
  await cleanup();
});

describe('an encrypted repository', () => {
  let enc: Repository;
  let points: string[];
  const image = disk(1);
  const image2 = Buffer.from(image);

  beforeAll(async () => {
    enc = await createRepository(join(dir, 'enc'), {chunkSize: CHUNK, passphrase: PASS});
    image2.write('changed!', 3 * CHUNK + 100, 'latin1');
    const full = await backup(enc, image);
    points = [full, await backup(enc, image2, full)];
  }, 60_000);

  it('holds nothing of the VM in the clear — a plain repository given the same points does', async () => {
    expect(enc.encrypted).toBe(true);
    expect(enc.formatVersion).toBe(3);
    const needles = [MARKER, VM_NAME, VM_ID, 'payroll'];
    expect(await leaks(join(dir, 'enc'), needles)).toEqual([]);
    const plain = await createRepository(join(dir, 'plain'), {chunkSize: CHUNK});
    await backup(plain, image);
    const found = await leaks(join(dir, 'plain'), needles);
    expect(found.some((f) => f.includes(`holds ${MARKER}`))).toBe(true);
    expect(found.some((f) => f.includes('manifest.json holds payroll-db-7f3e'))).toBe(true);
    expect(found.some((f) => f.startsWith('path points/payroll-db'))).toBe(true);
  });

  it('reads back what was written (full and incremental), with the VM name from the sealed manifest', async () => {
    const again = await openRepository(join(dir, 'enc'), {passphrase: PASS});
    const list = await again.listRestorePoints();
    expect(list.map((p) => [p.id, p.vmName, p.vmId, p.type])).toEqual([
      [points[0], VM_NAME, VM_ID, 'full'],
      [points[1], VM_NAME, VM_ID, 'incremental'],
    ]);
    expect(points[0]).toMatch(/^vm-\d{8}t\d{6}z-[0-9a-f]{6}$/);
    for (const [id, want] of [[points[0]!, image], [points[1]!, image2]] as const) {
      const r = await (await again.openRestorePoint(id)).openDisk('vda');
      expect((await readAll(r)).equals(want)).toBe(true);
    }
    expect((await again.verify()).ok).toBe(true);
  });

  it('keys its chunk ids (no file is named by the SHA-256 of its data) and still deduplicates', async () => {
    const names = (await readdir(join(dir, 'enc', 'chunks'), {recursive: true})).filter((n) => /[0-9a-f]{64}$/.test(n)).map((n) => n.slice(-64));
    const plainIds = new Set<string>();
    for (let off = 0; off < image.length; off += CHUNK) plainIds.add(createHash('sha256').update(image.subarray(off, off + CHUNK)).digest('hex'));
    expect(names.some((n) => plainIds.has(n))).toBe(false);
    // The incremental changed one chunk; a third point of the same data stores nothing new.
    expect(names.length).toBe(9);
    const w = await enc.beginRestorePoint({vmId: VM_ID, vmName: VM_NAME, platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'vda', size: image.length});
    await putAll(d, image, CHUNK);
    const stats = await d.finish();
    await w.abort();
    expect(stats.newChunks).toBe(0);
  });

  it('refuses a missing or wrong passphrase with its own exit code and changes nothing', async () => {
    const config = await readFile(join(dir, 'enc', 'vmbackup-repository.json'));
    expect(await code(openRepository(join(dir, 'enc')))).toBe(ExitCode.passphrase);
    expect(await code(openRepository(join(dir, 'enc'), {passphrase: 'correct horse battery stapler'}))).toBe(ExitCode.passphrase);
    expect((await readFile(join(dir, 'enc', 'vmbackup-repository.json'))).equals(config)).toBe(true);
  });

  it('catches a chunk replaced by another (each is bound to its id), a manifest moved to another point, a flipped byte', async () => {
    const copyDir = join(dir, 'enc-damaged');
    const src = await openRepository(join(dir, 'enc'), {passphrase: PASS});
    const target = await createRepository(copyDir, {chunkSize: CHUNK, passphrase: PASS});
    await copyRestorePoints(src, target);
    const [a, b] = (await target.listRestorePoints()).map((p) => p.id);
    const files = (await readdir(join(copyDir, 'chunks'), {recursive: true})).filter((n) => /[0-9a-f]{64}$/.test(n)).sort();
    // Chunk 0 gets chunk 1's (valid, authenticated) file.
    await writeFile(join(copyDir, 'chunks', files[0]!), await readFile(join(copyDir, 'chunks', files[1]!)));
    const report = await target.verify();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.chunk)).toContain(files[0]!.slice(-64));
    expect(report.problems[0]!.detail).toMatch(/does not authenticate/);
    // b's manifest in a's place: it does not open there.
    await rename(join(copyDir, 'points', a!, 'manifest.json'), join(copyDir, 'points', a!, 'manifest.old'));
    await writeFile(join(copyDir, 'points', a!, 'manifest.json'), await readFile(join(copyDir, 'points', b!, 'manifest.json')));
    const damaged = await target.damagedRestorePoints();
    expect(damaged.map((d) => [d.restorePoint, /does not authenticate/.test(d.detail)])).toEqual([[a, true]]);
    // A flipped byte in an index.
    const idx = join(copyDir, 'points', b!, 'disk-0.idx');
    const bytes = await readFile(idx);
    bytes[bytes.length - 20]! ^= 1;
    await writeFile(idx, bytes);
    expect(await code((await target.openRestorePoint(b!)).openDisk('vda'))).toBe(ExitCode.corrupt);
  });

  it('forgets and collects garbage like any repository: the other point stays whole', async () => {
    const repo = await createRepository(join(dir, 'enc-gc'), {chunkSize: CHUNK, passphrase: PASS});
    const keep = await backup(repo, disk(2));
    const gone = await backup(repo, disk(3));
    await repo.forget(gone);
    await ageChunks(repo.path, 3_600_000);
    const gc = await repo.gc();
    expect(gc.removedChunks).toBe(8);
    expect((await readAll(await (await repo.openRestorePoint(keep)).openDisk('vda'))).equals(disk(2))).toBe(true);
  });

  it('is the target of a copy from a plain repository and the source of one back; every copy reads back identical; copies are found again', async () => {
    const plain = await createRepository(join(dir, 'plain-src'), {chunkSize: CHUNK});
    const full = await backup(plain, image);
    await backup(plain, image2, full);
    const target = await createRepository(join(dir, 'enc-copy'), {chunkSize: CHUNK, passphrase: PASS});
    const first = await copyRestorePoints(plain, target);
    expect(first.copied.map((c) => c.targetId)).toEqual((await target.listRestorePoints()).map((p) => p.id));
    expect(first.copied[1]!.newChunks).toBe(1);
    expect((await copyRestorePoints(plain, target)).copied).toEqual([]);
    expect(await leaks(join(dir, 'enc-copy'), [MARKER, VM_NAME, 'payroll'])).toEqual([]);
    const back = await createRepository(join(dir, 'plain-back'), {chunkSize: CHUNK});
    await copyRestorePoints(target, back);
    const [x, y] = await back.listRestorePoints();
    expect(y!.base).toBe(x!.id);
    for (const [p, want] of [[x!, image], [y!, image2]] as const) {
      expect((await readAll(await (await back.openRestorePoint(p.id)).openDisk('vda'))).equals(want)).toBe(true);
    }
  });

  it('works on any storage backend: the in-memory one holds only ciphertext too', async () => {
    const backend = new MemoryBackend();
    const repo = await createRepositoryOn(backend, {chunkSize: CHUNK, passphrase: PASS});
    const id = await backup(repo, image);
    const again = await openRepositoryOn(backend, {passphrase: PASS});
    expect((await readAll(await (await again.openRestorePoint(id)).openDisk('vda'))).equals(image)).toBe(true);
    expect((await again.verify()).ok).toBe(true);
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await backend.list(dir)) {
        const key = dir ? `${dir}/${e.name}` : e.name;
        if (e.dir) await walk(key);
        else keys.push(key);
      }
    };
    await walk('');
    expect(keys.length).toBeGreaterThan(5);
    for (const key of keys) {
      const bytes = (await backend.get(key, {max: 16 << 20, what: 'test'}))!;
      for (const n of [MARKER, VM_NAME, VM_ID]) expect(bytes.includes(Buffer.from(n, 'latin1')), `${key} holds ${n}`).toBe(false);
    }
    await expect(openRepositoryOn(backend)).rejects.toMatchObject({exitCode: ExitCode.passphrase});
  });

  it('refuses a hostile configuration (a key derivation that would take all memory) before deriving anything', async () => {
    const hostile = join(dir, 'hostile');
    await createRepository(hostile, {passphrase: PASS});
    const cfg = JSON.parse(await readFile(join(hostile, 'vmbackup-repository.json'), 'utf8')) as {encryption: {kdf: {N: number}}};
    cfg.encryption.kdf.N = 2 ** 22;
    await writeFile(join(hostile, 'vmbackup-repository.json'), JSON.stringify(cfg));
    await expect(openRepository(hostile, {passphrase: PASS})).rejects.toThrow(/encryption record cannot be used: key derivation parameters out of range/);
  });
});
