/**
 * The engine slice end to end against the oVirt engine simulator: full and incremental backups
 * of a VM with a qcow2 ("cow") and a raw disk into a real repository, a crash in the middle, and
 * restores (disks to image files, whole VM under a new name) compared byte for byte with the
 * disks at backup time. Behaviour of the real engine that these rely on is cited from
 * docs/reference/ovirt-backup-api.md.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm} from '../../src/engine/backup-vm.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import {OvirtPlatform} from '../../src/platforms/ovirt/platform.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {pattern, startSimulator, type Simulator} from '../ovirt-sim/index.js';

const MiB = 2 ** 20;
let sim: Simulator;
let platform: OvirtPlatform;
let repo: Repository;
let work: string;

/** What each disk of web01 holds now, keyed by disk id. */
function diskBytes(vmName: string): Map<string, Buffer> {
  return new Map(sim.disksOf(vmName).map((d) => [d.id, d.image.read(0, d.image.size)]));
}

async function restoreToFilesAndCompare(restorePointId: string, expected: Map<string, Buffer>, tag: string) {
  const dir = join(work, `restore-${tag}`);
  const r = await restoreVm({platform, repository: repo, restorePointId, target: {mode: 'disks-to-files', directory: dir, format: 'raw'}});
  expect(r.files).toHaveLength(expected.size);
  for (const [id, bytes] of expected) {
    const file = r.files!.find((f) => f.includes(id));
    expect(file, `file for disk ${id} in ${r.files!.join(', ')}`).toBeDefined();
    const got = await readFile(file!);
    expect(got.length).toBe(bytes.length);
    expect(got.equals(bytes), `${tag}: disk ${id} differs`).toBe(true);
  }
}

beforeAll(async () => {
  sim = await startSimulator({delayMs: 5});
  platform = new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 10});
  work = await mkdtemp(join(tmpdir(), 'engine-ovirt-'));
  repo = await createRepository(join(work, 'repo'), {chunkSize: 256 * 1024});
});
afterAll(async () => {
  await platform?.close();
  await sim?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('engine backup → repository → restore on oVirt (simulator)', () => {
  const points: {id: string; bytes: Map<string, Buffer>}[] = [];
  const web01 = () => sim.vm('web01');

  it('full backup: reads allocated data only, warns about the raw disk, restores bit-identical', async () => {
    const r = await backupVm({platform, repository: repo, vmId: web01().id, vmName: 'web01'});
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('warning');
    const raw = sim.disksOf('web01').find((d) => d.format === 'raw')!;
    expect(r.events.map((e) => e.message)).toContain(`disk ${raw.alias} has RAW format and can be backed up only in full scan mode`);
    // The engine assigns to_checkpoint_id; it is stored only with the committed restore point (§4.1, §7.1).
    expect(r.restorePoint?.checkpoint?.id).toBeTruthy();
    const manifest = (await repo.openRestorePoint(r.restorePoint!.id)).manifest;
    expect(manifest.configuration?.text).toContain('ovf:Envelope');
    points.push({id: r.restorePoint!.id, bytes: diskBytes('web01')});
    await restoreToFilesAndCompare(points[0].id, points[0].bytes, 'full');
  });

  it('incremental reads only the dirty chunks of the qcow2 disk', async () => {
    const cow = sim.disksOf('web01').find((d) => d.format === 'cow')!;
    sim.guestWrite(cow.id, 30 * MiB, pattern(9, 64 * 1024));
    sim.guestWrite(cow.id, 0, Buffer.alloc(1 * MiB));
    const r = await backupVm({platform, repository: repo, vmId: web01().id, vmName: 'web01'});
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(true);
    // 64 KiB dirty at 30 MiB → one 256 KiB chunk; 1 MiB zeroed at 0 → four chunks (zero or read).
    expect(r.disks[cow.id].readBytes).toBeLessThanOrEqual(5 * 256 * 1024);
    points.push({id: r.restorePoint!.id, bytes: diskBytes('web01')});
    await restoreToFilesAndCompare(points[1].id, points[1].bytes, 'inc');
    await restoreToFilesAndCompare(points[0].id, points[0].bytes, 'full-again');
  });

  it('a crash in the middle commits nothing; the next session cleans up and is correct', async () => {
    const cow = sim.disksOf('web01').find((d) => d.format === 'cow')!;
    sim.guestWrite(cow.id, 10 * MiB, pattern(11, 2 * MiB));
    const controller = new AbortController();
    const failed = await backupVm({
      platform, repository: repo, vmId: web01().id, vmName: 'web01', signal: controller.signal,
      onEvent: (e) => e.type === 'disk-started' && controller.abort(new Error('stopped by the test')),
    });
    expect(failed.status).toBe('failed');
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual(points.map((p) => p.id));
    await platform.cleanupLeftovers(() => undefined);
    const r = await backupVm({platform, repository: repo, vmId: web01().id, vmName: 'web01'});
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(true);
    expect(r.disks[cow.id].readBytes).toBeGreaterThanOrEqual(2 * MiB);
    points.push({id: r.restorePoint!.id, bytes: diskBytes('web01')});
    await restoreToFilesAndCompare(points[2].id, points[2].bytes, 'after-crash');
  });

  it('restores the whole VM under a new name from its OVF, bit-identical', async () => {
    const name = `web01 restored "ü"; x`;
    const r = await restoreVm({platform, repository: repo, restorePointId: points[2].id, target: {mode: 'vm', name, storage: 'data2 block'}});
    expect(r.vmName).toBe(name);
    const restored = sim.disksOf(name);
    expect(restored).toHaveLength(2);
    const originals = [...points[2].bytes.values()];
    const got = restored.map((d) => d.image.read(0, d.image.size));
    for (const bytes of originals) expect(got.some((g) => g.equals(bytes))).toBe(true);
  });
});
