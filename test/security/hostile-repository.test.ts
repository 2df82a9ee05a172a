/**
 * A repository is untrusted input (docs/security.md): each test here plants what an attacker
 * with write access to a repository (shared storage, a copy from another site) would plant,
 * and checks that the appliance, running as root, refuses it without touching anything outside.
 */
import {mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {CHUNK_MAGIC, FLAG_LZ4, chunkId} from '../../src/repository/chunk-file.js';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';
import {backupImage, pseudoRandom} from '../repository/helpers.js';
import {maxRssKiB} from './rss.js';

const CS = 64 * 1024;
let dir: string;
let repoPath: string;
let victim: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-hostile-'));
  repoPath = join(dir, 'repo');
  victim = join(dir, 'victim');
  await mkdir(victim);
  await writeFile(join(victim, 'precious'), 'do not delete');
  repo = await createRepository(repoPath, {chunkSize: CS});
});
afterEach(async () => {
  await rm(dir, {recursive: true, force: true});
});

const manifestPath = (id: string) => join(repoPath, 'points', id, 'manifest.json');

async function editManifest(id: string, edit: (m: Record<string, any>) => void): Promise<void> {
  const m = JSON.parse(await readFile(manifestPath(id), 'utf8'));
  edit(m);
  await writeFile(manifestPath(id), JSON.stringify(m));
}

async function victimIntact(): Promise<void> {
  expect(await readFile(join(victim, 'precious'), 'utf8')).toBe('do not delete');
}

describe('hostile manifests', () => {
  it('a manifest whose id climbs out of the repository never makes prune delete that directory', async () => {
    const old = await backupImage(repo, pseudoRandom(CS, 1));
    await backupImage(repo, pseudoRandom(CS, 2));
    // The attack: the older point's manifest names a directory outside the repository.
    await editManifest(old.id, (m) => {
      m.id = '../../victim';
    });
    const r = await vmbackup(['repo', 'prune', repoPath, '--keep-last', '1']);
    await victimIntact();
    expect(r.stdout + r.stderr).not.toContain('victim');
    // The damaged point is named by verify, and nothing else was removed.
    const v = await vmbackup(['repo', 'verify', repoPath]);
    expect(v.exitCode).toBe(ExitCode.verifyFailed);
    expect(v.stdout + v.stderr).toContain(old.id);
    expect(v.stdout + v.stderr).toMatch(/restore point id|not the name of its directory|pointId/);
  });

  it('a manifest that claims another restore point\'s id is refused, so prune cannot remove the wrong one', async () => {
    const a = await backupImage(repo, pseudoRandom(CS, 1));
    const b = await backupImage(repo, pseudoRandom(CS, 2));
    await editManifest(a.id, (m) => {
      m.id = b.id;
      m.time = '2000-01-01T00:00:00.000Z';
    });
    const err = (await repo.openRestorePoint(a.id).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toContain(manifestPath(a.id));
    await repo.prune({keepLast: 1});
    // b, the newest valid point, is kept.
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([b.id]);
  });

  it.each([
    ['disk key', (m: Record<string, any>) => (m.disks[0].key = '../../../victim/x')],
    ['disk format', (m: Record<string, any>) => (m.disks[0].format = 'qcow2/../../x')],
    ['VM id', (m: Record<string, any>) => (m.vm.id = '--help')],
    ['checkpoint id', (m: Record<string, any>) => (m.checkpoint = {id: '../../x'})],
    ['base', (m: Record<string, any>) => (m.base = '../x')],
    ['chunk size', (m: Record<string, any>) => (m.chunkSize = 1 << 30)],
  ])('a manifest with a hostile %s is refused when read, naming the file', async (_what, edit) => {
    const p = await backupImage(repo, pseudoRandom(CS, 1));
    await editManifest(p.id, edit);
    const err = (await repo.openRestorePoint(p.id).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toContain(manifestPath(p.id));
  });

  it('restore refuses a restore point whose disk key would write outside the target directory', async () => {
    const p = await backupImage(repo, pseudoRandom(CS, 1), {vmName: 'web'});
    await editManifest(p.id, (m) => (m.disks[0].key = '../../victim/evil'));
    const target = join(dir, 'restore-target');
    const r = await vmbackup(['restore', '--repo', repoPath, '--restore-point', p.id, '--to-files', target]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(manifestPath(p.id));
    expect(await readdir(victim)).toEqual(['precious']);
  });

  it('prune and gc never follow a symbolic link planted under points/ or chunks/', async () => {
    const a = await backupImage(repo, pseudoRandom(CS, 1));
    await backupImage(repo, pseudoRandom(CS, 2));
    // A link that looks like a restore point, whose manifest (outside) is an old copy of a's.
    await mkdir(join(victim, 'fake'));
    const m = JSON.parse(await readFile(manifestPath(a.id), 'utf8'));
    const fakeId = 'web-01-20000101t000000z-abcdef';
    await writeFile(join(victim, 'fake', 'manifest.json'), JSON.stringify({...m, id: fakeId, time: '2000-01-01T00:00:00.000Z'}));
    await symlink(join(victim, 'fake'), join(repoPath, 'points', fakeId));
    // A chunk directory that is a link to a directory holding files GC would sweep.
    await writeFile(join(victim, `${'ab'.repeat(32)}.bad`), 'x');
    await rm(join(repoPath, 'chunks', 'ee'), {recursive: true, force: true});
    await symlink(victim, join(repoPath, 'chunks', 'ee'));
    await repo.prune({keepLast: 1});
    await repo.gc({safetyMarginMs: 0});
    await victimIntact();
    expect((await readdir(join(victim, 'fake'))).sort()).toEqual(['manifest.json']);
    expect(await readdir(victim)).toContain(`${'ab'.repeat(32)}.bad`);
  });
});

describe('LZ4 bomb', () => {
  /** 20 bytes: a format 2 header and an LZ4 payload whose size prefix claims ~4 GiB. */
  function bomb(): Buffer {
    const f = Buffer.alloc(20);
    CHUNK_MAGIC.copy(f, 0);
    f.writeUInt8(2, 4);
    f.writeUInt8(FLAG_LZ4, 5);
    f.writeUInt32LE(0xffff_fff0, 8);
    f.writeUInt32LE(0xffff_fff0, 12);
    return f;
  }

  it('a chunk whose size prefix claims 4 GiB is reported damaged by verify and restore, without allocating it', async () => {
    const data = pseudoRandom(CS, 7);
    const p = await backupImage(repo, data);
    const hex = chunkId(data).toString('hex');
    const chunk = join(repoPath, 'chunks', hex.slice(0, 2), hex);
    await writeFile(chunk, bomb());

    const verify = await maxRssKiB(['repo', 'verify', repoPath]);
    expect(verify.exitCode).toBe(ExitCode.verifyFailed);
    expect(verify.stdout + verify.stderr).toContain(hex);
    expect(verify.stdout + verify.stderr).toMatch(/claims/);
    expect(verify.maxRssKiB).toBeLessThan(512 * 1024);

    await writeFile(chunk, bomb()); // verify quarantined it; plant it again
    const restore = await maxRssKiB(['restore', '--repo', repoPath, '--restore-point', p.id, '--to-files', join(dir, 'out')]);
    expect(restore.exitCode).toBe(ExitCode.corrupt);
    expect(restore.stderr).toContain(hex);
    expect(restore.maxRssKiB).toBeLessThan(512 * 1024);
  });

  it('a chunk file larger than a chunk can be is refused before it is read', async () => {
    const data = pseudoRandom(CS, 8);
    await backupImage(repo, data);
    const hex = chunkId(data).toString('hex');
    const chunk = join(repoPath, 'chunks', hex.slice(0, 2), hex);
    // Sparse: 8 GiB that cost no disk space.
    await writeFile(chunk, bomb());
    await (await import('node:fs/promises')).truncate(chunk, 8 * 2 ** 30);
    const v = await repo.verify();
    expect(v.ok).toBe(false);
    expect(JSON.stringify(v)).toMatch(/larger than a chunk/);
  });

  it('a repository configuration or manifest that is gigabytes large is refused before it is read', async () => {
    const p = await backupImage(repo, pseudoRandom(CS, 1));
    const {truncate} = await import('node:fs/promises');
    await truncate(manifestPath(p.id), 4 * 2 ** 30);
    const err = (await repo.openRestorePoint(p.id).catch((e: unknown) => e)) as UserError;
    expect(err.exitCode).toBe(ExitCode.corrupt);
    expect(err.message).toMatch(/more than the .* bytes/);
    await truncate(join(repoPath, 'vmbackup-repository.json'), 4 * 2 ** 30);
    const open = (await openRepository(repoPath).catch((e: unknown) => e)) as UserError;
    expect(open).toBeInstanceOf(UserError);
    expect(open.exitCode).toBe(ExitCode.notARepository);
    expect((await stat(victim)).isDirectory()).toBe(true);
  });
});
