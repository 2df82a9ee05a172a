/**
 * The libvirt benchmark's VM: a test-bed VM (test/lib/libvirt.ts createTestVm: no OS, one qcow2
 * disk vda and its raw "mirror") whose disk and mirror are replaced, before it starts, by a
 * prepared raw image (converted to qcow2 for the disk, copied sparse for the mirror). Every
 * benchmark write goes to both through test/lib's guestWrite, so restored images can be compared
 * with what the disk holds without reading the live image behind QEMU's back.
 */
import {execa} from 'execa';
import {createTestVm, virsh, type TestVm} from '../../test/lib/libvirt.js';

const MiB = 2 ** 20;

export async function createBenchVm(name: string, rawImage: string, sizeBytes: number): Promise<TestVm> {
  const vm = await createTestVm(name, [{target: 'vda', format: 'qcow2', sizeMiB: sizeBytes / MiB}]);
  const disk = vm.disks[0]!;
  await execa('cp', ['--sparse=always', '--', rawImage, disk.mirror]);
  await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '--', rawImage, disk.path]);
  await virsh('start', vm.uuid);
  return vm;
}
