/**
 * Reads what the backup needs from a libvirt domain XML (`virsh dumpxml`): name, UUID and the
 * disks that can be backed up. CD-ROMs, floppies and LUN passthrough are not disks we back up;
 * network disks (RBD) are listed but cannot be read through a pull job's file/block export.
 */
import {UserError, ExitCode} from '../../util/errors.js';
import {attr, child, children, parseXml, text} from './xml.js';

export interface DomainDisk {
  /** <target dev>: vda, sdb. The stable disk key. */
  target: string;
  /** <disk type>: file, block, network, volume. */
  type: string;
  /** The image path (file) or device (block); undefined for network disks. */
  sourcePath?: string;
  /** <driver type>: qcow2, raw. */
  driverType?: string;
  bus?: string;
  /** The qdev alias of a running domain (virtio-disk0), used for HMP in tests. */
  alias?: string;
  readonly: boolean;
}

/** The UEFI variable store of a domain (`<os><nvram>`), when it has one. */
export interface DomainNvram {
  /** The varstore file on the host; undefined when libvirt has not assigned one yet or it is not a file. */
  path?: string;
  /** `<nvram template>`: the firmware's pristine varstore that libvirt copies for a new VM. */
  template?: string;
  /** `<nvram type>` (libvirt >= 8.5): 'file' (or absent) for a file, 'block' or 'network' otherwise. */
  type?: string;
}

export interface DomainInfo {
  name: string;
  uuid: string;
  disks: DomainDisk[];
  nvram?: DomainNvram;
  /** The domain has an emulated TPM (`<tpm><backend type='emulator'>`): its state lives in swtpm's directory. */
  tpmEmulator: boolean;
}

export function parseDomainXml(xml: string): DomainInfo {
  const doc = parseXml(xml);
  const domain = child(doc, 'domain');
  const name = text(domain?.['name']);
  const uuid = text(domain?.['uuid']);
  if (!domain || !name || !uuid) {
    throw new UserError('The domain XML from libvirt has no <name> or <uuid>.', {exitCode: ExitCode.platformFailed});
  }
  const disks: DomainDisk[] = [];
  for (const d of children(child(domain, 'devices'), 'disk')) {
    const device = attr(d, 'device') ?? 'disk';
    if (device !== 'disk') continue;
    const target = attr(child(d, 'target'), 'dev');
    if (!target) continue;
    const source = child(d, 'source');
    const type = attr(d, 'type') ?? 'file';
    disks.push({
      target,
      type,
      sourcePath: attr(source, 'file') ?? attr(source, 'dev'),
      driverType: attr(child(d, 'driver'), 'type'),
      bus: attr(child(d, 'target'), 'bus'),
      alias: attr(children(d, 'alias')[0], 'name'),
      readonly: child(d, 'readonly') !== undefined || d['readonly'] === '',
    });
  }
  const os = child(domain, 'os');
  const nvramNode = os?.['nvram'];
  let nvram: DomainNvram | undefined;
  if (nvramNode !== undefined) {
    // Either <nvram template='...'>/path</nvram>, an empty <nvram/>, or (libvirt >= 8.5) <nvram type='file'><source file='/path'/></nvram>.
    const type = attr(nvramNode, 'type');
    const path = text(nvramNode) || attr(child(nvramNode, 'source'), 'file') || undefined;
    nvram = {
      ...(path && (type === undefined || type === 'file') ? {path} : {}),
      ...(attr(nvramNode, 'template') ? {template: attr(nvramNode, 'template')} : {}),
      ...(type ? {type} : {}),
    };
  }
  const tpmEmulator = children(child(domain, 'devices'), 'tpm').some((t) => attr(child(t, 'backend'), 'type') === 'emulator');
  return {name, uuid, disks, ...(nvram ? {nvram} : {}), tpmEmulator};
}
