/**
 * Files and directories as a local user on the appliance or a KVM host would attack them
 * (docs/security.md): a scratch directory created first by someone else, a symbolic link planted
 * where root writes, and files that must be private whatever the umask.
 */
import {execa} from 'execa';
import {chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises';
import {hostname, tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {cleanupHost} from '../../src/platforms/libvirt/cleanup.js';
import {LibvirtHost} from '../../src/platforms/libvirt/host.js';
import type {SessionEvent} from '../../src/platforms/types.js';
import {ensurePrivateDirSync} from '../../src/util/private-dir.js';
import {backupImage, pseudoRandom} from '../repository/helpers.js';
import {openRepository} from '../../src/repository/index.js';
import {CLI_MAIN} from '../lib/dist.js';

const NOBODY = 65534;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-local-attack-'));
  await execa('chmod', ['0755', dir]);
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

const host = (scratchDir: string) => new LibvirtHost({name: 'local', connection: {kind: 'local'}}, {scratchDir, localScratchDir: join(dir, 'local-scratch')});

describe('scratch directories on a KVM host', () => {
  it('refuses a scratch directory that another user created first, and writes nothing into it', async () => {
    const planted = join(dir, 'host-scratch-planted');
    await mkdir(planted, {mode: 0o777});
    await execa('chmod', ['1777', planted]);
    await chown(planted, NOBODY, NOBODY);
    const err = await host(planted).sessionDir('backup').then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain(`The scratch directory ${planted} on local belongs to uid ${NOBODY}`);
    expect(await readdir(planted)).toEqual([]);
  });

  it('refuses a scratch directory that is a symbolic link', async () => {
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(dir, 'host-scratch-link'));
    const err = await host(join(dir, 'host-scratch-link')).sessionDir('backup').then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/is a symbolic link, not a directory/);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('makes session directories with unpredictable names and a marker in a 0700 root, and writes files only where nothing is', async () => {
    const root = join(dir, 'host-scratch-ok');
    const h = host(root);
    const a = await h.sessionDir('backup');
    const b = await h.sessionDir('backup');
    expect(a).not.toBe(b);
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    expect((await stat(a)).mode & 0o777).toBe(0o700);
    expect(await readdir(a)).toEqual(['.vmbackup-scratch']);
    // A link where root is about to write (the attack that made dd write the domain XML
    // through it): the write fails and the link's target is untouched.
    await writeFile(join(dir, 'target-file'), 'original');
    await symlink(join(dir, 'target-file'), join(a, 'domain.xml'));
    await expect(h.writeFile(join(a, 'domain.xml'), '<domain/>')).rejects.toThrow();
    expect(await readFile(join(dir, 'target-file'), 'utf8')).toBe('original');
  });

  it('start-up cleanup removes only session directories that carry the marker, and none in an untrusted root', async () => {
    const root = join(dir, 'host-scratch-cleanup');
    const h = host(root);
    const ours = await h.sessionDir('backup');
    const live = await h.sessionDir('backup');
    h.activeScratch.delete(ours); // as after a crash: no live session holds it
    h.activeScratch.delete(live);
    // ours: its process died (kill -9); live: its process (this one) still runs.
    const deadProc = execa('true');
  const deadPid = deadProc.pid!;
  await deadProc;
    await writeFile(join(ours, '.vmbackup-scratch'), JSON.stringify({pid: deadPid, pidStart: '1', host: hostname()}));
    const foreign = join(root, 'backup-not-ours');
    await mkdir(foreign);
    await writeFile(join(foreign, 'keep'), 'x');
    const events: SessionEvent[] = [];
    await cleanupHost(host(root), undefined, (e) => events.push(e));
    expect((await readdir(root)).sort()).toEqual(['backup-not-ours', live.slice(root.length + 1)].sort());
    expect(events.map((e) => e.code)).toContain('leftover-scratch-removed');

    const planted = join(dir, 'host-scratch-untrusted');
    await mkdir(join(planted, 'backup-x'), {recursive: true});
    await writeFile(join(planted, 'backup-x', '.vmbackup-scratch'), '');
    await execa('chown', ['-R', `${NOBODY}:${NOBODY}`, planted]);
    const seen: SessionEvent[] = [];
    await cleanupHost(host(planted), undefined, (e) => seen.push(e));
    expect(await readdir(planted)).toEqual(['backup-x']);
    expect(seen.map((e) => e.code)).toContain('scratch-untrusted');
  });
});

describe('scratch directories on the appliance', () => {
  it('refuses a local scratch directory another user created first (e.g. in /tmp)', () => {
    const planted = join(dir, 'vmbackup-0');
    return mkdir(planted, {mode: 0o777})
      .then(() => chown(planted, NOBODY, NOBODY))
      .then(() => {
        expect(() => ensurePrivateDirSync(planted)).toThrow(/belongs to uid 65534, not to uid 0/);
        expect(() =>
          new LibvirtHost(
            {name: 'kvm', connection: {kind: 'ssh', host: '127.0.0.1', port: 22, user: 'root', identityFile: '/nonexistent', knownHostsFile: '/nonexistent'}},
            {scratchDir: '/var/tmp/x', localScratchDir: planted},
          ),
        ).toThrow(/belongs to uid 65534/);
      });
  });
});

describe('private files whatever the umask', () => {
  it('a repository created by the CLI under umask 000 is 0700 with 0600 files, and so are restored images', async () => {
    const path = join(dir, 'cli-repo');
    const r = await execa('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, CLI_MAIN, 'repo', 'create', path], {reject: false});
    expect(r.exitCode).toBe(0);
    expect((await stat(path)).mode & 0o777).toBe(0o700);
    for (const d of ['chunks', 'points', 'locks', 'writers']) expect((await stat(join(path, d))).mode & 0o777).toBe(0o700);
    expect((await stat(join(path, 'vmbackup-repository.json'))).mode & 0o777).toBe(0o600);

    const p = await backupImage(await openRepository(path), pseudoRandom(128 * 1024, 3), {vmName: 'web'});
    const out = join(dir, 'restored');
    const restored = await execa('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, CLI_MAIN, 'restore', '--repo', path, '--restore-point', p.id, '--to-files', out], {
      reject: false,
    });
    expect(restored.exitCode, restored.stderr).toBe(0);
    const files = await readdir(out);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(((await lstat(join(out, f))).mode & 0o777).toString(8)).toBe('600');
    // Every file the repository holds is private.
    const all = (await execa('find', [path, '-type', 'f', '-perm', '/077'])).stdout.trim();
    expect(all).toBe('');
  });
});
