/**
 * A disk attached to a running VM with `attach-disk --live` only (not in the persistent
 * definition) is backed up like the others, and a restore as a new VM defines it too: the
 * configuration the restore point keeps is the persistent XML plus the live-only disks. Real
 * libvirt + QEMU; the restored images must be bit-identical to what the disks held.
 */
import {execa} from 'execa';
import {mkdir, mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm} from '../../../src/engine/backup-vm.js';
import {restoreVm} from '../../../src/engine/restore-vm.js';
import {withLiveOnlyDisks} from '../../../src/platforms/libvirt/backup-common.js';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../../src/repository/index.js';
import {createTestVm, destroyTestVm, ensureLibvirt, TEST_PREFIX, virsh, type TestVm} from '../../lib/libvirt.js';

let dir: string;
let repo: Repository;
let platform: LibvirtPlatform;
let vm: TestVm | undefined;
let restored: string | undefined;

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-hot-added-'));
  repo = await createRepository(join(dir, 'repo'), {chunkSize: 256 * 1024});
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm(`hot added ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
}, 60_000);

afterAll(async () => {
  if (restored) await virsh('undefine', restored, '--checkpoints-metadata').catch(() => '');
  await platform?.close();
  await destroyTestVm(vm);
  await rm(dir, {recursive: true, force: true});
});

describe('a disk hot-added with attach-disk --live only', () => {
  it('keeps only the live-only backed-up disks, without runtime parts (pure)', () => {
    const inactive = "<domain><devices>\n<disk type='file'><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>\n</devices></domain>";
    const live =
      "<domain><devices><disk type='file'><source file='/a.qcow2' index='1'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>" +
      "<disk type='file'><source file='/b.qcow2' index='2'/><target dev='vdb' bus='virtio'/><alias name='virtio-disk1'/></disk>" +
      "<disk type='file'><source file='/c.iso' index='3'/><target dev='sdc' bus='sata'/></disk></devices></domain>";
    const out = withLiveOnlyDisks(inactive, live, ['vda', 'vdb']);
    expect(out).toContain("<source file='/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>");
    expect(out).not.toContain('/c.iso');
    expect(out).not.toContain('alias');
    expect(out.match(/<target dev='vda'/g)).toHaveLength(1);
    expect(withLiveOnlyDisks(inactive, inactive, ['vda'])).toBe(inactive);
  });

  it('is in the restore point\'s configuration, and a restore as a new VM defines it, bit-identical', async () => {
    const extra = join(vm!.dir, 'hot.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', extra, '8M']);
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 1M 2M', extra]);
    await virsh('attach-disk', vm!.uuid, extra, 'vdb', '--driver', 'qemu', '--subdriver', 'qcow2', '--targetbus', 'virtio', '--live');
    expect(await virsh('dumpxml', vm!.uuid, '--inactive')).not.toContain("dev='vdb'");

    const b = await backupVm({platform, repository: repo, vmId: vm!.uuid, vmName: vm!.name});
    expect(b.error, String(b.error)).toBeUndefined();
    const manifest = (await repo.openRestorePoint(b.restorePoint!.id)).manifest;
    expect(manifest.disks.map((d) => d.key).sort()).toEqual(['vda', 'vdb']);
    expect(manifest.configuration!.text).toContain("dev='vdb'");

    const name = `hot added copy ${process.pid}`;
    const storage = join(dir, 'restored');
    await mkdir(storage);
    const r = await restoreVm({platform, repository: repo, restorePointId: b.restorePoint!.id, target: {mode: 'vm', name, storage}});
    restored = r.vmId;
    const xml = await virsh('dumpxml', r.vmId!, '--inactive');
    const vdb = /<source file='([^']+)'\/>\s*<target dev='vdb'/.exec(xml)?.[1];
    expect(vdb, xml).toBeDefined();
    expect(vdb!.startsWith(storage)).toBe(true);
    const cmp = await execa('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', extra, vdb!], {reject: false});
    expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
  });
});
