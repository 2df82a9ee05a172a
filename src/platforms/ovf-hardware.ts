/**
 * The virtual hardware of an oVirt VM, read from the OVF its restore point keeps (the engine's
 * `initialization.configuration.data`), so that a libvirt host can start it (cross-platform
 * instant recovery, libvirt/domain-from-ovf.ts).
 *
 * What the engine writes (oVirt/ovirt-engine, backend/manager/modules/utils/src/main/java/org/
 * ovirt/engine/core/utils/ovf/): OvfWriter.java writeCpu — an Item of ResourceType 3
 * (OvfHardware.CPU) with rasd:num_of_sockets, rasd:cpu_per_socket, rasd:threads_per_cpu and
 * rasd:VirtualQuantity = the vCPU count; writeMemory — ResourceType 4 with rasd:VirtualQuantity in
 * MB; writeNetwork — ResourceType 10 with rasd:ResourceSubType = the VmInterfaceType value
 * (0 rtl8139_pv, 1 rtl8139, 2 e1000, 3 pv = VirtIO; common/businessentities/network/
 * VmInterfaceType.java), rasd:Name, rasd:MACAddress; writeGeneralData — `BiosType` = BiosType's
 * value (0 cluster default, 1 I440FX_SEA_BIOS, 2 Q35_SEA_BIOS, 3 Q35_OVMF, 4 Q35_SECURE_BOOT;
 * common/businessentities/BiosType.java). OvfOvirtWriter.java writeDisk — the DiskSection's
 * `Disk` with ovf:diskId (the image id), ovf:fileRef `<disk id>/<image id>`, ovf:disk-interface
 * (DiskInterface's name: VirtIO, VirtIO_SCSI, SATA, IDE) and ovf:boot.
 *
 * The OVF comes from a repository: hostile until read. Only these fields are taken, each checked
 * (numbers in range, MAC addresses by pattern); names go into XML through a builder that escapes.
 */
import {XMLParser} from 'fast-xml-parser';
import {ExitCode, UserError} from '../util/errors.js';

export interface OvfHardware {
  name?: string;
  cpu: {sockets: number; cores: number; threads: number};
  memoryMiB: number;
  chipset: 'q35' | 'i440fx';
  firmware: 'bios' | 'uefi' | 'uefi-secure';
  /** In the DiskSection's order; diskId is the disk's id (a restore point's disk key), boot its boot flag. */
  disks: {diskId: string; bus: 'virtio' | 'scsi' | 'sata' | 'ide'; boot: boolean}[];
  nics: {name: string; mac?: string; model: 'virtio' | 'e1000' | 'rtl8139'; network?: string}[];
}

const parser = new XMLParser({ignoreAttributes: false, attributeNamePrefix: '@', removeNSPrefix: true, parseTagValue: false, parseAttributeValue: false, isArray: (n) => ['Section', 'Item', 'Disk', 'File', 'Network'].includes(n)});

type Node = Record<string, unknown>;

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (v && typeof v === 'object' && typeof (v as Node)['#text'] === 'string') return ((v as Node)['#text'] as string).trim();
  return undefined;
}

function whole(v: unknown, min: number, max: number, what: string): number {
  const s = text(v);
  const n = s !== undefined && /^\d{1,9}$/.test(s) ? Number(s) : NaN;
  if (!(n >= min && n <= max)) throw bad(`${what} is ${s === undefined ? 'missing' : `'${s.slice(0, 20)}'`}, not a whole number from ${min} to ${max}`);
  return n;
}

function bad(why: string): UserError {
  return new UserError(`The restore point's oVirt configuration (OVF) cannot describe a VM for a libvirt host: ${why}.`, {
    hint: 'Restore the disks to files, or restore the VM to an oVirt engine.',
    exitCode: ExitCode.invalidInput,
  });
}

const BUS: Record<string, OvfHardware['disks'][number]['bus']> = {VirtIO: 'virtio', VirtIO_SCSI: 'scsi', SATA: 'sata', IDE: 'ide', SPAPR_VSCSI: 'scsi'};
const NIC_MODEL: Record<string, OvfHardware['nics'][number]['model']> = {'0': 'virtio', '1': 'rtl8139', '2': 'e1000', '3': 'virtio'};
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const MAX_DEVICES = 64;

export function readOvfHardware(ovf: string): OvfHardware {
  if (ovf.length > 4 * 1024 * 1024) throw bad('it is larger than 4 MiB');
  let doc: Node;
  try {
    doc = parser.parse(ovf) as Node;
  } catch (err) {
    throw bad(`it is not XML (${err instanceof Error ? err.message : String(err)})`);
  }
  const envelope = doc['Envelope'] as Node | undefined;
  if (!envelope || typeof envelope !== 'object') throw bad('it has no OVF Envelope');
  const sections = (envelope['Section'] as Node[] | undefined) ?? [];
  const typeOf = (n: Node) => String(n['@type'] ?? '').replace(/^.*:/, '');
  const content = envelope['Content'] as Node | undefined;
  if (!content || typeof content !== 'object') throw bad('it has no VirtualSystem Content');
  const contentSections = (content['Section'] as Node[] | undefined) ?? [];
  const hardware = contentSections.find((x) => typeOf(x) === 'VirtualHardwareSection_Type');
  if (!hardware) throw bad('it has no VirtualHardwareSection');
  const items = (hardware['Item'] as Node[] | undefined) ?? [];
  const ofType = (t: string) => items.filter((i) => text(i['ResourceType']) === t);

  const cpuItem = ofType('3')[0];
  if (!cpuItem) throw bad('it has no CPU item (ResourceType 3)');
  const vcpus = whole(cpuItem['VirtualQuantity'], 1, 512, 'the vCPU count');
  const cpu =
    cpuItem['num_of_sockets'] !== undefined
      ? {sockets: whole(cpuItem['num_of_sockets'], 1, 512, 'num_of_sockets'), cores: whole(cpuItem['cpu_per_socket'], 1, 512, 'cpu_per_socket'), threads: whole(cpuItem['threads_per_cpu'] ?? '1', 1, 8, 'threads_per_cpu')}
      : {sockets: vcpus, cores: 1, threads: 1};
  if (cpu.sockets * cpu.cores * cpu.threads !== vcpus) throw bad(`its CPU topology (${cpu.sockets}×${cpu.cores}×${cpu.threads}) does not give its ${vcpus} vCPUs`);
  const memItem = ofType('4')[0];
  if (!memItem) throw bad('it has no memory item (ResourceType 4)');
  const memoryMiB = whole(memItem['VirtualQuantity'], 16, 16 * 1024 * 1024, 'the memory (MB)');

  const bios = content['BiosType'] === undefined ? 2 : whole(content['BiosType'], 0, 4, 'BiosType');
  const chipset = bios === 1 ? 'i440fx' : 'q35';
  const firmware = bios === 3 ? 'uefi' : bios === 4 ? 'uefi-secure' : 'bios';

  const diskSection = sections.find((x) => typeOf(x) === 'DiskSection_Type');
  const disks: OvfHardware['disks'] = [];
  for (const d of (diskSection?.['Disk'] as Node[] | undefined) ?? []) {
    const ref = String(d['@fileRef'] ?? '');
    const diskId = ref.split('/')[0] ?? '';
    if (!/^[A-Za-z0-9-]{1,64}$/.test(diskId)) throw bad(`a disk's fileRef '${ref.slice(0, 80)}' names no disk id`);
    const iface = String(d['@disk-interface'] ?? 'VirtIO');
    disks.push({diskId, bus: BUS[iface] ?? 'virtio', boot: String(d['@boot']) === 'true'});
  }
  const nics: OvfHardware['nics'] = ofType('10').map((n, i) => {
    const mac = text(n['MACAddress']);
    const name = text(n['Name']) || `nic${i + 1}`;
    return {name: name.slice(0, 64), ...(mac && MAC.test(mac) ? {mac: mac.toLowerCase()} : {}), model: NIC_MODEL[text(n['ResourceSubType']) ?? '3'] ?? 'virtio', ...(text(n['Connection']) ? {network: text(n['Connection'])!.slice(0, 128)} : {})};
  });
  if (disks.length > MAX_DEVICES || nics.length > MAX_DEVICES) throw bad(`it has more than ${MAX_DEVICES} disks or network interfaces`);
  const name = text(content['Name']);
  return {...(name ? {name: name.slice(0, 255)} : {}), cpu, memoryMiB, chipset, firmware, disks, nics};
}
