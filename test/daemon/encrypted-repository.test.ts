/**
 * An encrypted repository in a real vmbackupd: made with the passphrase given in the API, the
 * passphrase shown as "••••", kept in the 0600 configuration only (never in the log), kept for
 * the same path only; a plain repository with a passphrase and a wrong passphrase refused; a job
 * (against the oVirt engine simulator) backs up into it, the API lists the points with the VM's
 * name while no file of the repository holds it; after a restart the next run is incremental.
 * A copy job copies the plain repository's points into it (the points its retention keeps, read
 * back and checked), the copies read back identical to the originals, the next run copies nothing;
 * copy jobs that name their own or an unknown repository are refused, and so is removing their source.
 * A copy job into an S3 bucket of the test bed's real S3 server (Swift s3api): the secret key
 * kept like a passphrase (shown "••••", kept for the same address and key only, never logged),
 * the copies read back from the bucket identical to the originals, locked for the job's 30 days.
 * A copy job to another appliance over SSH (the test bed's sshd running this checkout's
 * `vmbackup repo serve`): its host key pinned in the configuration (a wrong one refused), the
 * copies an ordinary repository there, identical to the originals.
 */
import {readdir, readFile, stat} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openRepository} from '../../src/repository/index.js';
import {UserError} from '../../src/util/errors.js';
import {SWIFT_CREDENTIALS, swiftUrl} from '../lib/swift.js';
import {sshRepoAccess, sshRepoUrl} from '../lib/ssh-repo.js';
import {startDaemon, startEngineBed, waitForSession, type EngineBed} from './helpers.js';

const PASS = 'Offsite-Passphrase-4711';
let bed: EngineBed;

beforeAll(async () => {
  bed = await startEngineBed('vmb-encd-');
}, 60_000);
afterAll(async () => bed?.stop());

async function fails(p: Promise<unknown>): Promise<UserError & {field?: string}> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  return err as UserError & {field?: string};
}

describe('an encrypted repository in the daemon', () => {
  it('is made with the API’s passphrase, which stays in the 0600 configuration and is kept for its path only', async () => {
    const c = bed.d.client;
    const path = join(bed.dir, 'enc repo');
    const made = await c.create('repositories', {id: 'enc', name: 'Offsite', path, passphrase: PASS});
    expect(made.passphrase).toBe('••••');
    expect(JSON.parse(await readFile(join(path, 'vmbackup-repository.json'), 'utf8'))).toMatchObject({version: 3, encryption: {cipher: 'aes-256-gcm'}});
    const file = join(bed.dir, 'state', 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toContain(PASS);
    // "••••" for the same path keeps it; for another path it is refused.
    await c.update('repositories', 'enc', {...made, name: 'Offsite copy'});
    expect(await readFile(file, 'utf8')).toContain(PASS);
    const moved = await fails(c.update('repositories', 'enc', {...made, path: join(bed.dir, 'elsewhere')}));
    expect(moved.message).toMatch(/passphrase belongs to another repository path/);
    // A wrong passphrase for it; a passphrase for a plain repository.
    expect((await fails(c.update('repositories', 'enc', {...made, passphrase: 'not the right one'}))).exitCode).toBe(19);
    const plain = await fails(c.update('repositories', 'r', {name: 'R', path: join(bed.dir, 'repo'), passphrase: PASS}));
    expect(plain.message).toMatch(/is not encrypted, yet a passphrase is configured/);
  });

  it('takes a job’s backups; the API names the VM, no file of the repository does; after a restart the next run is incremental', async () => {
    const c = bed.d.client;
    await c.create('jobs', {id: 'offsite', name: 'Offsite', source: {connection: 'engine', vms: [{id: bed.sim.vm('web01').id}]}, repository: 'enc', retries: {count: 0}});
    const first = await waitForSession(c, (await c.startJob('offsite')).id);
    // web01 has no guest agent in the simulator: a warning, as in every oVirt daemon test.
    expect(first.vms.map((v) => [v.name, v.state, v.restorePointId !== undefined]), JSON.stringify(first.log)).toEqual([['web01', 'warning', true]]);
    const points = await c.restorePoints<{id: string; vmName: string; type: string}>('enc');
    expect(points.map((p) => [p.vmName, p.type])).toEqual([['web01', 'full']]);
    const root = join(bed.dir, 'enc repo');
    for (const e of await readdir(root, {recursive: true, withFileTypes: true})) {
      expect(e.name).not.toContain('web01');
      if (e.isFile()) expect((await readFile(join(e.parentPath, e.name))).includes(Buffer.from('web01')), join(e.parentPath, e.name)).toBe(false);
    }
    expect(bed.d.lines.join('\n')).not.toContain(PASS);

    await bed.d.stop();
    bed.d = await startDaemon(join(bed.dir, 'state'), join(bed.dir, 'api.sock'));
    const second = await waitForSession(bed.d.client, (await bed.d.client.startJob('offsite')).id);
    expect(second.vms.map((v) => [v.state, v.incremental]), JSON.stringify(second.log)).toEqual([['warning', true]]);
    expect((await bed.d.client.restorePoints<{type: string}>('enc')).map((p) => p.type)).toEqual(['full', 'incremental']);
    expect((await bed.d.client.verify('enc')).ok).toBe(true);
    expect(bed.d.lines.join('\n')).not.toContain(PASS);
  });

  it('a copy job copies the plain repository’s points into it, read back and checked; identical to the originals; the next run copies nothing', async () => {
    const c = bed.d.client;
    for (let i = 0; i < 2; i++) await waitForSession(c, (await c.startJob('web')).id);
    // Refused: its own repository as source, an unknown one.
    expect((await fails(c.create('jobs', {id: 'bad', name: 'Bad', source: {repository: 'enc'}, repository: 'enc'}))).message).toMatch(/jobs\.source\.repository: is the job's own repository/);
    expect((await fails(c.create('jobs', {id: 'bad', name: 'Bad', source: {repository: 'nope'}, repository: 'enc'}))).message).toMatch(/jobs\.source\.repository: no repository with id 'nope'/);
    expect((await fails(c.create('jobs', {id: 'bad', name: 'Bad', source: {connection: 'engine', vms: 'web01'}, repository: 'enc'}))).message).toMatch(/jobs\.source\.vms: /);
    await c.create('jobs', {id: 'copy', name: 'Offsite copy', source: {repository: 'r'}, repository: 'enc', retention: {restorePoints: 1}, retries: {count: 0}});
    expect((await fails(c.remove('repositories', 'r'))).message).toMatch(/used by job\(s\) .*Offsite copy/);
    const s = await waitForSession(c, (await c.startJob('copy')).id);
    expect(s.state, JSON.stringify(s.log)).toBe('success');
    expect(s.vms.map((v) => [v.name, v.state])).toEqual([['web01', 'success']]);
    expect(s.log.find((l) => l.code === 'copied')?.message).toMatch(/^web01: 1 restore point\(s\) copied \(\d+ new chunks\), 0 already in the target, read back and checked\.$/);
    const src = await openRepository(join(bed.dir, 'repo'));
    const dst = await openRepository(join(bed.dir, 'enc repo'), {passphrase: PASS});
    const sourcePoints = await src.listRestorePoints();
    // The copies record the copy job (its retention governs them there) and the source's times.
    // Only the newest of the two: the one the copy job's retention (1 point) keeps.
    const copies = (await dst.listRestorePoints()).filter((p) => p.jobId === 'copy');
    expect(copies.map((p) => p.time)).toEqual(sourcePoints.slice(-1).map((p) => p.time));
    expect(s.vms[0]!.restorePointId).toBe(copies.at(-1)!.id);
    // Read back from both repositories: the same bytes.
    for (const [i, copy] of copies.entries()) {
      const a = await src.openRestorePoint(sourcePoints.slice(-1)[i]!.id);
      const b = await dst.openRestorePoint(copy.id);
      for (const d of a.manifest.disks) {
        const [x, y] = [await a.openDisk(d.key), await b.openDisk(d.key)];
        expect((await y.read(0, y.size)).equals(await x.read(0, x.size))).toBe(true);
      }
    }
    const again = await waitForSession(c, (await c.startJob('copy')).id);
    expect(again.log.find((l) => l.code === 'copied')?.message).toMatch(/0 restore point\(s\) copied \(0 new chunks\), 1 already in the target/);
  });

  it('a copy job copies them into an S3 bucket (real Swift s3api): the secret key kept like a passphrase; the copies identical; the next run copies nothing', async () => {
    const c = bed.d.client;
    const url = swiftUrl('daemon');
    const creds = {accessKeyId: SWIFT_CREDENTIALS.accessKeyId, secretAccessKey: SWIFT_CREDENTIALS.secretAccessKey};
    expect((await fails(c.create('repositories', {id: 'b', name: 'Bucket', path: url}))).message).toMatch(/s3: is required for a repository in an S3 bucket/);
    expect((await fails(c.create('repositories', {id: 'b', name: 'Bucket', path: join(bed.dir, 'x'), s3: creds}))).message).toMatch(/s3: is only for a repository in an S3 bucket/);
    const wrong = await fails(c.create('repositories', {id: 'b', name: 'Bucket', path: url, s3: {...creds, secretAccessKey: 'not-the-key'}}));
    expect(wrong.message).toMatch(/refused the credentials/);
    const made = await c.create('repositories', {id: 'b', name: 'Bucket', path: url, s3: creds});
    expect((made.s3 as {secretAccessKey: string}).secretAccessKey).toBe('••••');
    expect((await c.testRepository('b')).ok).toBe(true);
    // "••••" is kept for the same address; for another address it is refused.
    await c.update('repositories', 'b', {...made, name: 'The bucket'});
    const moved = await fails(c.update('repositories', 'b', {...made, path: swiftUrl('elsewhere')}));
    expect(moved.message).toMatch(/secret key belongs to another repository path, access key or CA/);

    await c.create('jobs', {id: 'to-bucket', name: 'To the bucket', source: {repository: 'r'}, repository: 'b', retention: {restorePoints: 2}, retentionLockDays: 30, retries: {count: 0}});
    const s = await waitForSession(c, (await c.startJob('to-bucket')).id);
    expect(s.state, JSON.stringify(s.log)).toBe('success');
    expect(s.log.find((l) => l.code === 'copied')?.message).toMatch(/^web01: 2 restore point\(s\) copied \(\d+ new chunks\), 0 already in the target, read back and checked\.$/);
    const src = await openRepository(join(bed.dir, 'repo'));
    const dst = await openRepository(url, {s3: SWIFT_CREDENTIALS});
    const sourcePoints = (await src.listRestorePoints()).slice(-2);
    const copies = await dst.listRestorePoints();
    expect(copies.map((p) => [p.id, p.time])).toEqual(sourcePoints.map((p) => [p.id, p.time]));
    for (const p of sourcePoints) {
      const [a, b] = [await src.openRestorePoint(p.id), await dst.openRestorePoint(p.id)];
      for (const d of a.manifest.disks) {
        const [x, y] = [await a.openDisk(d.key), await b.openDisk(d.key)];
        expect((await y.read(0, y.size)).equals(await x.read(0, x.size))).toBe(true);
      }
    }
    expect((await c.restorePoints<{id: string}>('b')).map((p) => p.id)).toEqual(sourcePoints.map((p) => p.id));
    // The copy job's retention lock is in each copy: forgetting one (even forced) is refused.
    expect(copies.map((p) => p.lockDays)).toEqual([30, 30]);
    expect((await fails(c.forgetRestorePoint('b', copies[0]!.id, true))).message).toMatch(/its job's retention lock \(30 days\)/);
    const again = await waitForSession(c, (await c.startJob('to-bucket')).id);
    expect(again.log.find((l) => l.code === 'copied')?.message).toMatch(/0 restore point\(s\) copied \(0 new chunks\), 2 already in the target/);
    expect(bed.d.lines.join('\n')).not.toContain(SWIFT_CREDENTIALS.secretAccessKey);
    expect(JSON.stringify(await c.list('repositories'))).not.toContain(SWIFT_CREDENTIALS.secretAccessKey);
  });

  it('a copy job copies them to another appliance over SSH: the far host key pinned (a wrong one refused); the copies identical there', async () => {
    const c = bed.d.client;
    const access = await sshRepoAccess();
    const farDir = join(bed.dir, 'far-appliance', 'copy');
    const hostKey = (await readFile(access.knownHostsFile, 'utf8')).split('\n')[0]!.split(' ').slice(1).join(' ');
    const ssh = {hostKey, identityFile: access.identityFile, remoteVmbackup: access.command![0]!};
    expect((await fails(c.create('repositories', {id: 'far', name: 'Far', path: sshRepoUrl(farDir)}))).message).toMatch(/ssh: is required for a repository on another appliance/);
    const wrong = await fails(c.create('repositories', {id: 'far', name: 'Far', path: sshRepoUrl(farDir), ssh: {...ssh, hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake1'}}));
    expect(wrong.exitCode, wrong.message).toBe(22);
    expect(wrong.message).toMatch(/host key of root@127\.0\.0\.1:2222 is unknown or has changed/);
    await c.create('repositories', {id: 'far', name: 'Far', path: sshRepoUrl(farDir), ssh});
    expect(await c.testRepository('far')).toMatchObject({ok: true, writable: true});
    await c.create('jobs', {id: 'to-far', name: 'To the far appliance', source: {repository: 'r'}, repository: 'far', retention: {restorePoints: 2}, retries: {count: 0}});
    const s = await waitForSession(c, (await c.startJob('to-far')).id);
    expect(s.state, JSON.stringify(s.log)).toBe('success');
    expect(s.log.find((l) => l.code === 'copied')?.message).toMatch(/^web01: 2 restore point\(s\) copied \(\d+ new chunks\), 0 already in the target, read back and checked\.$/);
    const src = await openRepository(join(bed.dir, 'repo'));
    // On the far appliance the copies are a repository of its own.
    const dst = await openRepository(farDir);
    const sourcePoints = (await src.listRestorePoints()).slice(-2);
    expect((await dst.listRestorePoints()).map((p) => [p.id, p.time])).toEqual(sourcePoints.map((p) => [p.id, p.time]));
    for (const p of sourcePoints) {
      const [a, b] = [await src.openRestorePoint(p.id), await dst.openRestorePoint(p.id)];
      for (const d of a.manifest.disks) {
        const [x, y] = [await a.openDisk(d.key), await b.openDisk(d.key)];
        expect((await y.read(0, y.size)).equals(await x.read(0, x.size))).toBe(true);
      }
    }
    expect((await c.restorePoints<{id: string}>('far')).map((p) => p.id)).toEqual(sourcePoints.map((p) => p.id));
    // The far disk's space: the status never waits for it, it asks in the background and shows it once known.
    const farStatus = async () => (await c.status()).repositories.find((r) => r.id === 'far')!;
    for (let i = 0; i < 100 && (await farStatus()).totalBytes === undefined; i++) await new Promise((res) => setTimeout(res, 100));
    const far = await farStatus();
    expect(far.totalBytes).toBeGreaterThan(0);
    expect(far.freeBytes).toBeGreaterThan(0);
    const again = await waitForSession(c, (await c.startJob('to-far')).id);
    expect(again.log.find((l) => l.code === 'copied')?.message).toMatch(/0 restore point\(s\) copied \(0 new chunks\), 2 already in the target/);
  });
});
