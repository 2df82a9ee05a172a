/** Shared helpers for the repository tests: scratch directories and disk-like test data. */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createHash} from 'node:crypto';
import {execa} from 'execa';
import {afterEach, beforeEach} from 'vitest';
import {createRepository, type DiskReader, type DiskWriter, type Repository} from '../../src/repository/index.js';

export async function scratch(prefix = 'vmb-repo-'): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})};
}

/** Deterministic pseudo-random bytes (xorshift), so tests can regenerate expected content. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const b = Buffer.alloc((length + 3) & ~3);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, length);
}

/** Compressible text-like bytes. */
export function textLike(length: number, seed: number): Buffer {
  const words = ['backup', 'restore', 'chunk', 'kvm', 'disk', 'point', 'the', 'of', 'qemu', 'libvirt'];
  const parts: string[] = [];
  let n = 0;
  let x = seed;
  while (n < length) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = words[x % words.length]! + (x % 11 === 0 ? '\n' : ' ');
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('').slice(0, length), 'latin1');
}

export function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Puts a whole in-memory disk image, one chunk per call, in parallel. */
export async function putAll(w: DiskWriter, image: Buffer, chunkSize: number): Promise<void> {
  const jobs: Promise<void>[] = [];
  for (let off = 0; off < image.length; off += chunkSize) jobs.push(w.put(off, image.subarray(off, Math.min(off + chunkSize, image.length))));
  await Promise.all(jobs);
}

export async function readAll(r: DiskReader): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of r.stream()) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

/** Writes one restore point with one disk holding `image`; returns its summary. */
export async function backupImage(
  repo: Repository,
  image: Buffer,
  opts: {vmId?: string; vmName?: string; base?: string; key?: string; protected?: boolean} = {},
) {
  const w = await repo.beginRestorePoint({
    vmId: opts.vmId ?? 'vm-1',
    vmName: opts.vmName ?? 'web 01',
    platform: 'libvirt',
    ...(opts.base ? {base: opts.base} : {}),
  });
  try {
    const d = await w.addDisk({key: opts.key ?? 'vda', name: 'disk', size: image.length});
    await putAll(d, image, repo.chunkSize);
    await d.finish();
    return await w.commit(opts.protected ? {protected: true} : {});
  } finally {
    await w.abort();
  }
}

export async function expectContent(repo: Repository, id: string, key: string, image: Buffer): Promise<void> {
  const r = await repo.openRestorePoint(id);
  const d = await r.openDisk(key);
  const got = await readAll(d);
  if (got.length !== image.length || !got.equals(image)) throw new Error(`content of ${id}/${key} differs (sha ${sha(got)} vs ${sha(image)})`);
}

/** Sets the mtime of every file under the repository's chunks/ to `ms` milliseconds ago (chunks "age"). */
export async function ageChunks(repoPath: string, ms: number): Promise<void> {
  const {readdir, utimes} = await import('node:fs/promises');
  const when = new Date(Date.now() - ms);
  const root = join(repoPath, 'chunks');
  for (const p of await readdir(root)) for (const f of await readdir(join(root, p))) await utimes(join(root, p, f), when, when);
}

/** Every file under chunks/ (chunk files, temp files, quarantined files). */
export async function chunkFiles(repoPath: string): Promise<string[]> {
  const {readdir} = await import('node:fs/promises');
  const root = join(repoPath, 'chunks');
  const out: string[] = [];
  for (const p of await readdir(root)) for (const f of await readdir(join(root, p))) out.push(f);
  return out.sort();
}

/**
 * Registers beforeEach/afterEach that give every test a fresh repository (64 KiB chunks by
 * default) in its own scratch directory; read `t.repo` and `t.dir` inside the tests.
 */
export function useRepository(chunkSize = 64 * 1024): {readonly repo: Repository; readonly dir: string} {
  let current: {repo: Repository; dir: string; cleanup: () => Promise<void>} | undefined;
  beforeEach(async () => {
    const s = await scratch();
    current = {repo: await createRepository(join(s.dir, 'repo'), {chunkSize}), dir: s.dir, cleanup: s.cleanup};
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return {
    get repo() {
      return current!.repo;
    },
    get dir() {
      return current!.dir;
    },
  };
}

/**
 * Starts the crash-test writer (fixtures/writer.ts) on `repoPath`, waits until it reports `stage`,
 * kills it with SIGKILL; its output lines. Chunk i of its disk is pseudoRandom(chunk size, seed * 1000 + i).
 */
export async function killWriterAt(repoPath: string, stage: string, seed: number): Promise<string[]> {
  const child = execa('node', ['--import', 'tsx', 'test/repository/fixtures/writer.ts', repoPath, stage, String(seed)], {
    cwd: join(import.meta.dirname, '..', '..'),
    reject: false,
    buffer: false,
  });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (b: Buffer) => {
      text += b.toString();
      const done = text.split('\n');
      text = done.pop()!;
      lines.push(...done);
      if (done.includes(`stage:${stage}`)) resolve();
    });
    void child.then((r) => reject(new Error(`writer exited before ${stage}: ${r.exitCode} ${r.stderr ?? ''}`)));
  });
  child.kill('SIGKILL');
  const r = await child;
  if (r.signal !== 'SIGKILL') throw new Error(`the fixture writer ended with ${r.exitCode ?? r.signal}, not SIGKILL`);
  return lines;
}
