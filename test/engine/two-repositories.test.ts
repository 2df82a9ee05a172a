/**
 * A VM backed up by two jobs into two repositories stays incremental in both, against real
 * libvirt and QEMU, running and shut off: each backup retires only the checkpoints no other
 * repository builds on (today's daemon passes checkpointsNeededElsewhere). Before, A full → A inc
 * → B full → A was a full with "checkpoint-lost".
 */
import {execa} from 'execa';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm, checkpointsNeededElsewhere} from '../../src/engine/backup-vm.js';
import {LibvirtPlatform} from '../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, offlineWrite, TEST_PREFIX, virsh, type TestVm} from '../lib/libvirt.js';

let dir: string;
let a: Repository;
let b: Repository;
let platform: LibvirtPlatform;
const vms: TestVm[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-two-repos-'));
  a = await createRepository(join(dir, 'a'), {chunkSize: 256 * 1024});
  b = await createRepository(join(dir, 'b'), {chunkSize: 256 * 1024});
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vms.push(await createTestVm(`two repos on ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true}));
  vms.push(await createTestVm(`two repos off ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}]));
}, 120_000);

afterAll(async () => {
  await platform?.close();
  for (const vm of vms) await destroyTestVm(vm);
  await rm(dir, {recursive: true, force: true});
});

async function into(repo: Repository, vm: TestVm) {
  const other = repo === a ? b : a;
  const r = await backupVm({platform, repository: repo, vmId: vm.uuid, vmName: vm.name, keepCheckpoint: await checkpointsNeededElsewhere([other], vm.uuid)});
  expect(r.error, String(r.error)).toBeUndefined();
  expect(r.events.map((e) => e.code)).not.toContain('checkpoint-lost');
  return r;
}

async function ownCheckpoints(vm: TestVm): Promise<string[]> {
  return (await virsh('checkpoint-list', vm.uuid, '--name')).split('\n').map((l) => l.trim()).filter((l) => l.startsWith(TEST_PREFIX));
}

describe('one VM, two repositories', () => {
  it.each([0, 1])('stays incremental in both (VM %#: 0 running, 1 shut off)', async (n) => {
    const vm = vms[n]!;
    const write = (pattern: string) => (n === 0 ? guestWrite(vm, 'vda', pattern) : offlineWrite(vm, 'vda', pattern));
    await write('write -P 0x11 0 1M');
    expect((await into(a, vm)).incremental).toBe(false);
    await write('write -P 0x12 1M 1M');
    expect((await into(a, vm)).incremental).toBe(true);
    expect((await into(b, vm)).incremental).toBe(false);
    await write('write -P 0x13 2M 1M');
    const aInc = await into(a, vm);
    expect(aInc.incremental).toBe(true);
    expect(aInc.disks.vda!.readBytes).toBeLessThan(4 * 1024 * 1024);
    expect((await into(b, vm)).incremental).toBe(true);
    // What is left: exactly each repository's newest checkpoint.
    const newest = async (r: Repository) => (await r.listRestorePoints({vmId: vm.uuid})).at(-1)!.checkpoint!.id;
    expect((await ownCheckpoints(vm)).sort()).toEqual([await newest(a), await newest(b)].sort());
    if (n === 1) {
      const info = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', vm.disks[0]!.path])).stdout) as {'format-specific'?: {data?: {bitmaps?: {name: string}[]}}};
      expect((info['format-specific']?.data?.bitmaps ?? []).map((x) => x.name).sort()).toEqual([await newest(a), await newest(b)].sort());
    }
  });
});
