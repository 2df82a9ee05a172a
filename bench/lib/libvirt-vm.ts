/**
 * The libvirt benchmark's VM: a running domain with no OS whose one disk (vda, qcow2) is a copy
 * of a prepared raw image, plus a raw "mirror" of that disk that receives every benchmark write
 * too (test/lib/libvirt.ts guestWrite), so restored images can be compared with what the disk
 * held without reading the live image behind QEMU's back.
 *
 * The shape is test/lib/libvirt.ts's TestVm, so its guestWrite and destroyTestVm work on it.
 */
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {VMS_DIR, diskXml, virsh, type TestDisk, type TestVm} from '../../test/lib/libvirt.js';

export async function createBenchVm(name: string, rawImage: string, sizeBytes: number): Promise<TestVm> {
  await mkdir(VMS_DIR, {recursive: true});
  const dir = await mkdtemp(join(VMS_DIR, 'bench-'));
  const disk: TestDisk = {target: 'vda', format: 'qcow2', path: join(dir, 'vda.qcow2'), size: sizeBytes, mirror: join(dir, 'mirror-vda.raw')};
  await execa('cp', ['--sparse=always', '--', rawImage, disk.mirror]);
  await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '--', rawImage, disk.path]);
  const type = existsSync('/dev/kvm') ? 'kvm' : 'qemu';
  const xml = `<domain type='${type}'>
  <name>${name.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    ${diskXml(disk)}
  </devices>
</domain>
`;
  const file = join(dir, 'domain.xml');
  await writeFile(file, xml);
  await virsh('define', file);
  const uuid = (await virsh('domuuid', name)).trim();
  await virsh('start', uuid);
  return {name, uuid, dir, disks: [disk]};
}
