/**
 * The storage backend conformance suite: the contract of src/repository/storage/backend.ts in
 * executable form. Every backend runs the same cases (as restic runs one suite for every
 * backend); a new backend is added to BACKENDS and must pass them unchanged.
 */
import {mkdir, readdir, symlink, utimes, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {SELF_LEASE} from '../../src/util/process-lease.js';
import type {StorageBackend} from '../../src/repository/storage/backend.js';
import {LocalDirectoryBackend} from '../../src/repository/storage/local.js';
import {MemoryBackend} from '../../src/repository/storage/memory.js';
import {SshBackend} from '../../src/repository/storage/ssh.js';
import {parseSshUrl} from '../../src/util/ssh-url.js';
import {ageSwiftObject, emptySwiftPrefix, swiftBackend} from '../lib/swift.js';
import {sshRepoAccess, sshRepoUrl} from '../lib/ssh-repo.js';
import {scratch} from './helpers.js';

interface Bed {
  backend: StorageBackend;
  /** Makes the object look last written `ms` ago, behind the backend's back (time passing). */
  age(key: string, ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

const BACKENDS: {name: string; make: () => Promise<Bed>}[] = [
  {
    name: 'local directory',
    make: async () => {
      const s = await scratch('vmb-storage-');
      const backend = new LocalDirectoryBackend(s.dir);
      return {
        backend,
        age: async (key, ms) => {
          const when = new Date(Date.now() - ms);
          await utimes(join(s.dir, key), when, when);
        },
        cleanup: s.cleanup,
      };
    },
  },
  {
    name: 'in memory',
    make: async () => {
      const backend = new MemoryBackend();
      return {
        backend,
        age: async (key, ms) => {
          backend.objects.get(key)!.modifiedMs = Date.now() - ms;
        },
        cleanup: async () => undefined,
      };
    },
  },
  {
    // A real S3 server: OpenStack Swift with s3api (test/setup.d/50-swift.sh).
    name: 'S3 (Swift s3api)',
    make: async () => {
      const backend = await swiftBackend('conformance');
      return {
        backend,
        age: (key, ms) => ageSwiftObject(backend, key, ms),
        cleanup: async () => {
          await emptySwiftPrefix(backend);
          backend.client.close();
        },
      };
    },
  },
  {
    // Another appliance over SSH: the test bed's real sshd runs the real `vmbackup repo serve`.
    // One session for the file (each costs an SSH login and a Node start there); each test
    // empties the directory through the backend, as a fresh one would be.
    name: 'SSH (vmbackup repo serve)',
    make: async () => {
      sshBed ??= (async () => {
        const s = await scratch('vmb-storage-ssh-');
        return {dir: s.dir, cleanup: s.cleanup, backend: new SshBackend(parseSshUrl(sshRepoUrl(s.dir))!, await sshRepoAccess())};
      })();
      const {dir, backend} = await sshBed;
      return {
        backend,
        age: async (key, ms) => {
          const when = new Date(Date.now() - ms);
          await utimes(join(dir, key), when, when);
        },
        cleanup: async () => {
          for (const e of await backend.list('')) {
            if (e.dir) await backend.deleteTree(e.name);
            else await backend.delete(e.name);
          }
        },
      };
    },
  },
];

let sshBed: Promise<{dir: string; cleanup: () => Promise<void>; backend: SshBackend}> | undefined;
afterAll(async () => {
  const bed = await sshBed;
  await bed?.backend.close();
  await bed?.cleanup();
});

const b = (s: string) => Buffer.from(s);
const MAX = {max: 1 << 20, what: 'test object'};

describe.each(BACKENDS)('storage backend: $name', ({make}) => {
  let bed: Bed;
  let s: StorageBackend;
  beforeEach(async () => {
    bed = await make();
    s = bed.backend;
  });
  afterEach(async () => {
    await bed.cleanup();
  });

  it('get returns what put stored, undefined for a key never stored, and refuses an object over max as damaged', async () => {
    expect(await s.get('a/b/c', MAX)).toBeUndefined();
    await s.put('a/b/c', [b('hello '), b('world')]);
    expect((await s.get('a/b/c', MAX))!.toString()).toBe('hello world');
    const err = await s.get('a/b/c', {max: 5, what: 'manifest'}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.corrupt);
    expect((err as Error).message).toMatch(/manifest is 11 bytes, more than the 5/);
  });

  it('put replaces atomically: until it is visible a reader sees the old object whole', async () => {
    await s.put('k', [b('old')]);
    let during: string | undefined;
    await s.put('k', [b('new value')], {
      beforeVisible: async () => {
        during = (await s.get('k', MAX))?.toString();
      },
    });
    expect(during).toBe('old');
    expect((await s.get('k', MAX))!.toString()).toBe('new value');
  });

  it('putIfAbsent writes once and never replaces; of racing puts exactly one wins', async () => {
    expect(await s.putIfAbsent('chunks/ab/x', [b('first')])).toBe(true);
    expect(await s.putIfAbsent('chunks/ab/x', [b('second')])).toBe(false);
    expect((await s.get('chunks/ab/x', MAX))!.toString()).toBe('first');
    const wins = await Promise.all(Array.from({length: 8}, (_, i) => s.putIfAbsent('chunks/cd/y', [b(`w${i}`)])));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect((await s.get('chunks/cd/y', MAX))!.toString()).toMatch(/^w\d$/);
    // A caller that has just seen the key absent (a content-addressed chunk) may say so: it is written.
    expect(await s.putIfAbsent('chunks/ef/z', [b('seen')], {seenAbsent: true})).toBe(true);
    expect((await s.get('chunks/ef/z', MAX))!.toString()).toBe('seen');
  });

  it('list gives the entries directly under a name, directories apart from objects; [] for none', async () => {
    await s.put('points/p1/manifest.json', [b('{}')]);
    await s.put('points/p1/disk-0.idx', [b('i')]);
    await s.put('points/p2/disk-0.idx', [b('i')]);
    await s.put('config', [b('c')]);
    const sorted = (l: {name: string; dir: boolean}[]) => [...l].sort((x, y) => x.name.localeCompare(y.name));
    expect(sorted(await s.list(''))).toEqual([
      {name: 'config', dir: false},
      {name: 'points', dir: true},
    ]);
    expect(sorted(await s.list('points'))).toEqual([
      {name: 'p1', dir: true},
      {name: 'p2', dir: true},
    ]);
    expect(sorted(await s.list('points/p1'))).toEqual([
      {name: 'disk-0.idx', dir: false},
      {name: 'manifest.json', dir: false},
    ]);
    expect(await s.list('nothing/here')).toEqual([]);
  });

  it('stat gives size and modification time; touch moves the time to now, false for a missing object', async () => {
    await s.put('c', [b('12345')]);
    await bed.age('c', 3_600_000);
    const old = (await s.stat('c'))!;
    expect(old.size).toBe(5);
    expect(Date.now() - old.modifiedMs).toBeGreaterThan(3_500_000);
    expect(await s.touch('c')).toBe(true);
    expect(Date.now() - (await s.stat('c'))!.modifiedMs).toBeLessThan(60_000);
    expect(await s.touch('missing')).toBe(false);
    expect(await s.stat('missing')).toBeUndefined();
  });

  it('delete removes one object; deleteTree everything under a name and nothing beside it', async () => {
    await s.put('points/a/x', [b('1')]);
    await s.put('points/a/sub/y', [b('2')]);
    await s.put('points/ab/z', [b('3')]);
    expect(await s.delete('points/a/x')).toBe(true);
    expect(await s.delete('points/a/x')).toBe(false);
    await s.deleteTree('points/a');
    expect(await s.stat('points/a/sub/y')).toBeUndefined();
    expect((await s.list('points')).map((e) => e.name)).toEqual(['ab']);
    expect((await s.get('points/ab/z', MAX))!.toString()).toBe('3');
    await s.deleteTree('points/never'); // nothing there: no error
    await s.sync();
  });

  it('deleteIfOlder removes only what was not written or touched since the cut-off', async () => {
    await s.put('chunks/00/old', [b('old')]);
    await s.put('chunks/00/young', [b('young')]);
    await s.put('chunks/00/touched', [b('t')]);
    await bed.age('chunks/00/old', 600_000);
    await bed.age('chunks/00/touched', 600_000);
    await s.touch('chunks/00/touched');
    const cutoff = Date.now() - 60_000;
    expect(await s.deleteIfOlder('chunks/00/old', cutoff)).toEqual({status: 'deleted', size: 3});
    expect(await s.deleteIfOlder('chunks/00/young', cutoff)).toEqual({status: 'kept', size: 5});
    expect(await s.deleteIfOlder('chunks/00/touched', cutoff)).toEqual({status: 'kept', size: 1});
    expect(await s.deleteIfOlder('chunks/00/gone', cutoff)).toEqual({status: 'absent'});
    expect((await s.list('chunks/00')).map((e) => e.name).sort()).toEqual(['touched', 'young']);
  });

  it('deleteIfOlder racing with touches never removes an object touched before it decided', async () => {
    for (let round = 0; round < 20; round++) {
      const key = `chunks/11/r${round}`;
      await s.put(key, [b('x')]);
      await bed.age(key, 600_000);
      const cutoff = Date.now() - 60_000;
      const [touched, del] = await Promise.all([s.touch(key), s.deleteIfOlder(key, cutoff)]);
      const there = (await s.stat(key)) !== undefined;
      // Either the touch came first and the object stays, or the delete did and the toucher learns it is gone.
      if (touched && del.status !== 'deleted') expect(there).toBe(true);
      if (del.status === 'deleted') expect(there).toBe(false);
    }
  });

  it('rename moves an object, false when there is none, and never overwrites', async () => {
    await s.put('chunks/aa/x', [b('bad')]);
    expect(await s.rename('chunks/aa/x', 'chunks/aa/x.bad')).toBe(true);
    expect(await s.stat('chunks/aa/x')).toBeUndefined();
    expect((await s.get('chunks/aa/x.bad', MAX))!.toString()).toBe('bad');
    expect(await s.rename('chunks/aa/x', 'chunks/aa/x.bad.1')).toBe(false);
    await s.put('chunks/aa/y', [b('y')]);
    await expect(s.rename('chunks/aa/y', 'chunks/aa/x.bad')).rejects.toThrow(/exists/);
    await s.sync();
  });

  it('append creates and extends an object', async () => {
    await s.append('writers/w.chunks', 'a\n');
    await s.append('writers/w.chunks', 'b\n');
    expect((await s.get('writers/w.chunks', MAX))!.toString()).toBe('a\nb\n');
  });

  it('refuses keys that could leave the repository', async () => {
    for (const k of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '.', 'a/./b', '']) {
      await expect(s.put(k, [b('x')]), k).rejects.toThrow(/invalid storage key/);
      await expect(s.get(k, MAX), k).rejects.toThrow(/invalid storage key/);
    }
    await expect(s.deleteTree('..')).rejects.toThrow(/invalid storage key/);
  });

  it('lock: one holder at a time; a second waits and then fails as locked, naming the holder; release lets the next in', async () => {
    const opts = {purpose: 'backup of VM a', timeoutMs: 0, what: 'backup of VM "a"', hint: 'wait'};
    const first = await s.lock('locks/vm-a.lock', opts);
    const err = await s.lock('locks/vm-a.lock', {...opts, timeoutMs: 150}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.locked);
    // The holder is named: this process, or the one that holds it for this process (over SSH).
    expect((err as Error).message).toMatch(/locked by process \d+ .*backup of VM a/);
    expect((err as Error).message).toContain(`process ${process.pid}`);
    const other = await s.lock('locks/vm-b.lock', opts); // another key: no wait
    const waiting = s.lock('locks/vm-a.lock', {...opts, timeoutMs: 5_000});
    await sleep(50);
    await first.release();
    const second = await waiting;
    await second.release();
    await other.release();
    await first.release(); // twice: harmless
  });

  it('lock: a stop while waiting ends the wait as cancelled', async () => {
    const opts = {purpose: 'gc', timeoutMs: 10_000, what: 'garbage collection', hint: 'wait'};
    const held = await s.lock('locks/gc.lock', opts);
    const ac = new AbortController();
    const waiting = s.lock('locks/gc.lock', {...opts, signal: ac.signal}).catch((e: unknown) => e);
    ac.abort();
    const err = await waiting;
    expect((err as UserError).exitCode).toBe(ExitCode.cancelled);
    await held.release();
  });

  it('ownerAlive: this process is alive, a process that is not is not', () => {
    expect(s.ownerAlive({pid: process.pid, pidStart: ownStart(), host: hostOf(), since: Date.now(), purpose: 'x'})).toBe(true);
    expect(s.ownerAlive({pid: 2 ** 22 + 17, pidStart: '1', host: hostOf(), since: Date.now(), purpose: 'x'})).toBe(false);
  });

  it('sweepLeftovers leaves committed objects alone', async () => {
    await s.put('chunks/ab/c', [b('c')]);
    await bed.age('chunks/ab/c', 3_600_000);
    const r = await s.sweepLeftovers('chunks/ab', Date.now(), {maxBytes: 1 << 20, wants: () => true, holds: () => true});
    expect(r).toEqual({removed: 0, recovered: 0});
    expect(await s.stat('chunks/ab/c')).toBeDefined();
  });
});

describe('local directory backend: what only a directory can hold', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let s: LocalDirectoryBackend;
  beforeEach(async () => {
    ({dir, cleanup} = await scratch('vmb-storage-'));
    s = new LocalDirectoryBackend(join(dir, 'repo'));
    await mkdir(join(dir, 'repo', 'points'), {recursive: true});
  });
  afterEach(async () => cleanup());

  it('never follows a symbolic link planted in the repository: not listed, not read, not removed through', async () => {
    await mkdir(join(dir, 'outside'));
    await writeFile(join(dir, 'outside', 'precious'), 'x');
    await symlink(join(dir, 'outside'), join(dir, 'repo', 'points', 'evil'));
    await symlink(join(dir, 'outside', 'precious'), join(dir, 'repo', 'points', 'file-link'));
    expect(await s.list('points')).toEqual([]);
    await expect(s.get('points/file-link', MAX)).rejects.toThrow(/symbolic link/);
    await expect(s.deleteTree('points/evil')).rejects.toThrow(/left alone/);
    expect(await readdir(join(dir, 'outside'))).toEqual(['precious']);
  });

  it('hides its temp files from list, removes old ones, and puts back an aside copy that recover vouches for', async () => {
    await mkdir(join(dir, 'repo', 'chunks', 'ab'), {recursive: true});
    const p = join(dir, 'repo', 'chunks', 'ab');
    await writeFile(join(p, 'kept.tmp-1-aa'), 'the chunk');
    await writeFile(join(p, 'junk.tmp-1-bb'), 'half');
    await writeFile(join(p, 'fresh.tmp-1-cc'), 'in progress');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(p, 'kept.tmp-1-aa'), old, old);
    await utimes(join(p, 'junk.tmp-1-bb'), old, old);
    expect(await s.list('chunks/ab')).toEqual([]);
    const r = await s.sweepLeftovers('chunks/ab', Date.now() - 60_000, {
      maxBytes: 1 << 20,
      wants: (k) => k === 'chunks/ab/kept',
      holds: (_k, bytes) => bytes.toString() === 'the chunk',
    });
    expect(r).toEqual({removed: 1, recovered: 1});
    expect((await readdir(p)).sort()).toEqual(['fresh.tmp-1-cc', 'kept']);
  });
});

function ownStart(): string {
  return SELF_LEASE.pidStart;
}
function hostOf(): string {
  return SELF_LEASE.host;
}
