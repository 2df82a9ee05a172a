/**
 * A libvirt domain for an oVirt VM (cross-platform instant recovery and restore verification of
 * oVirt restore points on a libvirt host): CPUs, memory, firmware, disks and network interfaces
 * from its OVF (platforms/ovf-hardware.ts), in the devices vdsm would give it — virtio disks and
 * NICs, a virtio-scsi controller for VirtIO_SCSI disks, SATA for IDE on q35 (q35 has no IDE),
 * a VGA adapter, and the guest agent channel every oVirt VM has. The disks' sources are
 * placeholders: rewriteDomainForRestore puts the overlays in by target. Interfaces join the
 * host's libvirt network `default` (the oVirt networks do not exist on a libvirt host).
 */
import type {RestoreSource} from '../types.js';
import {readOvfHardware} from '../ovf-hardware.js';
import {xmlEscape} from './xml.js';

export interface DomainFromOvf {
  xml: string;
  /** The restore point's disk key → the domain's target device. */
  targets: Map<string, string>;
  uefi: boolean;
}

const PREFIX = {virtio: 'vd', scsi: 'sd', sata: 'sd', ide: 'hd'} as const;

function devName(prefix: string, index: number): string {
  // vda … vdz, vdaa … as the kernel names them.
  const letters = (n: number): string => (n < 26 ? String.fromCharCode(97 + n) : letters(Math.floor(n / 26) - 1) + String.fromCharCode(97 + (n % 26)));
  return prefix + letters(index);
}

/**
 * `kvm`: the host has /dev/kvm (else the domain is type 'qemu', emulated); `nvramPath`: where a
 * UEFI VM's variable store is made (from the firmware's template; the caller removes it).
 */
export function domainFromOvf(source: Pick<RestoreSource, 'configuration' | 'disks' | 'vmName'>, o: {kvm: boolean; nvramPath: string}): DomainFromOvf {
  const hw = readOvfHardware(source.configuration?.text ?? '');
  const keys = source.disks.map((d) => d.key);
  // The OVF's disks that the restore point has, in the OVF's order (boot disk first), then any it does not describe.
  const described = hw.disks.filter((d) => keys.includes(d.diskId));
  const rest = keys.filter((k) => !described.some((d) => d.diskId === k)).map((k) => ({diskId: k, bus: 'virtio' as const, boot: false}));
  const ordered = [...described.filter((d) => d.boot), ...described.filter((d) => !d.boot), ...rest];
  const used: Record<string, number> = {};
  const targets = new Map<string, string>();
  const disks: string[] = [];
  let scsi = false;
  for (const [i, d] of ordered.entries()) {
    const bus = d.bus === 'ide' && hw.chipset === 'q35' ? 'sata' : d.bus;
    const prefix = PREFIX[bus];
    const dev = devName(prefix, (used[prefix] = (used[prefix] ?? -1) + 1));
    targets.set(d.diskId, dev);
    if (bus === 'scsi') scsi = true;
    disks.push(
      `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/dev/null'/><target dev='${dev}' bus='${bus}'/>${i === 0 ? "<boot order='1'/>" : ''}</disk>`,
    );
  }
  const uefi = hw.firmware !== 'bios';
  const secure = hw.firmware === 'uefi-secure';
  const nics = hw.nics.map(
    (n) => `<interface type='network'><source network='default'/>${n.mac ? `<mac address='${n.mac}'/>` : ''}<model type='${n.model}'/></interface>`,
  );
  const xml = `<domain type='${o.kvm ? 'kvm' : 'qemu'}'>
  <name>${xmlEscape(hw.name ?? source.vmName)}</name>
  <memory unit='MiB'>${hw.memoryMiB}</memory>
  <vcpu>${hw.cpu.sockets * hw.cpu.cores * hw.cpu.threads}</vcpu>
  <os${uefi ? " firmware='efi'" : ''}><type arch='x86_64' machine='${hw.chipset === 'q35' ? 'q35' : 'pc'}'>hvm</type>${uefi ? `<nvram>${xmlEscape(o.nvramPath)}</nvram>` : ''}${secure ? "<firmware><feature enabled='yes' name='secure-boot'/><feature enabled='yes' name='enrolled-keys'/></firmware><loader secure='yes'/>" : ''}</os>
  <features><acpi/><apic/>${secure ? "<smm state='on'/>" : ''}</features>
  <cpu${o.kvm ? " mode='host-model'" : ''}><topology sockets='${hw.cpu.sockets}' dies='1' cores='${hw.cpu.cores}' threads='${hw.cpu.threads}'/></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    ${[...disks, ...(scsi ? ["<controller type='scsi' model='virtio-scsi'/>"] : []), ...nics].join('\n    ')}
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <video><model type='vga'/></video>
  </devices>
</domain>
`;
  return {xml, targets, uefi};
}
