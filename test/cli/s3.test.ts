/**
 * Repositories in an S3 bucket through the real `vmbackup` CLI, against the test bed's real S3
 * server (OpenStack Swift with s3api, test/setup.d/50-swift.sh): `repo create s3+http://…` with
 * a credentials file (4 MiB chunks), restore points copied there and back, restores from the
 * local repository and from the bucket bit-identical, a copy killed with SIGKILL resumed without
 * sending again the chunks the bucket has, and the errors an administrator meets: no
 * credentials, a credentials file others can read, a wrong secret (never printed). (The
 * repository's verify, GC and healing on S3 are in test/repository/backends.test.ts.)
 */
import {randomBytes} from 'node:crypto';
import {chmod, mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {S3Backend, parseS3Url} from '../../src/repository/storage/s3.js';
import {ExitCode} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';
import {CLI_MAIN, ROOT} from '../lib/dist.js';
import {emptySwiftPrefix, SWIFT_CREDENTIALS, swiftUrl, writeSwiftCredentials} from '../lib/swift.js';

const MiB = 2 ** 20;
let dir: string;
let creds: string;
let url: string;
let bucket: S3Backend;
let web: string[] = [];
let big: string;
const src = () => join(dir, 'src');

async function point(repo: Repository, vm: string, size: number, data: (off: number) => boolean, base?: string): Promise<string> {
  const w = await repo.beginRestorePoint({vmId: `id-${vm}`, vmName: vm, platform: 'libvirt', ...(base ? {base} : {}), configuration: {kind: 'libvirt-domain-xml', text: `<domain><name>${vm}</name></domain>`}});
  const dw = await w.addDisk({key: 'vda', name: 'vda.qcow2', size, format: 'qcow2'});
  for (let off = 0; off < size; off += repo.chunkSize) {
    const len = Math.min(repo.chunkSize, size - off);
    if (data(off)) await dw.put(off, randomBytes(len));
    else if (!base) await dw.zero(off, len);
  }
  await dw.finish();
  return (await w.commit({checkpoint: {id: `cp-${vm}-${Date.now()}`}})).id;
}

/** The chunk objects in the bucket, from one listing (fast enough to poll while a copy runs). */
async function bucketChunks(): Promise<number> {
  const r = await bucket.client.request({method: 'GET', query: {'list-type': '2', prefix: `${bucket.where.prefix}chunks/`, 'max-keys': '1000'}, maxBytes: 16 << 20});
  return (r.body.toString().match(/<Key>/g) ?? []).length;
}

/** Restores every disk of `id` from `repo` to raw files with the CLI; returns their bytes by file name. */
async function restored(repo: string, id: string, name: string): Promise<Map<string, Buffer>> {
  const out = join(dir, name);
  const r = await vmbackup(['restore', '--repo', repo, '--s3-credentials', creds, '--restore-point', id, '--to-files', out, '--format', 'raw'], {timeoutMs: 300_000});
  expect(r.exitCode, r.stderr).toBe(0);
  const files = new Map<string, Buffer>();
  for (const f of await readdir(out)) files.set(f, await readFile(join(out, f)));
  return files;
}

/** The disks of `id` as a repository holds them, read in this process (a local one: the reference). */
async function original(repo: string, id: string): Promise<Buffer[]> {
  const r = await (await openRepository(repo, repo.startsWith('s3') ? {s3: SWIFT_CREDENTIALS} : {})).openRestorePoint(id);
  const out: Buffer[] = [];
  for (const d of r.manifest.disks) out.push(await (await r.openDisk(d.key)).read(0, d.size));
  return out;
}

/** The restored files are the original disks, byte for byte. */
function sameBytes(files: Map<string, Buffer>, disks: Buffer[]): void {
  expect(files.size).toBe(disks.length);
  const got = [...files.values()];
  for (const [i, d] of disks.entries()) expect(got[i]!.equals(d), `disk ${i}`).toBe(true);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-s3-cli-'));
  creds = await writeSwiftCredentials(join(dir, 's3.cred'));
  url = swiftUrl('cli');
  bucket = new S3Backend(parseS3Url(url)!, SWIFT_CREDENTIALS);
  const s = await createRepository(src(), {chunkSize: MiB});
  const full = await point(s, 'web', 12 * MiB, (off) => off < 6 * MiB);
  const inc = await point(s, 'web', 12 * MiB, (off) => off === 8 * MiB, full);
  web = [full, inc];
  big = await point(s, 'db', 96 * MiB, () => true);
}, 120_000);

afterAll(async () => {
  await emptySwiftPrefix(bucket).catch(() => undefined);
  bucket.client.close();
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('a repository in an S3 bucket (vmbackup CLI, real Swift s3api)', () => {
  it('is created with a credentials file, in 4 MiB chunks; without credentials, with a readable file or a wrong secret it is a clear error', async () => {
    const none = await vmbackup(['repo', 'create', url]);
    expect(none.exitCode).toBe(ExitCode.usage);
    expect(none.stderr).toContain('its credentials are needed');
    expect(none.stderr).toContain('--s3-credentials');

    const open = await writeSwiftCredentials(join(dir, 'open.cred'));
    await chmod(open, 0o644);
    const readable = await vmbackup(['repo', 'create', url, '--s3-credentials', open]);
    expect(readable.exitCode).toBe(ExitCode.invalidInput);
    expect(readable.stderr).toContain('can be read by others');

    const secret = `not-${randomBytes(6).toString('hex')}`;
    const wrong = await writeSwiftCredentials(join(dir, 'wrong.cred'), {secretAccessKey: secret});
    const refused = await vmbackup(['repo', 'create', url, '--s3-credentials', wrong]);
    expect(refused.exitCode).toBe(ExitCode.authFailed);
    expect(refused.stderr).toContain('refused the credentials');
    expect(refused.stdout + refused.stderr).not.toContain(secret);

    const r = await vmbackup(['repo', 'create', url, '--s3-credentials', creds, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({path: url, chunkSize: 4 * MiB, encrypted: false});
    const twice = await vmbackup(['repo', 'create', url, '--s3-credentials', creds]);
    expect(twice.exitCode).toBe(ExitCode.invalidInput);
    expect(twice.stderr).toContain('not empty');
  }, 120_000);

  it('takes a VM’s points by repo copy (re-cut into 4 MiB chunks); a restore from the bucket is bit-identical to the local original; info reads it; copied back out', async () => {
    const r = await vmbackup(['repo', 'copy', src(), url, '--vm', 'web', '--s3-credentials', creds, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as {copied: {id: string}[]}).copied.map((c) => c.id)).toEqual(web);
    // The incremental's restore reads the full's chunks too (its unchanged ones are the base's).
    sameBytes(await restored(url, web[1]!, 's3-inc'), await original(src(), web[1]!));
    const [fullCopy, fullOrig] = [await original(url, web[0]!), await original(src(), web[0]!)];
    for (const [i, d] of fullOrig.entries()) expect(fullCopy[i]!.equals(d)).toBe(true);
    const info = await vmbackup(['repo', 'info', url, '--s3-credentials', creds]);
    expect(info.exitCode, info.stderr).toBe(0);
    expect(info.stdout).toContain(url);
    // And back from the bucket into another local repository.
    const back = join(dir, 'back');
    await createRepository(back);
    const b = await vmbackup(['repo', 'copy', url, back, '--vm', 'web', '--s3-credentials', creds, '--json']);
    expect(b.exitCode, b.stderr).toBe(0);
    const [again, local] = [await original(back, web[1]!), await original(src(), web[1]!)];
    for (const [i, d] of local.entries()) expect(again[i]!.equals(d)).toBe(true);
  }, 300_000);

  it('a copy killed with SIGKILL leaves nothing visible; the next run sends only the chunks the bucket lacks, and the point reads back bit-identical', async () => {
    const before = await bucketChunks();
    const child = execa(process.execPath, [CLI_MAIN, 'repo', 'copy', src(), url, '--restore-point', big, '--s3-credentials', creds], {cwd: ROOT, reject: false});
    // 24 chunks of 4 MiB: kill once some, not all, are in the bucket.
    for (let i = 0; i < 3000 && (await bucketChunks()) < before + 4; i++) await new Promise((res) => setTimeout(res, 10));
    child.kill('SIGKILL');
    await child;
    const stored = (await bucketChunks()) - before;
    expect(stored).toBeGreaterThanOrEqual(4);
    expect(stored).toBeLessThan(24);
    const list = await vmbackup(['repo', 'list', url, '--s3-credentials', creds, '--json']);
    expect(list.stdout).not.toContain(big);
    const r = await vmbackup(['repo', 'copy', src(), url, '--restore-point', big, '--s3-credentials', creds, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const [copied] = (JSON.parse(r.stdout) as {copied: {id: string; newChunks: number}[]}).copied;
    expect(copied!.id).toBe(big);
    // Only what the killed run had not stored (a few may have been in flight when it died).
    expect(copied!.newChunks).toBeLessThanOrEqual(24 - stored + 2);
    expect(copied!.newChunks).toBeGreaterThan(0);
    expect(await bucketChunks()).toBe(before + 24);
    const [copy, orig] = [await original(url, big), await original(src(), big)];
    expect(copy[0]!.equals(orig[0]!)).toBe(true);
  }, 300_000);
});

