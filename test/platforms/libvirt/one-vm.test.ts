/**
 * One VM costs one VM: finding a VM and backing it up runs the same number of host commands
 * whether the host defines 0 or 12 other VMs (a whole-host inventory grows with them: it is read
 * only for listings, never to back up one VM). Real libvirt + QEMU; the other VMs are defined,
 * not started. The CLI's `backup --vm` and the daemon's jobs that pick VMs by id take this path
 * (platform.findVm).
 */
import {execa} from 'execa';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm} from '../../../src/engine/backup-vm.js';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import {createRepositoryOn, MemoryBackend} from '../../../src/repository/index.js';
import {findVm} from '../../../src/cli/platform-args.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, TEST_PREFIX, virsh, type TestVm} from '../../lib/libvirt.js';

let vm: TestVm | undefined;
let scratch: string;
const extra: string[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  scratch = await mkdtemp(join(tmpdir(), 'vmb-one-vm-'));
  vm = await createTestVm('one vm costs one vm', [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
  await guestWrite(vm, 'vda', 'write -P 0x33 0 1M');
}, 120_000);

afterAll(async () => {
  for (const uuid of extra) await execa('virsh', ['-c', 'qemu:///system', 'undefine', uuid], {reject: false});
  await destroyTestVm(vm);
  await rm(scratch, {recursive: true, force: true});
});

/** Host commands run to find the VM by name and back it up (full, then incremental), as the CLI does. */
async function commandsForOneBackup(): Promise<{find: number; backup: number}> {
  const lines: string[] = [];
  const platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: scratch, commandLog: (l) => lines.push(l)});
  try {
    const found = await findVm(platform, vm!.name);
    const find = lines.length;
    const repository = await createRepositoryOn(new MemoryBackend(), {chunkSize: 256 * 1024});
    const r = await backupVm({platform, repository, vmId: found.id, vmName: found.name, keepCheckpoint: () => false});
    expect(r.status, String(r.error)).not.toBe('failed');
    return {find, backup: lines.length - find};
  } finally {
    await platform.close();
  }
}

async function defineExtraVms(n: number): Promise<void> {
  const dir = await mkdtemp(join(scratch, 'extra-'));
  for (let i = 0; i < n; i++) {
    const file = join(dir, `d${i}.xml`);
    await writeFile(file, `<domain type='qemu'><name>vmbtest-extra-${process.pid}-${i}</name><memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os></domain>`);
    await virsh('define', file);
    extra.push((await virsh('domuuid', `vmbtest-extra-${process.pid}-${i}`)).trim());
  }
}

describe('libvirt: one VM costs one VM', () => {
  it('finding and backing up one VM runs as many host commands with 12 more VMs on the host as without', async () => {
    // Once first, so that both measured runs find the VM in the same state (one older checkpoint of ours to retire).
    await commandsForOneBackup();
    const before = await commandsForOneBackup();
    await defineExtraVms(12);
    const after = await commandsForOneBackup();
    expect(after).toEqual(before);
    expect(before.find).toBeLessThanOrEqual(4);
    // The whole-host inventory, for comparison, grows with every VM defined.
    const lines: string[] = [];
    const platform = new LibvirtPlatform({hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: scratch, commandLog: (l) => lines.push(l)});
    await platform.inventory();
    await platform.close();
    expect(lines.length).toBeGreaterThan(before.find + 12);
  }, 180_000);

  it('a VM whose disk image is gone is listed with that disk marked, and the inventory of the host still succeeds', async () => {
    const broken = await createTestVm('image gone', [{target: 'vda', format: 'qcow2', sizeMiB: 1}]);
    try {
      await rm(broken.disks[0]!.path);
      const platform = new LibvirtPlatform({hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: scratch});
      const vms = await platform.inventory();
      await platform.close();
      const listed = vms.find((v) => v.id === broken.uuid);
      expect(listed?.disks[0]).toMatchObject({key: 'vda', trackable: false, trackingNote: expect.stringMatching(/^its image cannot be read: Cannot read the disk image /)});
      expect(vms.some((v) => v.id === vm!.uuid)).toBe(true);
    } finally {
      await destroyTestVm(broken);
    }
  }, 60_000);
});
