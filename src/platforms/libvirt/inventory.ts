/**
 * Inventory of libvirt hosts: domains (running and shut off), their disks with the real image
 * format, size and bitmaps (`qemu-img info -U`, safe on images in use), and where each VM runs.
 * VMs are identified by their libvirt UUID; names may hold any character, so domains are always
 * addressed by UUID on the virsh command line.
 */
import {ExitCode, UserError} from '../../util/errors.js';
import type {InventoryDisk, InventoryVm} from '../types.js';
import {parseDomainXml, type DomainDisk, type DomainInfo} from './domain-xml.js';
import type {LibvirtHost} from './host.js';
import {imageInfo, trackability, type ImageInfo} from './image-info.js';

export interface DomainDetails {
  host: LibvirtHost;
  xml: string;
  info: DomainInfo;
  state: InventoryVm['state'];
  /** Backup-capable disks with their image info (absent for network disks). */
  disks: {disk: DomainDisk; image?: ImageInfo}[];
}

export function parseDomState(out: string): InventoryVm['state'] {
  const s = out.trim().split('\n')[0]?.trim() ?? '';
  if (s === 'running') return 'running';
  if (s === 'shut off') return 'shutoff';
  if (s === 'paused') return 'paused';
  return 'other';
}

export async function listDomainUuids(host: LibvirtHost): Promise<string[]> {
  const r = await host.virsh(['list', '--all', '--uuid']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function describeDomain(host: LibvirtHost, uuid: string): Promise<DomainDetails> {
  const [xmlR, stateR] = [await host.virsh(['dumpxml', uuid]), await host.virsh(['domstate', uuid])];
  const info = parseDomainXml(xmlR.stdout);
  const disks: DomainDetails['disks'] = [];
  for (const disk of info.disks) {
    if ((disk.type === 'file' || disk.type === 'block') && disk.sourcePath) {
      disks.push({disk, image: await imageInfo(host.runner, disk.sourcePath, {format: disk.driverType})});
    } else {
      disks.push({disk});
    }
  }
  return {host, xml: xmlR.stdout, info, state: parseDomState(stateR.stdout), disks};
}

export function toInventoryVm(d: DomainDetails): InventoryVm {
  return {
    id: d.info.uuid,
    name: d.info.name,
    state: d.state,
    host: d.host.name,
    disks: d.disks.map(({disk, image}) => toInventoryDisk(disk, image)),
  };
}

export function toInventoryDisk(disk: DomainDisk, image: ImageInfo | undefined): InventoryDisk {
  const name = disk.sourcePath ? disk.sourcePath.split('/').pop()! : disk.target;
  if (!image) {
    return {
      key: disk.target,
      name,
      format: disk.driverType ?? 'unknown',
      size: 0,
      trackable: false,
      trackingNote: `${disk.type} disks are not supported for backup (only file and block disks are)`,
      details: {type: disk.type},
    };
  }
  const t = trackability(image);
  return {
    key: disk.target,
    name,
    format: image.format,
    size: image.virtualSize,
    trackable: t.trackable,
    ...(t.note ? {trackingNote: t.note} : {}),
    details: {
      sourcePath: disk.sourcePath,
      type: disk.type,
      bus: disk.bus,
      compat: image.compat,
      bitmaps: image.bitmaps.map((b) => b.name),
    },
  };
}

/** Finds the host a VM is defined on (by UUID). */
export async function locateDomain(hosts: readonly LibvirtHost[], vmId: string): Promise<LibvirtHost> {
  for (const host of hosts) {
    const r = await host.virsh(['domstate', vmId], {allowFailure: true});
    if (r.exitCode === 0) return host;
  }
  throw new UserError(`No VM with id ${vmId} is defined on the configured libvirt hosts (${hosts.map((h) => h.name).join(', ')}).`, {
    hint: 'Refresh the inventory: the VM may have been removed or moved to a host the appliance does not know.',
    exitCode: ExitCode.notFound,
  });
}
