/**
 * An encrypted repository from the command line, with a real VM (libvirt + QEMU, shut off) whose
 * disk holds a marker: `repo create --encrypt`, a backup and a restore through the CLI with
 * `--passphrase-file`; afterwards no file of the repository holds the marker or the VM's name,
 * the restore is bit-identical; a missing or wrong passphrase exits 19, a passphrase file others
 * can read is refused; the exported key file brings back a lost configuration.
 */
import {chmod, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {open} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {createTestVm, destroyTestVm, ensureLibvirt, imagesIdentical, type TestVm} from '../lib/libvirt.js';

const MARKER = 'VMB-CLI-MARKER-9d41a7';
let dir: string;
let vm: TestVm | undefined;
const repo = () => join(dir, 'repo');
const pass = () => join(dir, 'pass');

async function leaks(root: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(root, {recursive: true, withFileTypes: true})) {
    const rel = join(e.parentPath, e.name).slice(root.length + 1);
    for (const n of needles) if (rel.toLowerCase().includes(n.toLowerCase())) found.push(`path ${rel}`);
    if (!e.isFile()) continue;
    const bytes = await readFile(join(e.parentPath, e.name));
    for (const n of needles) if (bytes.includes(Buffer.from(n, 'latin1'))) found.push(`${rel} holds ${n}`);
  }
  return found;
}

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-enc-cli-'));
  vm = await createTestVm(`vmbtest-secretvm-${process.pid}`, [{target: 'vda', format: 'raw', sizeMiB: 8}]);
  // The marker, repeated in two MiB of the disk (and one odd write), as a guest would leave files.
  const fh = await open(vm.disks[0]!.path, 'r+');
  const block = Buffer.alloc(4096, ' ');
  block.write(MARKER, 100, 'latin1');
  for (let off = 0; off < 2 << 20; off += 4096) await fh.write(block, 0, block.length, off);
  await fh.write(Buffer.from(`tail ${MARKER}`, 'latin1'), 0, undefined, 7 * 2 ** 20 + 5);
  await fh.close();
  await writeFile(pass(), 'a long passphrase for the offsite copy\n', {mode: 0o600});
}, 120_000);

afterAll(async () => {
  await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('vmbackup with an encrypted repository', () => {
  it('creates it only with --encrypt and a private passphrase file', async () => {
    expect((await vmbackup(['repo', 'create', repo(), '--encrypt'])).exitCode).toBe(2);
    const open644 = join(dir, 'pass644');
    await writeFile(open644, 'a long passphrase for the offsite copy\n');
    await chmod(open644, 0o644);
    const refused = await vmbackup(['repo', 'create', repo(), '--encrypt', '--passphrase-file', open644]);
    expect(refused.exitCode).toBe(17);
    expect(refused.stderr).toMatch(/can be read by others[\s\S]*chmod 600/);
    const r = await vmbackup(['repo', 'create', repo(), '--encrypt', '--passphrase-file', pass(), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({encrypted: true, formatVersion: 3});
  });

  it('backs up the VM and restores it bit-identical; no file of the repository holds its data or its name', async () => {
    const b = await vmbackup(['backup', '--host', 'local', '--vm', vm!.name, '--repo', repo(), '--passphrase-file', pass(), '--json'], {timeoutMs: 300_000});
    expect(b.exitCode, b.stderr).toBe(0);
    expect(await leaks(repo(), [MARKER, vm!.name, 'secretvm', vm!.uuid])).toEqual([]);
    const out = join(dir, 'restored');
    const r = await vmbackup(['restore', '--repo', repo(), '--passphrase-file', pass(), '--vm', vm!.name, '--to-files', out, '--format', 'raw'], {timeoutMs: 300_000});
    expect(r.exitCode, r.stderr).toBe(0);
    const restored = (await readdir(out)).find((n) => n.endsWith('.raw'))!;
    expect((await imagesIdentical(vm!.disks[0]!.path, join(out, restored))).same).toBe(true);
    const list = JSON.parse((await vmbackup(['repo', 'list', repo(), '--passphrase-file', pass(), '--json'])).stdout) as {vmName: string}[];
    expect(list.map((p) => p.vmName)).toEqual([vm!.name]);
  });

  it('a missing or wrong passphrase exits 19 and says what to do', async () => {
    const none = await vmbackup(['repo', 'list', repo()]);
    expect(none.exitCode).toBe(19);
    expect(none.stderr).toMatch(/is encrypted[\s\S]*--passphrase-file/);
    const wrongFile = join(dir, 'wrong');
    await writeFile(wrongFile, 'not the passphrase at all', {mode: 0o600});
    const wrong = await vmbackup(['repo', 'verify', repo(), '--passphrase-file', wrongFile]);
    expect(wrong.exitCode).toBe(19);
    expect(wrong.stderr).toMatch(/Wrong passphrase/);
  });

  it('the exported key file brings back a lost configuration', async () => {
    const k = await vmbackup(['repo', 'key', 'export', repo(), '--passphrase-file', pass()]);
    expect(k.exitCode, k.stderr).toBe(0);
    expect(JSON.parse(k.stdout)).toMatchObject({version: 3, encryption: {cipher: 'aes-256-gcm', kdf: {name: 'scrypt'}}});
    await rm(join(repo(), 'vmbackup-repository.json'));
    expect((await vmbackup(['repo', 'list', repo(), '--passphrase-file', pass()])).exitCode).toBe(10);
    await writeFile(join(repo(), 'vmbackup-repository.json'), k.stdout, {mode: 0o600});
    const v = await vmbackup(['repo', 'verify', repo(), '--passphrase-file', pass()]);
    expect(v.exitCode, v.stderr).toBe(0);
  });

  it('changes the passphrase: the old one no longer opens it, the new one does, the data is unchanged; an old key file still holds the old one', async () => {
    const oldKey = (await vmbackup(['repo', 'key', 'export', repo(), '--passphrase-file', pass()])).stdout;
    const next = join(dir, 'new-pass');
    await writeFile(next, 'another long passphrase, changed\n', {mode: 0o600});
    const short = join(dir, 'short-pass');
    await writeFile(short, 'short\n', {mode: 0o600});
    expect((await vmbackup(['repo', 'key', 'change', repo(), '--passphrase-file', pass(), '--new-passphrase-file', short])).exitCode).toBe(17);
    const chunksBefore = (await readdir(join(repo(), 'chunks'), {recursive: true})).sort();
    const c = await vmbackup(['repo', 'key', 'change', repo(), '--passphrase-file', pass(), '--new-passphrase-file', next]);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toContain('Export a new key file now');
    expect((await vmbackup(['repo', 'list', repo(), '--passphrase-file', pass()])).exitCode).toBe(19);
    const v = await vmbackup(['repo', 'verify', repo(), '--passphrase-file', next]);
    expect(v.exitCode, v.stderr).toBe(0);
    expect((await readdir(join(repo(), 'chunks'), {recursive: true})).sort()).toEqual(chunksBefore);
    // What the help says: the key is the same, so an old key file opens with the old passphrase.
    await writeFile(join(repo(), 'vmbackup-repository.json'), oldKey, {mode: 0o600});
    expect((await vmbackup(['repo', 'list', repo(), '--passphrase-file', pass()])).exitCode).toBe(0);
  });
});
