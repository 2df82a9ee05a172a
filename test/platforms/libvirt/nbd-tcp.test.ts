/**
 * The plain-TCP NBD setting (for a trusted backup network): pull-job exports, shut-off qemu-nbd
 * exports and restore exports listen on a TCP port of the configured range instead of a socket.
 */
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import {applySource, copyFile, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, offlineWrite, virsh, writeRawIntoSink, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';

const MiB = 1024 * 1024;
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
const commands: string[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, 
    hosts: [{name: 'local', connection: {kind: 'local'}, nbd: {transport: 'tcp', bindAddress: '127.0.0.1', ports: [10900, 10999]}}],
    scratchDir: '/var/tmp/vmbackup-test',
    commandLog: (l) => commands.push(l),
  });
  vm = await createTestVm('tcp vm', [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
});

afterAll(async () => {
  await destroyTestVm(vm);
});

describe('libvirt adapter with NBD over TCP', () => {
  it('backs up shut off and running over TCP, restores over TCP, all bit-identical', async () => {
    await offlineWrite(vm!, 'vda', 'write -P 0x31 0 1M');
    const off = await platform.openBackup(vm!.uuid, {log: () => {}});
    const img = join(vm!.dir, 'tcp-0.raw');
    await applySource(off.sources[0]!, img, {create: true});
    await off.complete();
    expect(commands.some((c) => /qemu-nbd .*--bind=127\.0\.0\.1 --port=109\d\d/.test(c))).toBe(true);
    expect((await imagesIdentical(img, vm!.disks[0]!.mirror)).same).toBe(true);

    await virsh('start', vm!.uuid);
    await guestWrite(vm!, 'vda', 'write -P 0x32 3M 64k');
    const on = await platform.openBackup(vm!.uuid, {baseCheckpoint: off.checkpoint, log: () => {}});
    const img2 = join(vm!.dir, 'tcp-1.raw');
    await copyFile(img, img2);
    const extents = await applySource(on.sources[0]!, img2);
    await on.complete();
    expect(on.sources[0]!.incremental).toBe(true);
    expect(extents.filter((e) => e.kind !== 'unchanged')).toEqual([{offset: 3 * MiB, length: 64 * 1024, kind: 'data'}]);
    expect((await imagesIdentical(img2, vm!.disks[0]!.mirror)).same).toBe(true);

    const restore = await platform.openRestore(
      {vmId: vm!.uuid, vmName: vm!.name, disks: [{key: 'vda', name: 'vda', size: 16 * MiB, format: 'qcow2'}]},
      {mode: 'disks-to-vm', vmId: vm!.uuid},
      {log: () => {}},
    );
    await writeRawIntoSink(img2, restore.sinks[0]!);
    const out = await restore.finish();
    expect((await imagesIdentical(out.files![0]!, vm!.disks[0]!.mirror, 'qcow2', 'raw')).same).toBe(true);
  });
});
