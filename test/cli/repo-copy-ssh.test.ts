/**
 * Copies to another appliance over SSH: `vmbackup repo create|copy|info ssh://…` against the test
 * bed's real sshd, whose far side is this checkout's real `vmbackup repo serve` (test/lib/ssh-repo.ts).
 * The far directory is an ordinary repository there (the far appliance opens and restores from it
 * as its own); the copies read back identical through SSH and there; a copy killed with SIGKILL
 * leaves no visible point, no server process and no lock behind, and the next run stores only what
 * is still missing; a host key that does not match, a far side without vmbackup, and a far side that
 * lies (another directory, names that leave the repository, objects larger than asked for, a reply
 * larger than any request allows) are refused with what to do.
 */
import {randomBytes} from 'node:crypto';
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {SshBackend} from '../../src/repository/storage/ssh.js';
import {ExitCode} from '../../src/util/errors.js';
import {parseSshUrl} from '../../src/util/ssh-url.js';
import {vmbackup} from '../lib/cli.js';
import {CLI_MAIN, ROOT} from '../lib/dist.js';
import {sshRepoAccess, sshRepoArgs, sshRepoUrl} from '../lib/ssh-repo.js';
import {SSHD_DIR} from '../lib/sshd.js';

let dir: string;
const src = () => join(dir, 'src');
const far = () => join(dir, 'far', 'copy');
const MiB = 2 ** 20;
let ssh: string[];

async function point(repo: Repository, vm: string, sizeMiB: number, base?: string): Promise<string> {
  const w = await repo.beginRestorePoint({vmId: `id-${vm}`, vmName: vm, platform: 'libvirt', ...(base ? {base} : {})});
  const dw = await w.addDisk({key: 'vda', name: 'vda.qcow2', size: sizeMiB * MiB, format: 'qcow2'});
  for (let off = 0; off < sizeMiB * MiB; off += repo.chunkSize) {
    // Every fourth chunk zero; the rest random (an incremental writes the first only).
    if (base && off > 0) continue;
    if ((off / repo.chunkSize) % 4 === 3) await dw.zero(off, repo.chunkSize);
    else await dw.put(off, randomBytes(repo.chunkSize));
  }
  await dw.finish();
  return (await w.commit({checkpoint: {id: `cp-${vm}-${Date.now()}`}})).id;
}

async function chunkFiles(repo: string): Promise<number> {
  const entries = await readdir(join(repo, 'chunks'), {recursive: true, withFileTypes: true}).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

async function sameDisks(id: string, target: Repository): Promise<void> {
  const a = await (await openRepository(src())).openRestorePoint(id);
  const b = await target.openRestorePoint(id);
  expect(b.summary).toMatchObject({id, vmId: a.summary.vmId, vmName: a.summary.vmName, time: a.summary.time});
  for (const d of a.manifest.disks) {
    const [x, y] = [await a.openDisk(d.key), await b.openDisk(d.key)];
    expect((await y.read(0, y.size)).equals(await x.read(0, x.size)), `${id} ${d.key}`).toBe(true);
  }
}

/** The error `p` fails with (a test failure when it does not). */
const failure = (p: Promise<unknown>) => p.then(() => expect.unreachable('it did not fail') as never, (e: unknown) => e as Error & {exitCode?: number});

const serving = async (path: string) => (await execa('pgrep', ['-f', `repo serve ${path}`], {reject: false})).stdout.trim();

let web: string[] = [];
let big: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-copy-ssh-'));
  ssh = await sshRepoArgs();
  const s = await createRepository(src());
  const full = await point(s, 'web01', 8);
  web = [full, await point(s, 'web01', 8, full)];
  big = await point(s, 'db', 32);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('a repository on another appliance over SSH', () => {
  it('is created there as an ordinary repository; points copied to it read back identical over SSH and there; a second run copies nothing', async () => {
    const made = await vmbackup(['repo', 'create', sshRepoUrl(far()), ...ssh, '--json']);
    expect(made.exitCode, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({path: sshRepoUrl(far()), chunkSize: MiB});
    // 0700 there, like any repository (it holds the VMs' disks).
    expect((await stat(far())).mode & 0o777).toBe(0o700);
    const r = await vmbackup(['repo', 'copy', src(), sshRepoUrl(far()), '--vm', 'web01', ...ssh, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {copied: {id: string; newChunks: number}[]};
    expect(out.copied.map((c) => c.id)).toEqual(web);
    // The full's 6 data chunks, then the incremental's 1: nothing twice, no zeros.
    expect(out.copied.map((c) => c.newChunks)).toEqual([6, 1]);
    // Through SSH, and on the far appliance itself (its own local repository).
    const remote = await openRepository(sshRepoUrl(far()), {ssh: await sshRepoAccess()});
    const local = await openRepository(far());
    for (const id of web) {
      await sameDisks(id, remote);
      await sameDisks(id, local);
    }
    await remote.close();
    expect((await (await openRepository(far())).verify()).ok).toBe(true);
    const again = await vmbackup(['repo', 'copy', src(), sshRepoUrl(far()), '--vm', 'web01', ...ssh, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({copied: [], present: web});
    const info = await vmbackup(['repo', 'info', sshRepoUrl(far()), ...ssh]);
    expect(info.exitCode, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/restore points\s+2 of 1 VM/);
    // Nothing of the sessions runs on the far side once the commands are done.
    expect(await serving(far())).toBe('');
  }, 120_000);

  it('killed with SIGKILL mid-copy: no point, no server process, no lock left there; the next run stores only the chunks still missing', async () => {
    const child = execa(process.execPath, [CLI_MAIN, 'repo', 'copy', src(), sshRepoUrl(far()), '--restore-point', big, ...ssh], {cwd: ROOT, reject: false});
    const before = await chunkFiles(far());
    // 24 data chunks: kill once a good part, not all, is there.
    for (let i = 0; i < 3000 && (await chunkFiles(far())) < before + 8; i++) await new Promise((res) => setTimeout(res, 5));
    child.kill('SIGKILL');
    await child;
    const stored = (await chunkFiles(far())) - before;
    expect(stored).toBeGreaterThanOrEqual(8);
    expect(stored).toBeLessThan(24);
    // The SSH session ended with the appliance's process: its server exits, its locks go stale.
    for (let i = 0; i < 100 && (await serving(far())) !== ''; i++) await new Promise((res) => setTimeout(res, 100));
    expect(await serving(far())).toBe('');
    expect((await (await openRepository(far())).listRestorePoints()).map((p) => p.id)).not.toContain(big);
    const r = await vmbackup(['repo', 'copy', src(), sshRepoUrl(far()), '--restore-point', big, ...ssh, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const [copied] = (JSON.parse(r.stdout) as {copied: {id: string; newChunks: number}[]}).copied;
    expect(copied!.newChunks).toBeGreaterThan(0);
    expect(copied!.newChunks).toBeLessThanOrEqual(24 - stored + 2);
    await sameDisks(big, await openRepository(far()));
  }, 180_000);

  it('refuses a far host key that does not match, a far side without vmbackup, and a missing key file, saying what to do', async () => {
    const wrongHosts = join(dir, 'wrong_known_hosts');
    await writeFile(wrongHosts, '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake1\n', {mode: 0o600});
    const args = (over: Record<string, string>) => ssh.map((a, i) => (i > 0 && over[ssh[i - 1]!] !== undefined ? over[ssh[i - 1]!]! : a));
    const untrusted = await vmbackup(['repo', 'info', sshRepoUrl(far()), ...args({'--ssh-known-hosts': wrongHosts})]);
    expect(untrusted.exitCode).toBe(ExitCode.untrusted);
    expect(untrusted.stderr).toMatch(/host key of root@127\.0\.0\.1:2222 is unknown or has changed/);
    const missing = await vmbackup(['repo', 'info', sshRepoUrl(far()), ...args({'--remote-vmbackup': '/nonexistent/vmbackup'})]);
    expect(missing.exitCode).toBe(ExitCode.unreachable);
    expect(missing.stderr).toMatch(/127\.0\.0\.1 does not run vmbackup/);
    expect(missing.stderr).toMatch(/Install vmbackup on 127\.0\.0\.1/);
    const noKey = await vmbackup(['repo', 'info', sshRepoUrl(far()), ...args({'--ssh-key': join(dir, 'no-such-key')})]);
    expect(noKey.exitCode).toBe(ExitCode.usage);
    expect(noKey.stderr).toMatch(/SSH key file .*no-such-key does not exist/);
    const badUrl = await vmbackup(['repo', 'info', 'ssh://root@127.0.0.1:2222/srv/../etc', ...ssh]);
    expect(badUrl.exitCode).toBe(ExitCode.invalidInput);
    expect(badUrl.stderr).toMatch(/path segment "\.\." is not allowed/);
  }, 60_000);

  it('works as the far side is set up by its documentation: a user of its own (keys only), the key pinned to repo serve DIR; another path is refused', async () => {
    // `vmbackup repo serve --help`'s recipe, with a user name of the tests' own and a second sshd
    // that reads ~USER/.ssh/authorized_keys (the test bed's reads one file for root).
    const user = 'vmbtest-copy';
    const farDir = join(dir, 'pinned', 'copy');
    const run = (cmd: string, args: string[]) => execa(cmd, args, {stdio: 'pipe'});
    if ((await execa('getent', ['passwd', user], {reject: false})).exitCode !== 0) await run('useradd', ['--system', '--create-home', '--shell', '/bin/sh', user]);
    await run('usermod', ['-p', '*', user]);
    await run('install', ['-d', '-m', '0755', join(dir, 'pinned')]);
    await chmod(dir, 0o755);
    await run('install', ['-d', '-o', user, '-g', user, '-m', '0700', farDir]);
    const home = (await execa('getent', ['passwd', user])).stdout.split(':')[5]!;
    await run('install', ['-d', '-o', user, '-g', user, '-m', '0700', join(home, '.ssh')]);
    const access = await sshRepoAccess();
    const pub = (await readFile(`${access.identityFile}.pub`, 'utf8')).trim();
    await writeFile(join(home, '.ssh', 'authorized_keys'), `command="${access.command![0]} repo serve ${farDir}",restrict ${pub}\n`, {mode: 0o600});
    await run('chown', [`${user}:`, join(home, '.ssh', 'authorized_keys')]);
    const cfg = join(dir, 'sshd_config');
    await writeFile(cfg, ['Port 2298', 'ListenAddress 127.0.0.1', `HostKey ${SSHD_DIR}/host_ed25519`, `PidFile ${join(dir, 'sshd2.pid')}`, 'UsePAM no', 'PasswordAuthentication no', 'SetEnv SHLVL=1', ''].join('\n'));
    await run('/usr/sbin/sshd', ['-f', cfg]);
    try {
      const known = join(dir, 'known_hosts_2298');
      await writeFile(known, `[127.0.0.1]:2298 ${(await readFile(`${SSHD_DIR}/host_ed25519.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`, {mode: 0o600});
      const args = ['--ssh-key', access.identityFile, '--ssh-known-hosts', known];
      const url = `ssh://${user}@127.0.0.1:2298${farDir}`;
      // The appliance's requested command is ignored there: the pinned one runs (so --remote-vmbackup is not needed).
      const made = await vmbackup(['repo', 'create', url, ...args]);
      expect(made.exitCode, made.stderr).toBe(0);
      const r = await vmbackup(['repo', 'copy', src(), url, '--vm', 'web01', ...args, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      // Owned by that user there, and an ordinary repository.
      expect((await stat(join(farDir, 'vmbackup-repository.json'))).uid).toBe(Number((await execa('id', ['-u', user])).stdout));
      for (const id of web) await sameDisks(id, await openRepository(farDir));
      const other = await vmbackup(['repo', 'info', `ssh://${user}@127.0.0.1:2298/etc`, ...args]);
      expect(other.exitCode).toBe(ExitCode.invalidInput);
      expect(other.stderr).toContain(`is served from ${farDir} on the far machine, not from /etc`);
    } finally {
      await execa('sh', ['-c', `kill $(cat ${join(dir, 'sshd2.pid')})`], {reject: false});
      await execa('userdel', ['--remove', user], {reject: false});
    }
  }, 120_000);

  it('a session that breaks mid-write (the far server killed): the lock is lost, the point is not committed, and the next use connects again', async () => {
    const repo = await openRepository(sshRepoUrl(far()), {ssh: await sshRepoAccess()});
    const w = await repo.beginRestorePoint({vmId: 'id-cut', vmName: 'cut', platform: 'libvirt'});
    const dw = await w.addDisk({key: 'vda', name: 'vda.raw', size: MiB, format: 'raw'});
    await dw.put(0, randomBytes(MiB));
    await dw.finish();
    await execa('pkill', ['-KILL', '-f', `repo serve ${far()}`]);
    for (let i = 0; i < 100 && (await serving(far())) !== ''; i++) await new Promise((res) => setTimeout(res, 50));
    const err = await failure(w.commit());
    expect(err.exitCode).toBe(ExitCode.locked);
    expect(err.message).toMatch(/was lost: .*its connection ended.*Nothing was committed/);
    await w.abort().catch(() => undefined);
    // A new session: the repository is usable again, without the point.
    expect((await repo.listRestorePoints()).map((p) => p.vmName)).not.toContain('cut');
    await repo.close();
  }, 60_000);

  it('lists a directory of thousands of chunks in one reply (larger than any frame header)', async () => {
    // A directory of its own (a chunk of another test may land in any chunks/xx).
    const sub = join(far(), 'listing-test');
    await mkdir(sub, {recursive: true});
    const names = Array.from({length: 4000}, (_, i) => `ee${i.toString(16).padStart(62, '0')}`);
    await Promise.all(names.map((n) => writeFile(join(sub, n), 'x')));
    const b = new SshBackend(parseSshUrl(sshRepoUrl(far()))!, await sshRepoAccess());
    try {
      expect((await b.list('listing-test')).map((e) => e.name).sort()).toEqual(names);
    } finally {
      await b.close();
      await rm(sub, {recursive: true, force: true});
    }
  }, 60_000);

  it('distrusts the far side: another directory than asked, names that leave the repository, an object larger than asked for', async () => {
    const liar = async (behaviour: string) => {
      const file = join(dir, `liar-${behaviour}.mjs`);
      const frames = join(ROOT, 'dist', 'util', 'frames.js');
      await writeFile(
        file,
        `#!${process.execPath}\n` +
          `import {encodeFrame, FrameReader} from ${JSON.stringify(frames)};\n` +
          `const send = (h, b) => { for (const p of encodeFrame(h, b)) process.stdout.write(p); };\n` +
          `const path = process.argv[4];\n` +
          `const r = new FrameReader((f) => {\n` +
          `  const h = f.header;\n` +
          `  if (h.t === 'hello') return send({t: 'hello', protocol: 1, path: ${JSON.stringify(behaviour)} === 'elsewhere' ? '/etc' : path, now: Date.now()});\n` +
          `  if (h.op === 'list') return send({t: 'r', id: h.id, json: true}, Buffer.from(JSON.stringify([{name: '..', dir: true}])));\n` +
          `  if (h.op === 'get') return send({t: 'r', id: h.id, found: true}, Buffer.alloc(h.key === 'huge' ? 1 << 20 : h.max + 1));\n` +
          `  send({t: 'r', id: h.id, err: {message: 'no'}});\n` +
          `}, 1 << 26);\n` +
          `process.stdin.on('data', (d) => r.push(d));\n`,
      );
      await chmod(file, 0o755);
      return new SshBackend(parseSshUrl(sshRepoUrl(far()))!, {...(await sshRepoAccess()), command: [file]});
    };
    const elsewhere = await liar('elsewhere');
    const e1 = await failure(elsewhere.list('points'));
    expect(e1.message).toMatch(/is served from \/etc on the far machine, not from .*far\/copy/);
    expect(e1.exitCode).toBe(ExitCode.invalidInput);
    const names = await liar('names');
    const e2 = await failure(names.list('points'));
    expect(e2.message).toMatch(/broke vmbackup's repository protocol: a listed name that cannot be one \("\.\."\)/);
    const big = await liar('big');
    const e3 = await failure(big.get('vmbackup-repository.json', {max: 4096, what: 'repository configuration'}));
    expect(e3.exitCode).toBe(ExitCode.corrupt);
    expect(e3.message).toMatch(/is 4097 bytes, more than the 4096 allowed/);
    // A reply larger than any request in flight allows is not even buffered: the session ends.
    const e4 = await failure(big.get('huge', {max: 4096, what: 'manifest'}));
    expect(e4.message).toMatch(/broke vmbackup's repository protocol: a frame of \d+ bytes \(at most 69632\)/);
    for (const b of [elsewhere, names, big]) await b.close();
    // Keys that would leave the repository never leave this appliance.
    await expect(names.get('../../etc/shadow', {max: 10, what: 'x'})).rejects.toThrow(/invalid storage key/);
  }, 60_000);
});
