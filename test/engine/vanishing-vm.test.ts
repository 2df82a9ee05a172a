/**
 * The messages of backups that the world interrupts, against real libvirt and QEMU: a VM
 * destroyed or removed in the middle of its backup says so (not the NBD error that follows), and
 * a second backup of a shut-off VM says that another backup is running (not qemu-img's lock
 * error). Each backup is held at a known point (the job or export open, waiting for the
 * repository's VM lock that the test holds) while the world acts.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm} from '../../src/engine/backup-vm.js';
import {LibvirtPlatform} from '../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, TEST_PREFIX, virsh, type TestVm} from '../lib/libvirt.js';

let dir: string;
let repo: Repository;
let platform: LibvirtPlatform;
const vms: TestVm[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-vanish-'));
  repo = await createRepository(join(dir, 'repo'), {chunkSize: 256 * 1024});
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
}, 60_000);

afterAll(async () => {
  await platform?.close();
  for (const vm of vms) await destroyTestVm(vm);
  await rm(dir, {recursive: true, force: true});
});

/** Starts a backup of `vm` that waits for the VM lock the test holds; `act` runs meanwhile. */
async function heldBackup(vm: TestVm, ready: () => Promise<boolean>, act: () => Promise<void>) {
  const holder = await repo.beginRestorePoint({vmId: vm.uuid, vmName: vm.name, platform: 'libvirt'});
  const running = backupVm({platform, repository: repo, vmId: vm.uuid, vmName: vm.name});
  try {
    for (let i = 0; i < 400 && !(await ready()); i++) await sleep(50);
    await act();
  } finally {
    await holder.abort();
  }
  return running;
}

const jobActive = async (uuid: string) => /Job type:\s+Unbounded/.test(await virsh('domjobinfo', uuid).catch(() => ''));

describe('backups the world interrupts', () => {
  it('a running VM destroyed mid-backup: "shut down or destroyed during its backup"', async () => {
    const vm = await createTestVm(`vanish destroyed ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
    vms.push(vm);
    await guestWrite(vm, 'vda', 'write -P 0x51 0 4M');
    const r = await heldBackup(vm, () => jobActive(vm.uuid), () => virsh('destroy', vm.uuid).then(() => undefined));
    expect(r.status).toBe('failed');
    expect(r.error).toBeInstanceOf(UserError);
    expect((r.error as Error).message).toContain(`The VM ${vm.name} was shut down or destroyed on local during its backup; nothing was committed.`);
    expect(await repo.listRestorePoints({vmId: vm.uuid})).toEqual([]);
  });

  it('a running VM destroyed and undefined mid-backup: "removed from local (undefined)"', async () => {
    const vm = await createTestVm(`vanish removed ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
    vms.push(vm);
    await guestWrite(vm, 'vda', 'write -P 0x52 0 4M');
    const r = await heldBackup(vm, () => jobActive(vm.uuid), async () => {
      await virsh('undefine', vm.uuid, '--checkpoints-metadata');
      await virsh('destroy', vm.uuid);
    });
    expect(r.status).toBe('failed');
    expect((r.error as UserError).exitCode).toBe(ExitCode.notFound);
    expect((r.error as Error).message).toContain(`The VM ${vm.name} was removed from local (undefined) during its backup`);
  });

  it('a second backup of a shut-off VM while the first runs: "Another backup of VM … is running"', async () => {
    const vm = await createTestVm(`vanish twice ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
    vms.push(vm);
    let second: Awaited<ReturnType<typeof backupVm>> | undefined;
    const nbdUp = async () => (await import('execa')).execa('pgrep', ['-f', `qemu-nbd.*${vm.disks[0]!.path}`], {reject: false}).then((p) => p.stdout.trim() !== '');
    const first = await heldBackup(vm, nbdUp, async () => {
      second = await backupVm({platform, repository: repo, vmId: vm.uuid, vmName: vm.name});
    });
    expect(second!.status).toBe('failed');
    expect((second!.error as UserError).exitCode, (second!.error as Error).message).toBe(ExitCode.locked);
    expect((second!.error as Error).message).toMatch(new RegExp(`Another backup of VM ${vm.name} is running on this appliance \\(process \\d+\\)`));
    expect(first.status).toBe('success');
  });

  it('a shut-off VM someone starts while its backup reads it: the start is refused by the image lock, the backup finishes, and the VM starts after', async () => {
    const vm = await createTestVm(`vanish started ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
    vms.push(vm);
    const nbdUp = async () => (await import('execa')).execa('pgrep', ['-f', `qemu-nbd.*${vm.disks[0]!.path}`], {reject: false}).then((p) => p.stdout.trim() !== '');
    let startError = '';
    const r = await heldBackup(vm, nbdUp, async () => {
      startError = await virsh('start', vm.uuid).then(() => '', (e: Error) => e.message);
    });
    // QEMU needs the write lock that the backup's read-only export keeps from it (docs/libvirt-hosts.md).
    expect(startError).toMatch(/lock/i);
    expect(r.status).toBe('success');
    await virsh('start', vm.uuid);
    await virsh('destroy', vm.uuid);
  });
});
