/**
 * A small OVF in the shape the engine emits for `GET /vms/{id}?all_content=true`
 * (initialization.configuration.data), and the parts the simulator reads back on import
 * (POST /vms with a configuration, docs/reference/ovirt-backup-api.md §8.3): the disk ids in the
 * `ovf:fileRef="<disk id>/<image id>"` references, the name, and the memory.
 *
 * What it writes follows the engine's writer (oVirt/ovirt-engine,
 * backend/manager/modules/utils/src/main/java/org/ovirt/engine/core/utils/ovf/OvfWriter.java and
 * OvfOvirtWriter.java; resource types from OvfHardware.java): the DiskSection's `Disk` attributes
 * (writeDisk: diskId = image id, fileRef, volume-format, disk-interface = DiskInterface's name,
 * boot); in the VirtualSystem `Content` the general data with `BiosType` (BiosType's value); the
 * hardware section's CPU item (ResourceType 3: num_of_sockets, cpu_per_socket, threads_per_cpu,
 * VirtualQuantity = the vCPU count), memory item (ResourceType 4, AllocationUnits MegaBytes,
 * VirtualQuantity in MB), one disk item per image (ResourceType 17, HostResource
 * `<disk id>/<image id>`) and one network item per interface (writeNetwork: ResourceType 10,
 * ResourceSubType = the VmInterfaceType value, Connection = network, Name, MACAddress).
 */
import type {SimDisk, SimVm} from './state.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** DiskInterface's names, as OvfOvirtWriter.writeDisk writes them (dve.getDiskInterface().toString()). */
const DISK_INTERFACE: Record<string, string> = {virtio: 'VirtIO', virtio_scsi: 'VirtIO_SCSI', ide: 'IDE', sata: 'SATA'};

export function renderOvf(vm: SimVm, disks: SimDisk[]): string {
  const refs = disks.map((d) => `<File ovf:href="${d.id}/${d.imageId}" ovf:id="${d.imageId}" ovf:size="${d.image.size}" ovf:description="${esc(d.alias)}" ovf:disk_storage_type="IMAGE" ovf:cinder_volume_type=""></File>`).join('');
  const diskSection = disks.map((d) => {
    const a = vm.attachments.find((x) => x.diskId === d.id);
    const gib = Math.ceil(d.image.size / 2 ** 30);
    return `<Disk ovf:diskId="${d.imageId}" ovf:size="${gib}" ovf:actual_size="0" ovf:vm_snapshot_id="" ovf:parentRef="" ovf:fileRef="${d.id}/${d.imageId}" ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse" ovf:volume-format="${d.format === 'cow' ? 'COW' : 'RAW'}" ovf:volume-type="${d.sparse ? 'Sparse' : 'Preallocated'}" ovf:disk-interface="${DISK_INTERFACE[a?.iface ?? ''] ?? 'VirtIO_SCSI'}" ovf:read-only="false" ovf:shareable="false" ovf:boot="${a?.bootable ?? false}" ovf:pass-discard="${a?.passDiscard ?? false}" ovf:incremental-backup="${d.backup === 'incremental'}" ovf:disk-alias="${esc(d.alias)}" ovf:disk-description="" ovf:wipe-after-delete="false"></Disk>`;
  }).join('');
  const cpu = vm.cpu ?? {sockets: 1, cores: 1, threads: 1};
  const vcpus = cpu.sockets * cpu.cores * cpu.threads;
  const mb = vm.memory / 2 ** 20;
  const nics = vm.nics ?? [];
  const items = [
    `<Item><rasd:Caption>${vcpus} virtual cpu</rasd:Caption><rasd:Description>Number of virtual CPU</rasd:Description><rasd:InstanceId>1</rasd:InstanceId><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>${cpu.sockets}</rasd:num_of_sockets><rasd:cpu_per_socket>${cpu.cores}</rasd:cpu_per_socket><rasd:threads_per_cpu>${cpu.threads}</rasd:threads_per_cpu><rasd:max_num_of_vcpus>${Math.max(16, vcpus)}</rasd:max_num_of_vcpus><rasd:VirtualQuantity>${vcpus}</rasd:VirtualQuantity></Item>`,
    `<Item><rasd:Caption>${mb} MB of memory</rasd:Caption><rasd:Description>Memory Size</rasd:Description><rasd:InstanceId>2</rasd:InstanceId><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>${mb}</rasd:VirtualQuantity></Item>`,
    ...disks.map((d) => `<Item><rasd:Caption>${esc(d.alias)}</rasd:Caption><rasd:InstanceId>${d.imageId}</rasd:InstanceId><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>${d.id}/${d.imageId}</rasd:HostResource><rasd:Parent>00000000-0000-0000-0000-000000000000</rasd:Parent></Item>`),
    ...nics.map((n, i) => `<Item><rasd:Caption>Ethernet adapter on ${esc(n.network)}</rasd:Caption><rasd:InstanceId>${i + 3}</rasd:InstanceId><rasd:ResourceType>10</rasd:ResourceType><rasd:OtherResourceType>${esc(n.network)}</rasd:OtherResourceType><rasd:ResourceSubType>${n.type}</rasd:ResourceSubType><rasd:Connection>${esc(n.network)}</rasd:Connection><rasd:Linked>true</rasd:Linked><rasd:Name>${esc(n.name)}</rasd:Name><rasd:ElementName>${esc(n.name)}</rasd:ElementName><rasd:MACAddress>${n.mac}</rasd:MACAddress><rasd:speed>10000</rasd:speed></Item>`),
  ].join('');
  return `<?xml version='1.0' encoding='UTF-8'?>`
    + `<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="4.4.0.0">`
    + `<References>${refs}</References>`
    + `<Section xsi:type="ovf:NetworkSection_Type"><Info>List of networks</Info>${[...new Set(nics.map((n) => n.network))].map((n) => `<Network ovf:name="${esc(n)}"></Network>`).join('')}</Section>`
    + `<Section xsi:type="ovf:DiskSection_Type"><Info>List of Virtual Disks</Info>${diskSection}</Section>`
    + `<Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type"><Name>${esc(vm.name)}</Name><TemplateId>00000000-0000-0000-0000-000000000000</TemplateId><BiosType>${vm.biosType ?? 2}</BiosType>`
    + `<Section ovf:id="${vm.id}" ovf:required="false" xsi:type="ovf:OperatingSystemSection_Type"><Info>Guest Operating System</Info><Description>${esc(vm.osType)}</Description></Section>`
    + `<Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>${vcpus} CPU, ${mb} Memory</Info>${items}`
    + `</Section></Content></ovf:Envelope>`;
}

export interface ParsedOvf {
  name?: string;
  vmId?: string;
  memory?: number;
  diskIds: string[];
  /** Attachment properties per disk id, from the DiskSection. */
  attach: Map<string, {bootable: boolean; iface: string}>;
  osType?: string;
}

export function parseOvf(text: string): ParsedOvf {
  if (!text.includes('<ovf:Envelope')) throw new Error('not an OVF envelope');
  const diskIds = [...text.matchAll(/ovf:fileRef="([^"/]+)\//g)].map((m) => m[1]!);
  const name = /<Content[^>]*>\s*<Name>([^<]*)<\/Name>/.exec(text)?.[1];
  const vmId = /<Section ovf:id="([^"]+)"/.exec(text)?.[1];
  const mem = /<rasd:ResourceType>4<\/rasd:ResourceType>(?:<rasd:AllocationUnits>MegaBytes<\/rasd:AllocationUnits>)?<rasd:VirtualQuantity>(\d+)</.exec(text)?.[1];
  const osType = /OperatingSystemSection_Type"><Info>[^<]*<\/Info><Description>([^<]*)</.exec(text)?.[1];
  const unesc = (s: string) => s.replace(/&quot;/g, '"').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&');
  const attach = new Map<string, {bootable: boolean; iface: string}>();
  for (const m of text.matchAll(/<Disk [^>]*>/g)) {
    const id = /ovf:fileRef="([^"/]+)\//.exec(m[0])?.[1];
    if (!id) continue;
    const iface = /ovf:disk-interface="([^"]*)"/.exec(m[0])?.[1];
    attach.set(id, {bootable: /ovf:boot="true"/.test(m[0]), iface: iface === 'VirtIO' ? 'virtio' : iface === 'IDE' ? 'ide' : 'virtio_scsi'});
  }
  return {name: name === undefined ? undefined : unesc(name), vmId, memory: mem ? Number(mem) * 2 ** 20 : undefined, diskIds: [...new Set(diskIds)], attach, osType};
}
