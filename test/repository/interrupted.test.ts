/**
 * Chunk files are not fsynced one by one on the local directory (storage/local.ts): a writer
 * that a crash of the machine stops may leave new chunk files empty or short. These tests play
 * that crash: a real writer process is killed with SIGKILL, then what a power cut can leave on
 * disk is made by hand (an empty file, a file cut short, a file of zeros), and its registration
 * is made to look like one from an earlier boot. The next writer and GC must check those files
 * before anything reuses or sweeps them (interrupted.ts).
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {mkdir, readFile, readdir, stat, truncate, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {BOOT_ID} from '../../src/repository/interrupted.js';
import {isAlive, parseOwner} from '../../src/repository/lock.js';
import {backupImage, chunkFiles, expectContent, killWriterAt, pseudoRandom, scratch} from './helpers.js';

const CS = 64 * 1024;
/** The fixture writer's disk: chunk i is pseudoRandom(CS, seed * 1000 + i), 24 chunks. */
const fixtureDisk = (seed: number) => Buffer.concat(Array.from({length: 24}, (_, i) => pseudoRandom(CS, seed * 1000 + i)));

let s: Awaited<ReturnType<typeof scratch>>;
let repo: Repository;
beforeEach(async () => {
  s = await scratch();
  repo = await createRepository(join(s.dir, 'repo'), {chunkSize: CS});
  await backupImage(repo, pseudoRandom(4 * CS, 77), {vmId: 'other-vm', vmName: 'other'});
});
afterEach(async () => s.cleanup());

async function registrations(): Promise<{name: string; json: Record<string, unknown>}[]> {
  const dir = join(repo.path, 'writers');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  return Promise.all(names.map(async (name) => ({name, json: JSON.parse(await readFile(join(dir, name), 'utf8')) as Record<string, unknown>})));
}

/** The paths of the chunk files the killed writer wrote: those not in `before` (format 2: chunks/<2 hex>/<id>). */
async function newChunkFiles(before: string[]): Promise<string[]> {
  return (await chunkFiles(repo.path)).filter((f) => !before.includes(f)).map((f) => join(repo.path, 'chunks', f.slice(0, 2), f));
}

/** Makes the dead writer's registration look like one from an earlier boot of the machine. */
async function fromEarlierBoot(): Promise<void> {
  const [reg] = await registrations();
  await writeFile(join(repo.path, 'writers', reg!.name), JSON.stringify({...reg!.json, bootId: 'an-earlier-boot'}));
}

/** What a power cut can leave of three new chunk files: empty, cut short, zeros of the right size. */
async function tear(files: string[]): Promise<string[]> {
  const torn = files.slice(0, 3);
  await truncate(torn[0]!, 0);
  await truncate(torn[1]!, Math.floor((await stat(torn[1]!)).size / 2));
  await writeFile(torn[2]!, Buffer.alloc((await stat(torn[2]!)).size));
  return torn;
}

/**
 * A power cut during a backup, played: the fixture writer (disk seed `seed`) is killed once it
 * has put every chunk, three of its new chunk files are torn, and its registration is made one of
 * an earlier boot. Returns the torn files' paths.
 */
async function crashDuringBackup(seed: number): Promise<string[]> {
  const before = await chunkFiles(repo.path);
  await killWriterAt(repo.path, 'finished', seed);
  const torn = await tear(await newChunkFiles(before));
  await fromEarlierBoot();
  return torn;
}

describe('a writer that died before its sync', () => {
  it('records deferred chunk syncs and this boot in its registration', async () => {
    await killWriterAt(repo.path, 'mid-put', 3);
    const [reg] = await registrations();
    expect(reg!.json).toMatchObject({chunkSync: 'deferred', bootId: BOOT_ID});
    expect(BOOT_ID).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('killed in this boot: the next writer only syncs (no chunk file is read or set aside) and marks it settled', async () => {
    const before = await chunkFiles(repo.path);
    await killWriterAt(repo.path, 'finished', 4);
    const written = await newChunkFiles(before);
    expect(written.length).toBe(24);
    const p = await backupImage(repo, fixtureDisk(4), {vmId: 'next-vm', vmName: 'next'});
    const [reg] = await registrations();
    expect(reg!.json.chunkSync).toBe('settled');
    const m = await (await openRepository(repo.path)).openRestorePoint(p.id);
    expect(m.manifest.warnings).toEqual([]);
    // Every chunk of the new point was reused from the killed writer's files.
    expect(m.manifest.stats.reusedChunks).toBe(24);
    await expectContent(repo, p.id, 'vda', fixtureDisk(4));
  });

  it('stopped by a crash of the machine: the next writer checks its files, sets the damaged ones aside, writes them again and says so', async () => {
    const torn = await crashDuringBackup(5);
    const again = await openRepository(repo.path);
    const p = await backupImage(again, fixtureDisk(5), {vmId: 'next-vm', vmName: 'next'});
    const r = await again.openRestorePoint(p.id);
    expect(r.manifest.warnings.join('\n')).toMatch(/1 backup\(s\) in repository .* interrupted by a restart of the machine; the 2[4-9] chunk file\(s\) written since they began were checked: 3 damaged ones were set aside/);
    // The three torn files were set aside and written again from the data in hand.
    expect(r.manifest.stats.newChunks).toBe(3);
    for (const f of torn) {
      expect((await stat(`${f}.bad`)).isFile()).toBe(true);
      expect((await stat(f)).size).toBeGreaterThan(64);
    }
    await expectContent(again, p.id, 'vda', fixtureDisk(5));
    expect((await again.verify()).ok).toBe(true);
    expect((await registrations())[0]!.json.chunkSync).toBe('settled');
  });

  it('stopped by a crash of the machine: GC checks its files before it removes its registration', async () => {
    const torn = await crashDuringBackup(6);
    const again = await openRepository(repo.path);
    const g = await again.gc();
    expect(g.interrupted).toMatch(/interrupted by a restart of the machine.*3 damaged ones were set aside/);
    expect(await registrations()).toEqual([]);
    for (const f of torn) expect((await stat(`${f}.bad`)).isFile()).toBe(true);
    // Nothing that a committed point needs was touched; a backup of the same data writes the three again.
    expect((await again.verify()).ok).toBe(true);
    const p = await backupImage(again, fixtureDisk(6), {vmId: 'next-vm', vmName: 'next'});
    await expectContent(again, p.id, 'vda', fixtureDisk(6));
    expect((await again.openRestorePoint(p.id)).manifest.warnings).toEqual([]);
  });

  it('a live writer is never settled by another', async () => {
    const w = await repo.beginRestorePoint({vmId: 'live-vm', vmName: 'live', platform: 'libvirt'});
    const d = await w.addDisk({key: 'vda', name: 'disk', size: 2 * CS});
    await d.put(0, pseudoRandom(CS, 900));
    const p = await backupImage(repo, pseudoRandom(2 * CS, 901), {vmId: 'next-vm', vmName: 'next'});
    expect((await repo.openRestorePoint(p.id)).manifest.warnings).toEqual([]);
    const live = (await registrations()).find((r) => r.json.vmId === 'live-vm');
    expect(live!.json.chunkSync).toBe('deferred');
    await w.abort();
  });
});

describe('a file-system sync that fails', () => {
  it('fails the commit with the reason, leaves the registration to no live process, and the next writer settles it', async () => {
    // The failure: a `sync` on PATH that reports an I/O error, as coreutils' does when writeback failed.
    const bin = join(s.dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'sync'), '#!/bin/sh\necho "sync: error syncing \'$3\': Input/output error" >&2\nexit 1\n', {mode: 0o755});
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    let failure: unknown;
    try {
      await backupImage(repo, pseudoRandom(3 * CS, 300), {vmId: 'eio-vm', vmName: 'eio'});
    } catch (err) {
      failure = err;
    } finally {
      process.env.PATH = path;
    }
    expect(failure).toMatchObject({name: 'UserError', exitCode: 18, message: expect.stringMatching(/could not write its data to disk: sync: error syncing .*Input\/output error/)});
    const reg = (await registrations()).find((r) => r.json.vmId === 'eio-vm')!;
    expect(reg.json).toMatchObject({chunkSync: 'deferred', pidStart: 'abandoned'});
    expect(isAlive(parseOwner(JSON.stringify(reg.json))!)).toBe(false);
    // With a working sync again, the next writer syncs the file system for it and goes on.
    const p = await backupImage(repo, pseudoRandom(3 * CS, 300), {vmId: 'eio-vm', vmName: 'eio'});
    await expectContent(repo, p.id, 'vda', pseudoRandom(3 * CS, 300));
    expect((await registrations()).find((r) => r.json.vmId === 'eio-vm')!.json.chunkSync).toBe('settled');
  });
});

describe('VMBACKUP_CHUNK_SYNC=file', () => {
  it('fsyncs each chunk file and records nothing to settle', async () => {
    const old = process.env.VMBACKUP_CHUNK_SYNC;
    process.env.VMBACKUP_CHUNK_SYNC = 'file';
    try {
      const r = await openRepository(repo.path);
      const w = await r.beginRestorePoint({vmId: 'file-vm', vmName: 'file', platform: 'libvirt'});
      const [reg] = await registrations();
      expect(reg!.json.chunkSync).toBeUndefined();
      await w.abort();
    } finally {
      if (old === undefined) delete process.env.VMBACKUP_CHUNK_SYNC;
      else process.env.VMBACKUP_CHUNK_SYNC = old;
    }
  });
});
