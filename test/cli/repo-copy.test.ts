/**
 * `vmbackup repo copy` (repository/copy.ts): restore points copied to a second repository with
 * their ids and times, only the chunks the target lacks stored, the manifest last — a copy killed
 * with SIGKILL leaves no visible point and the next run stores only what is still missing; every
 * copied disk reads back identical from the target; a damaged source chunk is refused, not copied.
 * The target has another chunk size than the source (data is re-cut, zero runs stay zeros); one
 * with the same chunk size reads only the chunks an incremental changed.
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, openRepository, type Repository} from '../../src/repository/index.js';
import {vmbackup} from '../lib/cli.js';
import {CLI_MAIN, ROOT} from '../lib/dist.js';

let dir: string;
const src = () => join(dir, 'src');
const dst = () => join(dir, 'dst');
const MiB = 2 ** 20;

/** One restore point of `vm` with the given disks: data ranges of random bytes, the rest zeros. */
async function point(repo: Repository, vm: string, disks: {key: string; size: number; data: {offset: number; length: number}[]}[], base?: string): Promise<string> {
  const slug = vm.replace(/[^A-Za-z0-9]/g, '-');
  const w = await repo.beginRestorePoint({vmId: `id-${slug}`, vmName: vm, platform: 'libvirt', ...(base ? {base} : {}), configuration: {kind: 'libvirt-domain-xml', text: `<domain><name>${vm}</name></domain>`}});
  for (const d of disks) {
    const dw = await w.addDisk({key: d.key, name: `${d.key}.qcow2`, size: d.size, format: 'qcow2'});
    for (let off = 0; off < d.size; off += repo.chunkSize) {
      const len = Math.min(repo.chunkSize, d.size - off);
      const data = d.data.some((r) => r.offset < off + len && off < r.offset + r.length);
      if (data) await dw.put(off, randomBytes(len));
      else if (!base) await dw.zero(off, len);
    }
    await dw.finish();
  }
  return (await w.commit({checkpoint: {id: `cp-${slug}-${Date.now()}`}})).id;
}

async function chunkFiles(repo: string): Promise<number> {
  const entries = await readdir(join(repo, 'chunks'), {recursive: true, withFileTypes: true}).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

async function sameDisks(id: string, target = dst()): Promise<void> {
  const a = await (await openRepository(src())).openRestorePoint(id);
  const b = await (await openRepository(target)).openRestorePoint(id);
  expect(b.summary).toMatchObject({id, vmId: a.summary.vmId, vmName: a.summary.vmName, time: a.summary.time, checkpoint: a.summary.checkpoint});
  expect(b.manifest.configuration).toEqual(a.manifest.configuration);
  for (const d of a.manifest.disks) {
    const [x, y] = [await a.openDisk(d.key), await b.openDisk(d.key)];
    expect(y.size).toBe(x.size);
    expect((await y.read(0, y.size)).equals(await x.read(0, x.size)), `${id} ${d.key}`).toBe(true);
  }
}

let web: string[] = [];
let big: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-copy-'));
  const s = await createRepository(src(), {chunkSize: 256 * 1024});
  await createRepository(dst());
  const full = await point(s, 'web 01', [{key: 'vda', size: 6 * MiB + 4096, data: [{offset: 0, length: MiB}, {offset: 5 * MiB, length: 1}]}, {key: 'vdb', size: 2 * MiB, data: []}]);
  const inc = await point(s, 'web 01', [{key: 'vda', size: 6 * MiB + 4096, data: [{offset: 3 * MiB, length: 300 * 1024}]}, {key: 'vdb', size: 2 * MiB, data: []}], full);
  web = [full, inc];
  big = await point(s, 'db', [{key: 'sda', size: 96 * MiB, data: [{offset: 0, length: 96 * MiB}]}]);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('vmbackup repo copy', () => {
  it('copies a VM’s points oldest first with their ids and times; the target reads back the same disks; a second run copies nothing', async () => {
    const r = await vmbackup(['repo', 'copy', src(), dst(), '--vm', 'web 01', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {copied: {id: string; newChunks: number}[]; present: string[]};
    expect(out.copied.map((c) => c.id)).toEqual(web);
    for (const id of web) await sameDisks(id);
    // The incremental's base is its base in the target too.
    const inTarget = await (await openRepository(dst())).openRestorePoint(web[1]!);
    expect(inTarget.manifest).toMatchObject({type: 'incremental', base: web[0]});
    const again = await vmbackup(['repo', 'copy', src(), dst(), '--vm', 'web 01', '--json']);
    expect(JSON.parse(again.stdout)).toEqual({copied: [], present: web});
  }, 120_000);

  it('an incremental copied where its base already is, in the same chunk size, reads only the chunks that changed', async () => {
    const same = join(dir, 'same-chunks');
    await createRepository(same, {chunkSize: 256 * 1024});
    const r = await vmbackup(['repo', 'copy', src(), same, '--vm', 'web 01', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const [full, inc] = (JSON.parse(r.stdout) as {copied: {id: string; readBytes: number}[]}).copied;
    expect(full!.readBytes).toBe(MiB + 256 * 1024);
    // 300 KiB written at 3 MiB: two chunks of 256 KiB changed, nothing else is read.
    expect(inc!.readBytes).toBe(2 * 256 * 1024);
    for (const id of web) await sameDisks(id, same);
  }, 60_000);

  it('killed with SIGKILL in the middle: nothing visible in the target; the next run stores only the chunks still missing', async () => {
    const child = execa(process.execPath, [CLI_MAIN, 'repo', 'copy', src(), dst(), '--restore-point', big], {cwd: ROOT, reject: false});
    const before = await chunkFiles(dst());
    // 96 chunks of 1 MiB in the target: kill once a good part, not all, is there.
    for (let i = 0; i < 2000 && (await chunkFiles(dst())) < before + 20; i++) await new Promise((res) => setTimeout(res, 10));
    child.kill('SIGKILL');
    await child;
    const stored = (await chunkFiles(dst())) - before;
    expect(stored).toBeGreaterThanOrEqual(20);
    expect(stored).toBeLessThan(96);
    expect((await (await openRepository(dst())).listRestorePoints()).map((p) => p.id)).not.toContain(big);
    const r = await vmbackup(['repo', 'copy', src(), dst(), '--restore-point', big, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const [copied] = (JSON.parse(r.stdout) as {copied: {id: string; newChunks: number}[]}).copied;
    expect(copied!.id).toBe(big);
    // Only what the killed run had not stored (it may have had a few chunks in flight).
    expect(copied!.newChunks).toBeLessThanOrEqual(96 - stored + 2);
    expect(copied!.newChunks).toBeGreaterThan(0);
    await sameDisks(big);
  }, 180_000);

  it('refuses a damaged source chunk (nothing of that point in the target), the same repository twice, and an unknown VM', async () => {
    const s = await openRepository(src());
    const files = async () => (await readdir(join(src(), 'chunks'), {recursive: true, withFileTypes: true})).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    const had = new Set(await files());
    const bad = await point(s, 'mail', [{key: 'vda', size: MiB, data: [{offset: 0, length: MiB}]}]);
    // One of the chunk files this point added, damaged in its last byte.
    const pick = (await files()).find((f) => !had.has(f))!;
    const data = await readFile(pick);
    data[data.length - 1] ^= 0xff;
    await writeFile(pick, data);
    const r = await vmbackup(['repo', 'copy', src(), dst(), '--vm', 'mail']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/chunk/i);
    expect((await (await openRepository(dst())).listRestorePoints()).map((p) => p.id)).not.toContain(bad);
    const same = await vmbackup(['repo', 'copy', src(), src()]);
    expect(same.exitCode).toBe(17);
    expect(same.stderr).toContain('are the same repository');
    const none = await vmbackup(['repo', 'copy', src(), dst(), '--vm', 'no-such-vm']);
    expect(none.exitCode).toBe(16);
  }, 60_000);
});
