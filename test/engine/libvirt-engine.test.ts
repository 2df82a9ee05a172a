/**
 * The engine slice end to end on real libvirt + QEMU: a running VM with a qcow2 and a raw disk is
 * backed up (full, then incremental) into a real repository, a session fails in the middle, and
 * every restore point is restored to image files and compared with the disk as it was at backup
 * time (qemu-img compare). The same through the real `vmbackup backup` / `restore` CLI, and a
 * whole-VM restore under a new name.
 */
import {mkdir, mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm, type VmBackupResult} from '../../src/engine/backup-vm.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import {LibvirtPlatform} from '../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {vmbackup} from '../lib/cli.js';
import {copyFile, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, virsh, type TestVm} from '../lib/libvirt.js';

const MiB = 1024 * 1024;
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
let repo: Repository;
let work: string;
const restoredVms: string[] = [];

/** Copies of each disk's mirror at the time of each restore point. */
async function snapshotMirrors(tag: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const d of vm!.disks) {
    out[d.target] = join(work, `${tag}-${d.target}.raw`);
    await copyFile(d.mirror, out[d.target]);
  }
  return out;
}

async function restoreAndCompare(restorePointId: string, expected: Record<string, string>, tag: string) {
  const dir = join(work, `restore-${tag}`);
  const result = await restoreVm({platform, repository: repo, restorePointId, target: {mode: 'disks-to-files', directory: dir, format: 'raw'}});
  expect(result.files).toHaveLength(vm!.disks.length);
  for (const [target, mirror] of Object.entries(expected)) {
    const file = result.files!.find((f) => f.endsWith(`-${target}.raw`));
    expect(file, `restored file for ${target}`).toBeDefined();
    const cmp = await imagesIdentical(file!, mirror);
    expect(cmp.same, `${tag} ${target}: ${cmp.output}`).toBe(true);
  }
}

function backup(extra: Partial<Parameters<typeof backupVm>[0]> = {}): Promise<VmBackupResult> {
  return backupVm({platform, repository: repo, vmId: vm!.uuid, vmName: vm!.name, ...extra});
}

beforeAll(async () => {
  await ensureLibvirt();
  work = await mkdtemp(join(tmpdir(), 'engine-libvirt-'));
  repo = await createRepository(join(work, 'repo'), {chunkSize: 256 * 1024});
  platform = new LibvirtPlatform({hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm(`engine e2e "q" 'x'; ü ${process.pid}`, [
    {target: 'vda', format: 'qcow2', sizeMiB: 64},
    {target: 'vdb', format: 'raw', sizeMiB: 32},
  ], {start: true});
});

afterAll(async () => {
  for (const name of restoredVms) {
    await virsh('undefine', name, '--checkpoints-metadata').catch(() => undefined);
  }
  await destroyTestVm(vm);
  await platform?.close();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('engine backup → repository → restore on libvirt', () => {
  const points: {id: string; mirrors: Record<string, string>}[] = [];

  it('full backup stores both disks, warns about the raw disk, and restores bit-identical', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x11 0 3M');
    await guestWrite(vm!, 'vda', 'write -P 0x12 40M 512k');
    await guestWrite(vm!, 'vdb', 'write -P 0x22 1M 2M');
    const r = await backup();
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('warning');
    expect(r.incremental).toBe(false);
    expect(r.events.map((e) => e.message)).toContain('disk vdb has RAW format and can be backed up only in full scan mode');
    expect(r.restorePoint?.checkpoint?.id).toMatch(/^vmbackup-/);
    // Only allocated data is read on the qcow2 disk: 3.5 MiB written, read rounded to chunks.
    expect(r.disks.vda.readBytes).toBeLessThanOrEqual(4 * MiB);
    points.push({id: r.restorePoint!.id, mirrors: await snapshotMirrors('p1')});
    await restoreAndCompare(points[0].id, points[0].mirrors, 'p1');
  });

  it('incremental reads only the dirty chunks, records zeroed ranges as zero, and restores bit-identical', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x33 10M 64k');
    await guestWrite(vm!, 'vda', 'write -z 0 1M');
    const r = await backup();
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(true);
    expect(r.restorePoint?.type).toBe('incremental');
    // Dirty: 64 KiB at 10 MiB (one 256 KiB chunk) and 1 MiB at 0 (four chunks, zero or read).
    expect(r.disks.vda.readBytes).toBeLessThanOrEqual(5 * 256 * 1024);
    expect(r.disks.vda.unchangedBytes).toBeGreaterThan(60 * MiB);
    points.push({id: r.restorePoint!.id, mirrors: await snapshotMirrors('p2')});
    await restoreAndCompare(points[1].id, points[1].mirrors, 'p2');
    // The full is still intact and restorable after the incremental.
    await restoreAndCompare(points[0].id, points[0].mirrors, 'p1-again');
  });

  it('a session that fails in the middle commits nothing, and the next incremental is still correct', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x44 20M 2M');
    const controller = new AbortController();
    const failed = await backup({
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'disk-started') controller.abort(new Error('stopped by the test'));
      },
    });
    expect(failed.status).toBe('failed');
    expect(failed.restorePoint).toBeUndefined();
    expect((await repo.listRestorePoints({vmId: vm!.uuid})).map((p) => p.id)).toEqual(points.map((p) => p.id));
    // The aborted session's checkpoint is gone; only the committed one remains.
    const checkpoints = (await virsh('checkpoint-list', vm!.uuid, '--name')).split('\n').filter(Boolean);
    expect(checkpoints).toHaveLength(1);

    await guestWrite(vm!, 'vdb', 'write -P 0x55 30M 64k');
    const r = await backup();
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(true);
    // Changes of the failed session are read again: they are relative to the last committed point.
    expect(r.disks.vda.readBytes).toBeGreaterThanOrEqual(2 * MiB);
    points.push({id: r.restorePoint!.id, mirrors: await snapshotMirrors('p3')});
    await restoreAndCompare(points[2].id, points[2].mirrors, 'p3');
  });

  it('an active full reads the disks in full and is recorded as a full restore point', async () => {
    const r = await backup({full: true});
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(false);
    expect(r.restorePoint?.type).toBe('full');
    expect(r.disks.vda.unchangedBytes).toBe(0);
    const mirrors = await snapshotMirrors('p-full');
    await restoreAndCompare(r.restorePoint!.id, mirrors, 'active-full');
  });

  it('restores the whole VM under a new name with new UUID and bit-identical disks', async () => {
    const name = `restored "copy"; ü ${process.pid}`;
    const storage = join(work, 'vm storage');
    await mkdir(storage);
    const result = await restoreVm({platform, repository: repo, restorePointId: points[2].id, target: {mode: 'vm', name, storage}});
    restoredVms.push(name);
    expect(result.vmName).toBe(name);
    expect(result.vmId).not.toBe(vm!.uuid);
    // domblklist --details: Type Device Target Source (the source path may contain spaces).
    const rows = (await virsh('domblklist', name, '--details')).split('\n').map((l) => l.trim().split(/\s+/));
    for (const d of vm!.disks) {
      const row = rows.find((r) => r[2] === d.target);
      expect(row, `disk ${d.target} in the restored VM`).toBeDefined();
      const path = row!.slice(3).join(' ');
      expect(path.startsWith(storage)).toBe(true);
      const fmt = /\.qcow2$/.test(path) ? 'qcow2' : 'raw';
      const cmp = await imagesIdentical(path, points[2].mirrors[d.target], fmt, 'raw');
      expect(cmp.same, cmp.output).toBe(true);
      if (fmt === 'qcow2') {
        // A new image reads as zeros already: zero runs were not written (no zero clusters
        // allocated); they are unallocated ("present": false).
        const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', '-f', 'qcow2', path])).stdout) as {present: boolean; zero: boolean; data: boolean}[];
        expect(map.some((e) => !e.present && e.zero)).toBe(true);
        expect(map.filter((e) => e.present && e.zero && !e.data)).toEqual([]);
      }
    }
  });

  it('the vmbackup CLI backs up and restores the same VM', async () => {
    const repoPath = join(work, 'cli repo');
    expect((await vmbackup(['repo', 'create', repoPath])).exitCode).toBe(0);
    const b = await vmbackup(['backup', '--host', 'local', '--vm', vm!.name, '--repo', repoPath]);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.stderr).toContain('RAW format');
    const mirrors = await snapshotMirrors('cli');
    const out = join(work, 'cli restore');
    const r = await vmbackup(['restore', '--repo', repoPath, '--vm', vm!.name, '--to-files', out, '--format', 'raw', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout).files;
    for (const d of vm!.disks) {
      const file = files.find((f) => f.endsWith(`-${d.target}.raw`))!;
      expect((await imagesIdentical(file, mirrors[d.target])).same).toBe(true);
    }
    const missing = await vmbackup(['backup', '--host', 'local', '--vm', 'no such vm', '--repo', repoPath]);
    expect(missing.exitCode).toBe(16);
    expect(missing.stderr).toContain("There is no VM 'no such vm'");
  });
});
