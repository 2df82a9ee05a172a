import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {createRepository, openRepository} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {backupImage, expectContent, pseudoRandom, scratch} from './helpers.js';

let s: Awaited<ReturnType<typeof scratch>>;
beforeEach(async () => {
  s = await scratch();
});
afterEach(async () => s.cleanup());

describe('create, open, import', () => {
  it('creates a repository with a config naming format, version, chunk size and id', async () => {
    const repo = await createRepository(join(s.dir, 'r'), {chunkSize: 128 * 1024});
    const cfg = JSON.parse(await readFile(join(s.dir, 'r', 'vmbackup-repository.json'), 'utf8'));
    expect(cfg).toMatchObject({format: 'vmbackup-repository', version: 2, chunkSize: 131072, id: repo.id});
    const again = await openRepository(join(s.dir, 'r'));
    expect(again.id).toBe(repo.id);
    expect(again.chunkSize).toBe(131072);
    expect(again.formatVersion).toBe(2);
  });

  it('makes an older format on request, and refuses one it does not know', async () => {
    const v1 = await createRepository(join(s.dir, 'v1'), {formatVersion: 1});
    expect(JSON.parse(await readFile(join(v1.path, 'vmbackup-repository.json'), 'utf8')).version).toBe(1);
    expect((await openRepository(v1.path)).formatVersion).toBe(1);
    await expect(createRepository(join(s.dir, 'v4'), {formatVersion: 4})).rejects.toMatchObject({exitCode: ExitCode.invalidInput, message: expect.stringMatching(/format version 4/)});
  });

  it('defaults to 1 MiB chunks and refuses sizes that are not a power of two', async () => {
    expect((await createRepository(join(s.dir, 'd'))).chunkSize).toBe(1 << 20);
    await expect(createRepository(join(s.dir, 'e'), {chunkSize: 1000 * 1000})).rejects.toMatchObject({exitCode: ExitCode.invalidInput});
    await expect(createRepository(join(s.dir, 'f'), {chunkSize: 1 << 30})).rejects.toThrow(/power of two/);
  });

  it('refuses to create over an existing repository or a non-empty directory', async () => {
    await createRepository(join(s.dir, 'r'));
    await expect(createRepository(join(s.dir, 'r'))).rejects.toThrow(/already holds a repository/);
    await mkdir(join(s.dir, 'busy'));
    await writeFile(join(s.dir, 'busy', 'x'), 'x');
    await expect(createRepository(join(s.dir, 'busy'))).rejects.toThrow(/not empty/);
  });

  it('a copy of the directory at another path opens and lists and reads its restore points', async () => {
    const repo = await createRepository(join(s.dir, 'orig'), {chunkSize: 64 * 1024});
    const image = pseudoRandom(200 * 1024, 3);
    const a = await backupImage(repo, image, {vmName: 'mail server'});
    await cp(join(s.dir, 'orig'), join(s.dir, 'elsewhere', 'copy'), {recursive: true});
    const copy = await openRepository(join(s.dir, 'elsewhere', 'copy'));
    expect(copy.id).toBe(repo.id);
    const list = await copy.listRestorePoints();
    expect(list.map((p) => [p.id, p.vmName])).toEqual([[a.id, 'mail server']]);
    await expectContent(copy, a.id, 'vda', image);
    expect((await copy.verify()).ok).toBe(true);
  });

  it('a path that is not a repository fails with notARepository naming the path', async () => {
    const p = join(s.dir, 'plain dir; "x"');
    await mkdir(p);
    const err = await openRepository(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.notARepository);
    expect((err as UserError).message).toContain(p);
    expect((err as UserError).hint).toBeTruthy();
    await expect(openRepository(join(s.dir, 'missing'))).rejects.toMatchObject({exitCode: ExitCode.notARepository});
    await writeFile(join(p, 'vmbackup-repository.json'), '{"format":"something-else","version":1}');
    await expect(openRepository(p)).rejects.toMatchObject({exitCode: ExitCode.notARepository});
    await writeFile(join(p, 'vmbackup-repository.json'), 'garbage{');
    await expect(openRepository(p)).rejects.toMatchObject({exitCode: ExitCode.notARepository});
  });

  it('a repository written by a newer format version fails with unsupportedVersion naming the path', async () => {
    const repo = await createRepository(join(s.dir, 'new'));
    const file = join(repo.path, 'vmbackup-repository.json');
    const cfg = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({...cfg, version: 4}));
    const err = (await openRepository(repo.path).catch((e: unknown) => e)) as UserError;
    expect(err.exitCode).toBe(ExitCode.unsupportedVersion);
    expect(err.message).toContain(repo.path);
    expect(err.message).toContain('version 4');
  });
});
