/**
 * The hardware of an oVirt VM from its OVF (platforms/ovf-hardware.ts) and the libvirt domain made
 * from it (platforms/libvirt/domain-from-ovf.ts). The OVF is the simulator's, written as the
 * engine's OvfWriter/OvfOvirtWriter write it (test/ovirt-sim/ovf.ts cites them); the domain is
 * started for real in test/daemon/instant.test.ts. An OVF comes from a repository: a hostile one
 * gets a clear refusal.
 */
import {describe, expect, it} from 'vitest';
import {readOvfHardware} from '../../src/platforms/ovf-hardware.js';
import {domainFromOvf} from '../../src/platforms/libvirt/domain-from-ovf.js';
import {renderOvf} from '../ovirt-sim/ovf.js';
import type {SimDisk, SimVm} from '../ovirt-sim/state.js';
import {SimImage} from '../ovirt-sim/image.js';
import {UserError} from '../../src/util/errors.js';

function disk(id: string, alias: string): SimDisk {
  return {id, imageId: `${id}-img`, alias, format: 'cow', sparse: true, backup: 'incremental', storageDomainId: 'sd', status: 'ok', image: new SimImage(2 ** 20)};
}

function vm(extra: Partial<SimVm>, ifaces: string[] = ['virtio', 'virtio_scsi']): {ovf: string; disks: SimDisk[]} {
  const disks = ifaces.map((_, i) => disk(`d${i}`, `disk <${i}>`));
  const v: SimVm = {
    id: 'vm-1', name: 'web & db', status: 'down', clusterId: 'c', memory: 2 * 2 ** 30, tags: [], osType: 'rhel_8x64',
    attachments: disks.map((d, i) => ({diskId: d.id, bootable: i === ifaces.length - 1, iface: ifaces[i]!, active: true})),
    cpu: {sockets: 2, cores: 4, threads: 1},
    nics: [{name: 'nic1', mac: '56:6F:1a:2b:3c:01', network: 'ovirtmgmt', type: 3}, {name: 'nic2', mac: '56:6f:1a:2b:3c:02', network: 'dmz', type: 2}],
    ...extra,
  };
  return {ovf: renderOvf(v, disks), disks};
}

describe('readOvfHardware', () => {
  it('reads CPUs, memory, firmware, disks with their interface and boot flag, and NICs from an engine-shaped OVF', () => {
    const hw = readOvfHardware(vm({biosType: 3}).ovf);
    expect(hw).toEqual({
      name: 'web & db', cpu: {sockets: 2, cores: 4, threads: 1}, memoryMiB: 2048, chipset: 'q35', firmware: 'uefi',
      disks: [{diskId: 'd0', bus: 'virtio', boot: false}, {diskId: 'd1', bus: 'scsi', boot: true}],
      nics: [{name: 'nic1', mac: '56:6f:1a:2b:3c:01', model: 'virtio', network: 'ovirtmgmt'}, {name: 'nic2', mac: '56:6f:1a:2b:3c:02', model: 'e1000', network: 'dmz'}],
    });
    expect(readOvfHardware(vm({biosType: 1}).ovf)).toMatchObject({chipset: 'i440fx', firmware: 'bios'});
    expect(readOvfHardware(vm({biosType: 4}).ovf)).toMatchObject({chipset: 'q35', firmware: 'uefi-secure'});
    expect(readOvfHardware(vm({biosType: 0}).ovf)).toMatchObject({chipset: 'q35', firmware: 'bios'});
  });

  it('refuses a hostile or broken OVF with a clear error', () => {
    const {ovf} = vm({});
    const refused = (text: string) => {
      try {
        readOvfHardware(text);
      } catch (err) {
        expect(err).toBeInstanceOf(UserError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refused('not xml <<<')).toMatch(/cannot describe a VM for a libvirt host: it has no OVF Envelope|it is not XML/);
    expect(refused(ovf.replace('<rasd:VirtualQuantity>8</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>99999</rasd:VirtualQuantity>'))).toContain('the vCPU count');
    expect(refused(ovf.replace('<rasd:cpu_per_socket>4</rasd:cpu_per_socket>', '<rasd:cpu_per_socket>3</rasd:cpu_per_socket>'))).toContain('does not give its 8 vCPUs');
    expect(refused(ovf.replace('<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>-1</rasd:VirtualQuantity>'))).toContain('the memory (MB)');
    expect(refused(ovf.replace('ovf:fileRef="d0/', 'ovf:fileRef="../../etc/'))).toContain('names no disk id');
    expect(refused(ovf.replace('<BiosType>2</BiosType>', '<BiosType>9</BiosType>'))).toContain('BiosType');
    // A MAC address that is not one is left out (libvirt then makes one), not passed on.
    expect(readOvfHardware(ovf.replace('56:6F:1a:2b:3c:01', "x'/><evil/>")).nics[0]).toEqual({name: 'nic1', model: 'virtio', network: 'ovirtmgmt'});
  });
});

describe('domainFromOvf', () => {
  it('puts the boot disk first, SCSI disks on a virtio-scsi controller, IDE on SATA for q35, and escapes the name', () => {
    const {ovf, disks} = vm({}, ['virtio', 'ide', 'virtio_scsi']);
    const source = {vmName: 'x', configuration: {kind: 'ovf', text: ovf}, disks: disks.map((d) => ({key: d.id, size: 2 ** 20, format: 'qcow2' as const}))};
    const {xml, targets, uefi} = domainFromOvf(source as never, {kvm: false, nvramPath: '/v/x_VARS.fd'});
    expect(uefi).toBe(false);
    expect([...targets]).toEqual([['d2', 'sda'], ['d0', 'vda'], ['d1', 'sdb']]);
    expect(xml).toContain("<target dev='sda' bus='scsi'/><boot order='1'/>");
    expect(xml).toContain("<target dev='sdb' bus='sata'/>");
    expect(xml).toContain("<controller type='scsi' model='virtio-scsi'/>");
    expect(xml).toContain('<name>web &amp; db</name>');
    expect(xml).toContain("<type arch='x86_64' machine='q35'>hvm</type>");
    expect(xml).not.toContain('<nvram>');
    const efi = domainFromOvf({...source, configuration: {kind: 'ovf', text: vm({biosType: 4}).ovf}} as never, {kvm: true, nvramPath: '/v/x_VARS.fd'});
    expect(efi.xml).toContain("<os firmware='efi'>");
    expect(efi.xml).toContain('<nvram>/v/x_VARS.fd</nvram>');
    expect(efi.xml).toContain("name='secure-boot'");
    expect(efi.xml).toContain("<domain type='kvm'>");
  });
});
