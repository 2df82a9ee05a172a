/**
 * File-level restore with the real libguestfs (Debian libguestfs-tools, its appliance under TCG)
 * reading a restore point over our own NBD export: a bench-like disk — GPT, one ext4 partition
 * made with mkfs.ext4 -d from this machine's /usr/share/doc (packages a–e) as /doc, plus hostile and special
 * entries (a newline and terminal escapes in names, a symbolic link, other owners, setuid, old
 * times, an empty directory) — is backed up into a repository; `files ls /doc` must list what
 * the staging tree holds, `files get` must bring back identical files with owners, modes and
 * times. What it refuses is refused before libguestfs starts. And the export of that disk
 * (issue #18): nbdcopy over it gives the disk bit for bit and skips its zeros.
 */
import {createHash} from 'node:crypto';
import {chmod, chown, lstat, mkdir, readFile, readdir, readlink, rm, symlink, utimes, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {backupImage, scratch} from '../repository/helpers.js';
import {vmbackup} from '../lib/cli.js';
import {fileURLToPath} from 'node:url';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => Promise<void>;
let repo: Repository;
let stage: string;
let point: string;

const HOSTILE = 'we ird\nname \u001b[31mred';

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-files-'));
  stage = join(dir, 'stage');
  await mkdir(stage);
  // /usr/share/doc of the packages a–e (~7 MB, ~650 files): libguestfs runs under TCG here and
  // copies out a few MB/s of small files; the whole of it would cost the suite a minute more.
  await mkdir(join(stage, 'doc'));
  const pick = (await readdir('/usr/share/doc')).filter((n) => /^[a-e]/.test(n));
  await execa('cp', ['-a', '--', ...pick.map((n) => join('/usr/share/doc', n)), join(stage, 'doc')]);
  const special = join(stage, 'doc', 'zz-special');
  await mkdir(join(special, 'empty'), {recursive: true});
  await mkdir(join(special, 'private'), {mode: 0o750});
  await writeFile(join(special, HOSTILE), 'hostile name\n');
  await writeFile(join(special, 'private', 'secret.txt'), 'only for 1234\n');
  await chown(join(special, 'private'), 1234, 5678);
  await chown(join(special, 'private', 'secret.txt'), 1234, 5678);
  await chmod(join(special, 'private', 'secret.txt'), 0o640);
  await writeFile(join(special, 'tool'), '#!/bin/sh\n');
  await chmod(join(special, 'tool'), 0o4755);
  await symlink('../bash/README', join(special, 'link'));
  const old = new Date('2001-02-03T04:05:06Z');
  await utimes(join(special, 'private', 'secret.txt'), old, old);
  await utimes(join(special, 'private'), old, old);
  // 320 MiB, GPT, partition 1 from 1 MiB: ext4 made from the staging tree.
  const image = join(dir, 'disk.raw');
  await execa('truncate', ['-s', `${320 * MiB}`, image]);
  await execa('sfdisk', ['-q', image], {input: 'label: gpt\nstart=2048, size=651264, type=linux, name=data\n'});
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'benchdoc', '-d', stage, '-E', `offset=${MiB}`, image, '318M']);
  repo = await createRepository(join(dir, 'repo'));
  point = (await backupImage(repo, await readFile(image), {vmName: 'files-vm', key: 'vda'})).id;
}, 180_000);
afterAll(async () => cleanup?.());

interface Entry {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  target?: string;
}

/** What lstat says of a local tree, relative paths → type, mode, owner, size, mtime (s), target, content hash. */
async function tree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    const p = join(root, rel);
    const st = await lstat(p);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
    const extra = type === 'link' ? await readlink(p) : type === 'file' ? createHash('sha256').update(await readFile(p)).digest('hex') : '';
    out.set(rel || '.', `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${type === 'file' ? st.size : ''} ${Math.floor(st.mtimeMs / 1000)} ${extra}`);
    if (type === 'dir') for (const n of await readdir(p)) await walk(rel ? join(rel, n) : n);
  };
  await walk('');
  return out;
}

describe('vmbackup export of the bench-like disk', () => {
  it('nbdcopy over the export gives the disk bit for bit and skips its zeros (the copy is sparse)', async () => {
    const sock = join(dir, 'export.sock');
    const proc = execa(process.execPath, [CLI_MAIN, 'export', '--repo', join(dir, 'repo'), '--restore-point', point, '--socket', sock], {cwd: ROOT, reject: false});
    try {
      for (let i = 0; i < 200 && !(await lstat(sock).then((s) => s.isSocket(), () => false)); i++) await new Promise((r) => setTimeout(r, 50));
      const copy = join(dir, 'copy.raw');
      await execa('nbdcopy', [`nbd+unix:///vda?socket=${sock}`, copy]);
      const cmp = await execa('cmp', [join(dir, 'disk.raw'), copy], {reject: false});
      expect(cmp.exitCode, cmp.stdout).toBe(0);
      // Block status told nbdcopy where the zeros are: it wrote only the data (~10 of 320 MiB).
      const allocated = Number((await execa('stat', ['-c', '%b', copy])).stdout) * 512;
      expect(allocated).toBeLessThan(0.3 * 320 * MiB);
      await rm(copy);
    } finally {
      proc.kill('SIGINT');
      await proc;
    }
  }, 120_000);
});

describe('vmbackup files', () => {
  it('ls /doc lists what the disk holds: names (hostile ones too), types, sizes, modes, owners, times, link targets', async () => {
    const r = await vmbackup(['files', 'ls', '--repo', join(dir, 'repo'), '--vm', 'files-vm', '/doc', '--json'], {timeoutMs: 300_000});
    expect(r.exitCode, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as {restorePoint: string; layout: {kind: string; mounts: {mountpoint: string; device: string}[]}; entries: Entry[]};
    expect(got.restorePoint).toBe(point);
    expect(got.layout).toMatchObject({kind: 'filesystem', mounts: [{mountpoint: '/', device: '/dev/sda1'}]});
    const names = (await readdir(join(stage, 'doc'))).sort();
    expect(got.entries.map((e) => e.name)).toEqual(names);
    for (const e of got.entries) {
      const st = await lstat(join(stage, 'doc', e.name));
      expect({name: e.name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: Math.floor(e.mtimeMs / 1000)}).toEqual({name: e.name, mode: st.mode, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000)});
    }
    // The hold ended with the command.
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 300_000);

  it('get brings back a directory tree and a single file identical, with owners, modes and times', async () => {
    const out = join(dir, 'out');
    await mkdir(out);
    const r = await vmbackup(['files', 'get', '--repo', join(dir, 'repo'), '--restore-point', point, '/doc', `/doc/zz-special/${HOSTILE}`, '--to', out, '--json'], {timeoutMs: 300_000});
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const res = JSON.parse(r.stdout) as {copied: {path: string; type: string}[]};
    expect(res.copied.map((c) => c.type)).toEqual(['dir', 'file']);
    const want = await tree(join(stage, 'doc'));
    const have = await tree(join(out, 'doc'));
    // The directory itself: its mode and owner; lost+found is not under /doc.
    expect([...have.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(have.get(k), k).toBe(v);
    const single = await tree(join(out, HOSTILE));
    expect(single.get('.')).toBe(want.get(join('zz-special', HOSTILE)));
    const refused = await vmbackup(['files', 'get', '--repo', join(dir, 'repo'), '--vm', 'files-vm', '/doc', '--to', out]);
    expect(refused.exitCode).toBe(17);
    expect(refused.stderr).toContain('already exists');
  }, 300_000);

  it('refuses at once what it cannot do: no --to directory, two paths with one name, a relative path, an unknown disk', async () => {
    const base = ['files', 'get', '--repo', join(dir, 'repo'), '--vm', 'files-vm'];
    const noDir = await vmbackup([...base, '/doc', '--to', join(dir, 'nope')]);
    expect(noDir.exitCode).toBe(16);
    await mkdir(join(dir, 'out2'));
    const twice = await vmbackup([...base, '/doc/bash', '/usr/bash', '--to', join(dir, 'out2')]);
    expect(twice.exitCode).toBe(2);
    const relative = await vmbackup([...base, 'doc', '--to', join(dir, 'out2')]);
    expect(relative.exitCode).toBe(2);
    const disk = await vmbackup(['files', 'ls', '--repo', join(dir, 'repo'), '--vm', 'files-vm', '--disk', 'vdz', '/']);
    expect(disk.exitCode).toBe(16);
    expect(disk.stderr).toContain('no disk vdz');
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 60_000);
});
