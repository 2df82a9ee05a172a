/**
 * Backups of a running domain against real libvirtd + QEMU: full (qcow2 + raw disk), incremental
 * with exactly the dirty extents, an aborted backup, lost checkpoint metadata, a hot-added disk,
 * and a VM name with spaces, quotes and unicode. Bit-identity: every DiskSource is replayed onto a
 * raw file and compared with the mirror of the writes the test made (qemu-img compare).
 */
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {CheckpointRecord, SessionEvent, VmBackup} from '../../../src/platforms/types.js';
import {
  applySource,
  backupAndApply as backupAndApplyTo,
  createTestDisk,
  createTestVm,
  destroyTestVm,
  diskXml,
  ensureLibvirt,
  guestWrite,
  imagesIdentical,
  virsh,
  type TestVm,
  TEST_PREFIX,
} from '../../lib/libvirt.js';
import {writeFile} from 'node:fs/promises';

const MiB = 1024 * 1024;
let vm: TestVm | undefined;
let platform: LibvirtPlatform;

beforeAll(async () => {
  await ensureLibvirt();
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm(`bk run 'q' "dq"; $x ünï`, [
    {target: 'vda', format: 'qcow2', sizeMiB: 64},
    {target: 'vdb', format: 'raw', sizeMiB: 32},
  ], {start: true});
});

afterAll(async () => {
  await destroyTestVm(vm);
});

/** The restored image of each disk after the last committed restore point. */
const restored = new Map<string, string>();

const backupAndApply = (base: CheckpointRecord | undefined) => backupAndApplyTo(platform, vm!, restored, base);

async function expectRestoredEqualsMirrors() {
  for (const d of vm!.disks) {
    const r = await imagesIdentical(restored.get(d.target)!, d.mirror);
    expect(r.same, `${d.target}: ${r.output}`).toBe(true);
  }
}

async function checkpoints(): Promise<string[]> {
  return (await virsh('checkpoint-list', vm!.uuid, '--name')).split('\n').map((l) => l.trim()).filter(Boolean);
}

let last: VmBackup;

describe('libvirt adapter, running VM', () => {
  it('lists the VM in the inventory with its qcow2 and raw disks', async () => {
    const inv = await platform.inventory();
    const mine = inv.find((v) => v.id === vm!.uuid);
    expect(mine).toBeDefined();
    expect(mine!.name).toBe(vm!.name);
    expect(mine!.state).toBe('running');
    expect(mine!.host).toBe('local');
    expect(mine!.disks.map((d) => [d.key, d.format, d.size, d.trackable])).toEqual([
      ['vda', 'qcow2', 64 * MiB, true],
      ['vdb', 'raw', 32 * MiB, false],
    ]);
    expect(mine!.disks[1]!.trackingNote).toContain('RAW');
  });

  it('takes a full backup that is bit-identical, warns about the raw disk, and keeps its checkpoint', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0xaa 0 3M');
    await guestWrite(vm!, 'vda', 'write -P 0x11 40M 1M');
    await guestWrite(vm!, 'vdb', 'write -P 0xbb 1M 2M');
    const {backup, events, extents} = await backupAndApply(undefined);
    last = backup;
    expect(backup.sources.every((s) => !s.incremental)).toBe(true);
    expect(events).toContainEqual(expect.objectContaining({code: 'raw-disk-full-scan', message: 'disk vdb has RAW format and can be backed up only in full scan mode'}));
    expect(backup.configuration.kind).toBe('libvirt-domain-xml');
    expect(backup.configuration.text).toContain('<uuid>');
    expect(backup.checkpoint!.id).toMatch(/^vmbtest-/);
    expect(String(backup.checkpoint!.data!['xml'])).toContain('<domaincheckpoint');
    // A full read skips what reads as zero: most of the 64 MiB disk is never read.
    const dataBytes = extents.get('vda')!.filter((e) => e.kind === 'data').reduce((n, e) => n + e.length, 0);
    expect(dataBytes).toBeLessThan(16 * MiB);
    await expectRestoredEqualsMirrors();
    expect(await checkpoints()).toEqual([backup.checkpoint!.id]);
  });

  it('reads exactly the dirty extents in an incremental and records zeroed ranges as zero', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0xcc 8M 128k');
    await guestWrite(vm!, 'vda', 'write -z 1M 64k');
    await guestWrite(vm!, 'vdb', 'write -P 0xdd 0 64k');
    const base = last.checkpoint!;
    const {backup, extents} = await backupAndApply(base);
    const vda = extents.get('vda')!;
    expect(backup.sources.find((s) => s.key === 'vda')!.incremental).toBe(true);
    expect(backup.sources.find((s) => s.key === 'vdb')!.incremental).toBe(false);
    expect(vda.filter((e) => e.kind !== 'unchanged')).toEqual([
      {offset: 1 * MiB, length: 64 * 1024, kind: 'zero'},
      {offset: 8 * MiB, length: 128 * 1024, kind: 'data'},
    ]);
    await expectRestoredEqualsMirrors();
    // The older checkpoint of ours is gone; only the new one is left.
    expect(await checkpoints()).toEqual([backup.checkpoint!.id]);
    last = backup;
  });

  it('after an aborted backup the checkpoint is gone and the next incremental still has every change', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x21 20M 64k');
    const base = last.checkpoint!;
    const aborted = await platform.openBackup(vm!.uuid, {baseCheckpoint: base, log: () => {}});
    const src = aborted.sources.find((s) => s.key === 'vda')!;
    await applySource(src, join(vm!.dir, 'partial.raw'), {create: true, stopAfterBytes: 1});
    await aborted.abort();
    await aborted.abort(); // idempotent
    expect(await checkpoints()).toEqual([base.id]);

    await guestWrite(vm!, 'vda', 'write -P 0x22 30M 64k');
    const {backup, extents} = await backupAndApply(base);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([
      {offset: 20 * MiB, length: 64 * 1024, kind: 'data'},
      {offset: 30 * MiB, length: 64 * 1024, kind: 'data'},
    ]);
    await expectRestoredEqualsMirrors();
    last = backup;
  });

  it('redefines a checkpoint whose libvirt metadata was lost, from the saved XML', async () => {
    const base = last.checkpoint!;
    await virsh('checkpoint-delete', vm!.uuid, base.id, '--metadata');
    expect(await checkpoints()).toEqual([]);
    await guestWrite(vm!, 'vda', 'write -P 0x33 50M 64k');
    const {backup, events, extents} = await backupAndApply(base);
    expect(events).toContainEqual(expect.objectContaining({code: 'checkpoint-redefined'}));
    expect(backup.sources.find((s) => s.key === 'vda')!.incremental).toBe(true);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([{offset: 50 * MiB, length: 64 * 1024, kind: 'data'}]);
    await expectRestoredEqualsMirrors();
    last = backup;
  });

  it('falls back to a full backup with a warning when the checkpoint cannot be recovered', async () => {
    const base = {id: 'vmbackup-19700101T000000Z-dead'};
    const {backup, events} = await backupAndApply(base);
    expect(events).toContainEqual(expect.objectContaining({code: 'checkpoint-lost', severity: 'warning'}));
    expect(backup.sources.every((s) => !s.incremental)).toBe(true);
    await expectRestoredEqualsMirrors();
    last = backup;
  });

  it('reads a hot-added disk in full and the others incrementally', async () => {
    const vdc = await createTestDisk(vm!.dir, 'vdc', 'qcow2', 16);
    vm!.disks.push(vdc);
    const xmlFile = join(vm!.dir, 'vdc.xml');
    await writeFile(xmlFile, diskXml(vdc));
    await virsh('attach-device', vm!.uuid, xmlFile, '--live', '--config');
    await guestWrite(vm!, 'vdc', 'write -P 0x44 0 256k');
    await guestWrite(vm!, 'vda', 'write -P 0x45 60M 64k');
    const {backup, events} = await backupAndApply(last.checkpoint!);
    expect(backup.sources.map((s) => [s.key, s.incremental])).toEqual([
      ['vda', true],
      ['vdb', false],
      ['vdc', false],
    ]);
    expect(events).toContainEqual(expect.objectContaining({code: 'disk-new-since-base', disk: 'vdc'}));
    await expectRestoredEqualsMirrors();
    last = backup;
  });

  it('redefines a lost checkpoint after a disk was removed and another added', async () => {
    // A guest with no OS never acknowledges a hot unplug: change the config and restart
    // (QEMU stores its bitmaps when it is stopped, so the chain survives the restart).
    await virsh('detach-disk', vm!.uuid, 'vdc', '--config');
    vm!.disks = vm!.disks.filter((d) => d.target !== 'vdc');
    const vdd = await createTestDisk(vm!.dir, 'vdd', 'qcow2', 8);
    vm!.disks.push(vdd);
    await writeFile(join(vm!.dir, 'vdd.xml'), diskXml(vdd));
    await virsh('attach-device', vm!.uuid, join(vm!.dir, 'vdd.xml'), '--config');
    await virsh('destroy', vm!.uuid);
    await virsh('start', vm!.uuid);
    await virsh('checkpoint-delete', vm!.uuid, last.checkpoint!.id, '--metadata');
    await guestWrite(vm!, 'vda', 'write -P 0x46 61M 64k');
    await guestWrite(vm!, 'vdd', 'write -P 0x47 1M 64k');
    const {backup, events, extents} = await backupAndApply(last.checkpoint!);
    expect(events).toContainEqual(expect.objectContaining({code: 'checkpoint-redefined'}));
    expect(backup.sources.map((s) => [s.key, s.incremental])).toEqual([
      ['vda', true],
      ['vdb', false],
      ['vdd', false],
    ]);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([{offset: 61 * MiB, length: 64 * 1024, kind: 'data'}]);
    await expectRestoredEqualsMirrors();
    last = backup;
  });

  it('backs up crash-consistent with a warning when guest consistency is asked but no agent answers', async () => {
    const events: SessionEvent[] = [];
    const backup = await platform.openBackup(vm!.uuid, {baseCheckpoint: last.checkpoint, guestConsistency: true, log: (e) => events.push(e)});
    await backup.abort();
    expect(events).toContainEqual(expect.objectContaining({code: 'no-guest-agent', severity: 'warning'}));
    expect(await checkpoints()).toEqual([last.checkpoint!.id]);
  });
});
