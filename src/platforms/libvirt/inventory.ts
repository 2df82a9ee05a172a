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
  /** Backup-capable disks with their image info (absent for network disks; `unreadable` says why it could not be read, when listing tolerates that). */
  disks: {disk: DomainDisk; image?: ImageInfo; unreadable?: string}[];
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

/**
 * `tolerant` (listing): a disk image that cannot be read marks that disk (not trackable, and why)
 * instead of failing the description — one VM with a missing image must not hide the others.
 */
export async function describeDomain(host: LibvirtHost, uuid: string, o: {tolerant?: boolean} = {}): Promise<DomainDetails> {
  // Independent reads: one virsh round trip of time instead of two.
  const [xmlR, stateR] = await Promise.all([host.virsh(['dumpxml', uuid]), host.virsh(['domstate', uuid])]);
  return withImages(host, xmlR.stdout, stateR.stdout, o.tolerant ?? false);
}

/** The domain's details from its XML and `virsh domstate` output: `qemu-img info` of every disk, in parallel. */
async function withImages(host: LibvirtHost, xml: string, domstate: string, tolerant = false): Promise<DomainDetails> {
  const info = parseDomainXml(xml);
  const disks: DomainDetails['disks'] = await Promise.all(
    info.disks.map(async (disk) => {
      if ((disk.type !== 'file' && disk.type !== 'block') || !disk.sourcePath) return {disk};
      try {
        return {disk, image: await imageInfo(host.runner, disk.sourcePath, {format: disk.driverType})};
      } catch (err) {
        if (!tolerant) throw err;
        return {disk, unreadable: err instanceof Error ? err.message : String(err)};
      }
    }),
  );
  return {host, xml, info, state: parseDomState(domstate), disks};
}

/**
 * locateDomain + describeDomain + `virsh dumpxml --inactive` (what a backup starts with), with the
 * independent reads run together: with one host, state, live and inactive XML in one round trip
 * (a VM that is not there fails all three; the state's failure says so); with several, the
 * state first on each host in turn, as locateDomain does.
 */
export async function findDomainForBackup(hosts: readonly LibvirtHost[], vmId: string): Promise<{details: DomainDetails; inactiveXml: string}> {
  const host = hosts.length === 1 ? hosts[0]! : await locateDomain(hosts, vmId);
  const [stateR, xmlR, inactiveR] = await Promise.all([
    host.virsh(['domstate', vmId], {allowFailure: true}),
    host.virsh(['dumpxml', vmId], {allowFailure: true}),
    host.virsh(['dumpxml', vmId, '--inactive'], {allowFailure: true}),
  ]);
  if (stateR.exitCode !== 0) throw notDefined(hosts, vmId);
  // Undefined between the calls, or another failure: the plain calls fail again with virsh's own message.
  const xml = xmlR.exitCode === 0 ? xmlR.stdout : (await host.virsh(['dumpxml', vmId])).stdout;
  const inactiveXml = inactiveR.exitCode === 0 ? inactiveR.stdout : (await host.virsh(['dumpxml', vmId, '--inactive'])).stdout;
  return {details: await withImages(host, xml, stateR.stdout), inactiveXml};
}

export function toInventoryVm(d: DomainDetails): InventoryVm {
  return {
    id: d.info.uuid,
    name: d.info.name,
    state: d.state,
    host: d.host.name,
    disks: d.disks.map(({disk, image, unreadable}) => toInventoryDisk(disk, image, unreadable)),
  };
}

export function toInventoryDisk(disk: DomainDisk, image: ImageInfo | undefined, unreadable?: string): InventoryDisk {
  const name = disk.sourcePath ? disk.sourcePath.split('/').pop()! : disk.target;
  if (!image && unreadable) {
    return {key: disk.target, name, format: disk.driverType ?? 'unknown', size: 0, trackable: false, trackingNote: `its image cannot be read: ${unreadable.split('\n')[0]}`, details: {type: disk.type}};
  }
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
  throw notDefined(hosts, vmId);
}

function notDefined(hosts: readonly LibvirtHost[], vmId: string): UserError {
  return new UserError(`No VM with id ${vmId} is defined on the configured libvirt hosts (${hosts.map((h) => h.name).join(', ')}).`, {
    hint: 'Refresh the inventory: the VM may have been removed or moved to a host the appliance does not know.',
    exitCode: ExitCode.notFound,
  });
}
