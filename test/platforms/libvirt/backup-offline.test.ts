/**
 * Backups of a shut-off domain against real qemu-img / qemu-nbd / libvirtd: full and incremental
 * through persistent qcow2 bitmaps, abort, a locked image, and the chain continuing as an online
 * incremental once the VM runs.
 */
import {join} from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {CheckpointRecord} from '../../../src/platforms/types.js';
import {ExitCode, UserError} from '../../../src/util/errors.js';
import {backupAndApply as backupAndApplyTo, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, offlineWrite, virsh, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';

const MiB = 1024 * 1024;
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
const restored = new Map<string, string>();
let last: CheckpointRecord | undefined;

beforeAll(async () => {
  await ensureLibvirt();
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm('bk off ünï "x"', [
    {target: 'vda', format: 'qcow2', sizeMiB: 32},
    {target: 'vdb', format: 'raw', sizeMiB: 16},
  ]);
});

afterAll(async () => {
  await destroyTestVm(vm);
});

async function bitmaps(target: string): Promise<string[]> {
  const d = vm!.disks.find((x) => x.target === target)!;
  const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', d.path])).stdout) as {
    'format-specific'?: {data?: {bitmaps?: {name: string}[]}};
  };
  return (info['format-specific']?.data?.bitmaps ?? []).map((b) => b.name);
}

async function backupAndApply(base: CheckpointRecord | undefined) {
  const result = await backupAndApplyTo(platform, vm!, restored, base);
  last = result.backup.checkpoint;
  for (const d of vm!.disks) {
    const r = await imagesIdentical(restored.get(d.target)!, d.mirror);
    expect(r.same, `${d.target}: ${r.output}`).toBe(true);
  }
  return result;
}

describe('libvirt adapter, shut-off VM', () => {
  it('takes a full backup through qemu-nbd and leaves a bitmap of its own prefix', async () => {
    await offlineWrite(vm!, 'vda', 'write -P 0x5a 0 2M');
    await offlineWrite(vm!, 'vdb', 'write -P 0x6b 4M 1M');
    const {backup, events} = await backupAndApply(undefined);
    expect(backup.sources.map((s) => [s.key, s.incremental])).toEqual([
      ['vda', false],
      ['vdb', false],
    ]);
    expect(events).toContainEqual(expect.objectContaining({code: 'raw-disk-full-scan'}));
    expect(await bitmaps('vda')).toEqual([backup.checkpoint!.id]);
  });

  it('reads only the blocks written since, through the bitmap, and drops the older bitmap', async () => {
    await offlineWrite(vm!, 'vda', 'write -P 0x7c 5M 64k');
    await offlineWrite(vm!, 'vda', 'write -z 0 64k');
    const base = last!;
    const {backup, extents} = await backupAndApply(base);
    expect(backup.sources.find((s) => s.key === 'vda')!.incremental).toBe(true);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([
      {offset: 0, length: 64 * 1024, kind: 'zero'},
      {offset: 5 * MiB, length: 64 * 1024, kind: 'data'},
    ]);
    expect(await bitmaps('vda')).toEqual([backup.checkpoint!.id]);
  });

  it('abort removes the new bitmap, stops qemu-nbd and leaves the image unlocked', async () => {
    const backup = await platform.openBackup(vm!.uuid, {baseCheckpoint: last, log: () => {}});
    expect((await bitmaps('vda')).length).toBe(2);
    await backup.abort();
    expect(await bitmaps('vda')).toEqual([last!.id]);
    const vda = vm!.disks.find((x) => x.target === 'vda')!;
    // Without -U this needs the write lock: it fails while any qemu-nbd still has the image.
    await execa('qemu-img', ['info', vda.path]);
  });

  it('refuses an image that another process holds open', async () => {
    const vda = vm!.disks.find((x) => x.target === 'vda')!;
    const holder: ResultPromise = execa('qemu-nbd', ['-f', 'qcow2', '-k', join(vm!.dir, 'holder.sock'), vda.path], {reject: false});
    try {
      for (let i = 0; i < 100; i++) {
        const r = await execa('qemu-img', ['info', vda.path], {reject: false});
        if (r.exitCode !== 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const err = await platform.openBackup(vm!.uuid, {baseCheckpoint: last, log: () => {}}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(ExitCode.locked);
      expect((err as UserError).message).toContain('in use');
    } finally {
      holder.kill('SIGTERM');
      await holder;
    }
    expect(await bitmaps('vda')).toEqual([last!.id]);
  });

  it('continues the chain as an online incremental once the VM runs', async () => {
    await virsh('start', vm!.uuid);
    await guestWrite(vm!, 'vda', 'write -P 0x8d 9M 64k');
    const {backup, events, extents} = await backupAndApply(last);
    expect(events.filter((e) => e.code === 'checkpoint-lost')).toEqual([]);
    expect(backup.sources.find((s) => s.key === 'vda')!.incremental).toBe(true);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([{offset: 9 * MiB, length: 64 * 1024, kind: 'data'}]);
  });

  it('continues the chain offline again after the VM stopped (bitmap stored by QEMU on exit)', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x9e 11M 64k');
    await virsh('destroy', vm!.uuid);
    await offlineWrite(vm!, 'vda', 'write -P 0x9f 13M 64k');
    const {backup, events, extents} = await backupAndApply(last);
    expect(events.filter((e) => e.code === 'checkpoint-lost')).toEqual([]);
    expect(backup.sources.find((s) => s.key === 'vda')!.incremental).toBe(true);
    expect(extents.get('vda')!.filter((e) => e.kind !== 'unchanged')).toEqual([
      {offset: 11 * MiB, length: 64 * 1024, kind: 'data'},
      {offset: 13 * MiB, length: 64 * 1024, kind: 'data'},
    ]);
    expect(await bitmaps('vda')).toEqual([backup.checkpoint!.id]);
  });
});
