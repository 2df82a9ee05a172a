/**
 * Inventory reads from the engine (docs/reference/ovirt-backup-api.md §3, §1.7): VMs with tags, placement and
 * disks (through disk attachments with follow=disk), and the engine version for feature checks.
 */
import type {InventoryDisk, InventoryVm} from '../types.js';
import type {EngineClient} from './engine-client.js';
import {bool, list, num, obj, refId, str, type Json} from './json.js';

export interface EngineDisk {
  id: string;
  alias: string;
  /** Engine format: cow (qcow2) or raw. */
  format: string;
  sparse: boolean;
  /** Virtual size (provisioned_size). */
  size: number;
  actualSize?: number;
  backup: string;
  backupMode?: string;
  status: string;
  storageType: string;
  shareable: boolean;
  storageDomainId?: string;
}

export interface EngineAttachment {
  diskId: string;
  bootable: boolean;
  iface: string;
  active: boolean;
  /** Discards from the guest reach the storage (restored as it was). */
  passDiscard: boolean;
  disk?: EngineDisk;
}

export interface EngineVersion {
  major: number;
  minor: number;
  build: number;
  full: string;
}

export function parseDisk(j: Json): EngineDisk {
  return {
    id: str(j.id) ?? '',
    alias: str(j.alias) ?? str(j.name) ?? str(j.id) ?? '',
    format: str(j.format) ?? 'raw',
    sparse: bool(j.sparse) ?? true,
    size: num(j.provisioned_size) ?? 0,
    actualSize: num(j.actual_size),
    backup: str(j.backup) ?? 'none',
    backupMode: str(j.backup_mode),
    status: str(j.status) ?? 'ok',
    storageType: str(j.storage_type) ?? 'image',
    shareable: bool(j.shareable) ?? false,
    storageDomainId: refId(list(j.storage_domains, 'storage_domain')[0]),
  };
}

export async function engineVersion(client: EngineClient): Promise<EngineVersion> {
  const v = obj(obj((await client.get('')).product_info).version);
  return {major: num(v.major) ?? 0, minor: num(v.minor) ?? 0, build: num(v.build) ?? 0, full: str(v.full_version) ?? ''};
}

/** A cluster's compatibility level (GET /clusters/{id} version, §1.7); undefined when unknown. */
export async function clusterLevel(client: EngineClient, clusterId: string | undefined): Promise<{major: number; minor: number} | undefined> {
  if (!clusterId) return undefined;
  const c = await client.find(`/clusters/${clusterId}`);
  const v = obj(c?.version);
  const major = num(v.major);
  const minor = num(v.minor);
  return major === undefined || minor === undefined ? undefined : {major, minor};
}

/** Finished backups keep `succeeded`/`failed` and any checkpoint can be removed since 4.4.7 (§4.6, §4.7). */
export function atLeast(v: EngineVersion, major: number, minor: number, build = 0): boolean {
  return v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.build >= build;
}

export async function vmAttachments(client: EngineClient, vmId: string): Promise<EngineAttachment[]> {
  return parseAttachments(await client.get(`/vms/${vmId}/diskattachments`, {follow: 'disk'}));
}

function parseAttachments(res: unknown): EngineAttachment[] {
  return list(res, 'disk_attachment').map((a) => {
    const d = obj(a.disk);
    return {
      diskId: str(a.id) ?? str(d.id) ?? '',
      bootable: bool(a.bootable) ?? false,
      iface: str(a.interface) ?? 'virtio_scsi',
      active: bool(a.active) ?? true,
      passDiscard: bool(a.pass_discard) ?? false,
      disk: d.provisioned_size !== undefined ? parseDisk(d) : undefined,
    };
  });
}

/** Disks a backup can include: image disks, not shareable, plugged (§3, StartVmBackupCommand.getDisks). */
export function isBackupable(a: EngineAttachment): boolean {
  return !!a.disk && a.active && a.disk.storageType === 'image' && !a.disk.shareable;
}

export function inventoryDisk(a: EngineAttachment & {disk: EngineDisk}): InventoryDisk {
  const d = a.disk;
  const trackable = d.format === 'cow' && d.backup === 'incremental';
  return {
    key: d.id,
    name: d.alias,
    format: d.format === 'cow' ? 'qcow2' : d.format,
    size: d.size,
    trackable,
    trackingNote: trackable ? undefined
      : d.format !== 'cow' ? 'RAW disk: read in full on every backup (convert it to QCOW2 to enable incremental backup)'
      : 'incremental backup is not enabled for this disk (Disk → Edit → Enable Incremental Backup)',
    details: {
      engineFormat: d.format, sparse: d.sparse, backup: d.backup, storageDomainId: d.storageDomainId,
      interface: a.iface, bootable: a.bootable, alias: d.alias, passDiscard: a.passDiscard,
    },
  };
}

export function vmState(status: string | undefined): InventoryVm['state'] {
  switch (status) {
    case 'up':
    case 'powering_up':
    case 'reboot_in_progress':
      return 'running';
    case 'down':
      return 'shutoff';
    case 'paused':
    case 'suspended':
      return 'paused';
    default:
      return 'other';
  }
}

export async function listVms(client: EngineClient): Promise<InventoryVm[]> {
  // One call for all VMs with their tags and disks (follow, 4.2+); a VM whose answer lacks the
  // followed attachments is asked for them on its own.
  const [vms, hosts, clusters] = await Promise.all([
    client.get('/vms', {follow: 'tags,disk_attachments.disk'}),
    client.get('/hosts'),
    client.get('/clusters'),
  ]);
  const names = placeNames(hosts, clusters);
  const out: InventoryVm[] = [];
  for (const v of list(vms, 'vm')) {
    const vm = await toInventoryVm(client, v, names);
    if (vm) out.push(vm);
  }
  return out;
}

/**
 * One VM, by id or by name, as the inventory describes it: the calls do not grow with the number
 * of VMs on the engine (a backup of one VM describes that VM). Undefined when there is none.
 */
export async function findVm(client: EngineClient, nameOrId: string): Promise<InventoryVm | undefined> {
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nameOrId);
  const [found, hosts, clusters] = await Promise.all([
    byId ? client.find(`/vms/${nameOrId}`, {follow: 'tags'}) : client.get('/vms', {search: `name=${nameOrId}`, follow: 'tags,disk_attachments.disk'}),
    client.get('/hosts'),
    client.get('/clusters'),
  ]);
  const v = byId ? found : list(found, 'vm').find((x) => str(x.name) === nameOrId);
  if (v) return toInventoryVm(client, v as Json, placeNames(hosts, clusters));
  // The engine's search language may read a name with spaces or wildcards otherwise than meant:
  // before saying "no such VM", look through the list once (only on this miss).
  return byId ? undefined : (await listVms(client)).find((x) => x.name === nameOrId);
}

function placeNames(hosts: unknown, clusters: unknown): {host: Map<string | undefined, string | undefined>; cluster: Map<string | undefined, string | undefined>} {
  return {
    host: new Map(list(hosts, 'host').map((h) => [str(h.id), str(h.name)])),
    cluster: new Map(list(clusters, 'cluster').map((c) => [str(c.id), str(c.name)])),
  };
}

async function toInventoryVm(client: EngineClient, v: Json, names: ReturnType<typeof placeNames>): Promise<InventoryVm | undefined> {
  const id = str(v.id);
  if (!id) return undefined;
  const atts = v.disk_attachments !== undefined ? parseAttachments(v.disk_attachments) : await vmAttachments(client, id);
  const hostId = refId(v.host);
  const clusterId = refId(v.cluster);
  return {
    id,
    name: str(v.name) ?? id,
    state: vmState(str(v.status)),
    host: hostId ? names.host.get(hostId) ?? hostId : undefined,
    cluster: clusterId ? names.cluster.get(clusterId) ?? clusterId : undefined,
    tags: list(v.tags, 'tag').map((t) => str(t.name)).filter((t): t is string => !!t),
    disks: atts.filter(isBackupable).map((a) => inventoryDisk(a as EngineAttachment & {disk: EngineDisk})),
  };
}

export async function getVm(client: EngineClient, vmId: string, allContent = false): Promise<Json | undefined> {
  return client.find(`/vms/${vmId}`, allContent ? {all_content: 'true', follow: 'tags'} : {follow: 'tags'});
}
