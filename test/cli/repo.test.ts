import {mkdtemp, readdir, rm, writeFile, readFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openRepository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';

const CHUNK = 64 * 1024;
let dir: string;

async function writePoint(path: string, vmId: string, vmName: string, fill: number): Promise<string> {
  const repo = await openRepository(path);
  const w = await repo.beginRestorePoint({vmId, vmName, platform: 'test'});
  const disk = await w.addDisk({key: 'vda', name: 'vda', size: 4 * CHUNK});
  const data = Buffer.alloc(2 * CHUNK, fill);
  data.write(`${vmName} data`, 0);
  await disk.put(0, data);
  await disk.zero(2 * CHUNK, 2 * CHUNK);
  await disk.finish();
  return (await w.commit()).id;
}

function noStackTrace(text: string) {
  expect(text).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmbackup cli test ü; "q" '));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('vmbackup repo …', () => {
  it('creates a repository, shows it, and lists its restore points (human and --json)', async () => {
    const path = join(dir, 'repo one');
    const created = await vmbackup(['repo', 'create', path, '--chunk-size', '64K']);
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toContain('Created repository');

    await writePoint(path, 'uuid-1', 'web "01"; ü', 0x41);
    await writePoint(path, 'uuid-2', 'db', 0x42);

    const info = await vmbackup(['repo', 'info', path, '--json']);
    expect(info.exitCode).toBe(0);
    const parsed = JSON.parse(info.stdout);
    expect(parsed.restorePoints).toBe(2);
    expect(parsed.vms).toBe(2);
    expect(parsed.chunkSize).toBe(CHUNK);

    const list = await vmbackup(['repo', 'list', path]);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toContain('web "01"; ü');
    expect(list.stdout).toContain('db');

    const one = await vmbackup(['repo', 'list', path, '--vm', 'db', '--json']);
    expect(JSON.parse(one.stdout)).toHaveLength(1);
  });

  it('says what is wrong and exits with a stable code, without a stack trace', async () => {
    const notRepo = await vmbackup(['repo', 'info', dir]);
    expect(notRepo.exitCode).toBe(ExitCode.notARepository);
    expect(notRepo.stderr).toMatch(/^error: .*not a .*repository/im);
    expect(notRepo.stderr).toContain('what to do:');
    noStackTrace(notRepo.stderr);

    const unknown = await vmbackup(['repo', 'explode']);
    expect(unknown.exitCode).toBe(ExitCode.usage);
    noStackTrace(unknown.stderr);

    const badFlag = await vmbackup(['repo', 'list', dir, '--colour']);
    expect(badFlag.exitCode).toBe(ExitCode.usage);
    expect(badFlag.stderr).toContain('--colour');

    const noRule = await vmbackup(['repo', 'prune', dir]);
    expect(noRule.exitCode).toBe(ExitCode.usage);
    expect(noRule.stderr).toContain('--keep-last');

    const jsonErr = await vmbackup(['repo', 'info', dir, '--json']);
    expect(jsonErr.exitCode).toBe(ExitCode.notARepository);
    expect(JSON.parse(jsonErr.stdout).error.exitCode).toBe(ExitCode.notARepository);
  });

  it('prunes with retention rules, honours protection, and gc frees the space', async () => {
    const path = join(dir, 'prune');
    expect((await vmbackup(['repo', 'create', path, '--chunk-size', '64K'])).exitCode).toBe(0);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await writePoint(path, 'uuid-9', 'app', 0x50 + i));

    expect((await vmbackup(['repo', 'protect', path, ids[0]])).exitCode).toBe(0);
    const dry = await vmbackup(['repo', 'prune', path, '--keep-last', '1', '--dry-run', '--json']);
    expect(dry.exitCode).toBe(0);
    expect(JSON.parse(dry.stdout).removed.map((d: {id: string}) => d.id).sort()).toEqual([ids[1], ids[2]].sort());
    expect(await (await openRepository(path)).listRestorePoints()).toHaveLength(4);

    const pruned = await vmbackup(['repo', 'prune', path, '--keep-last', '1']);
    expect(pruned.exitCode).toBe(0);
    expect(pruned.stdout).toContain('2 kept, 2 removed');
    const left = (await (await openRepository(path)).listRestorePoints()).map((p) => p.id);
    expect(left.sort()).toEqual([ids[0], ids[3]].sort());

    const gc = await vmbackup(['repo', 'gc', path, '--json']);
    expect(gc.exitCode).toBe(0);
    // Chunks of the pruned points are younger than the safety margin, so gc keeps them pending.
    expect(JSON.parse(gc.stdout).pendingChunks + JSON.parse(gc.stdout).removedChunks).toBeGreaterThan(0);
  });

  it('verify names a damaged chunk and the restore point that uses it, and exits 14', async () => {
    const path = join(dir, 'verify');
    expect((await vmbackup(['repo', 'create', path, '--chunk-size', '64K'])).exitCode).toBe(0);
    const id = await writePoint(path, 'uuid-v', 'victim', 0x61);
    expect((await vmbackup(['repo', 'verify', path])).exitCode).toBe(0);

    const prefixes = await readdir(join(path, 'chunks'));
    const prefix = prefixes.find((p) => /^[0-9a-f]{2,4}$/.test(p))!;
    const name = (await readdir(join(path, 'chunks', prefix)))[0];
    const file = join(path, 'chunks', prefix, name);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(file, bytes);

    const bad = await vmbackup(['repo', 'verify', path]);
    expect(bad.exitCode).toBe(ExitCode.verifyFailed);
    expect(bad.stdout).toContain(name);
    expect(bad.stdout).toContain(id);
    expect(bad.stdout).toContain('victim');
  });
});
