/**
 * JSON views of the simulator's entities, in the engine's JSON shape (docs/reference/ovirt-backup-api.md §1.3,
 * gotcha 22): flat objects with id/href, nested lists wrapped by a singular key
 * ("disks": {"disk": [...]}), collections as {"vm": [...]} and an empty collection as {},
 * dates as epoch milliseconds, null fields omitted. With `legacyJson` numbers and booleans
 * become strings, as older (Jackson 1) engines sent them.
 */
import type {SimBackup, SimCheckpoint, SimCluster, SimDisk, SimEvent, SimHost, SimJob, SimState, SimStorageDomain, SimTransfer, SimVm} from './state.js';

export const API = '/ovirt-engine/api';
type J = Record<string, unknown>;

export function collection(key: string, items: J[]): J {
  return items.length ? {[key]: items} : {};
}

/** Drops undefined fields and, for legacy engines, stringifies numbers and booleans. */
export function finish(v: unknown, legacy: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => finish(x, legacy));
  if (v && typeof v === 'object') {
    const out: J = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = finish(x, legacy);
    return out;
  }
  if (legacy && (typeof v === 'number' || typeof v === 'boolean')) return String(v);
  return v;
}

const ref = (kind: string, id: string | undefined) => (id ? {href: `${API}/${kind}/${id}`, id} : undefined);

export function clusterJson(c: SimCluster): J {
  return {...ref('clusters', c.id), name: c.name, version: c.version, data_center: ref('datacenters', c.dataCenterId)};
}

export function hostJson(h: SimHost): J {
  return {...ref('hosts', h.id), name: h.name, address: h.address, status: h.status, cluster: ref('clusters', h.clusterId)};
}

export function storageDomainJson(s: SimStorageDomain): J {
  return {...ref('storagedomains', s.id), name: s.name, type: 'data', available: s.available, used: s.used, committed: s.used,
    storage: {type: s.storageType}, status: 'active', external_status: 'ok'};
}

export function diskJson(d: SimDisk): J {
  let data = 0;
  for (const b of d.image.blocks.values()) if (b !== 'zero') data += b.length;
  return {
    ...ref('disks', d.id), name: d.alias, alias: d.alias, description: d.description, image_id: d.imageId, format: d.format, sparse: d.sparse,
    provisioned_size: d.image.size, actual_size: d.allocation ?? data, total_size: d.allocation ?? data, initial_size: d.initialSize, backup: d.backup, backup_mode: d.backupMode,
    status: d.status, storage_type: 'image', shareable: false, content_type: 'data', qcow_version: d.format === 'cow' ? 'qcow2_v3' : undefined,
    storage_domains: {storage_domain: [ref('storagedomains', d.storageDomainId)]},
  };
}

export function attachmentJson(vm: SimVm, a: SimVm['attachments'][number], state: SimState, follow: boolean): J {
  const disk = state.disks.get(a.diskId);
  return {
    href: `${API}/vms/${vm.id}/diskattachments/${a.diskId}`, id: a.diskId, active: a.active, bootable: a.bootable,
    interface: a.iface, pass_discard: a.passDiscard ?? false, read_only: false, uses_scsi_reservation: false,
    disk: follow && disk ? diskJson(disk) : ref('disks', a.diskId), vm: ref('vms', vm.id),
  };
}

export function vmJson(vm: SimVm, state: SimState, opts: {ovf?: string; followTags?: boolean; followDisks?: boolean; followBackups?: boolean} = {}): J {
  return {
    ...ref('vms', vm.id), name: vm.name, status: vm.status, memory: vm.memory, type: 'server',
    cluster: ref('clusters', vm.clusterId), host: vm.status === 'up' ? ref('hosts', vm.hostId) : undefined,
    os: {type: vm.osType}, cpu: {topology: {sockets: 1, cores: 1, threads: 1}},
    initialization: opts.ovf ? {configuration: {type: 'ovf', data: opts.ovf}} : undefined,
    tags: opts.followTags ? collection('tag', vm.tags.map((t) => tagJson(t))) : undefined,
    // follow=disk_attachments.disk (4.2+, §1.6): attachments inline, each with its full disk.
    disk_attachments: opts.followDisks ? collection('disk_attachment', vm.attachments.map((a) => attachmentJson(vm, a, state, true))) : undefined,
    // follow=backups: the VM's backups inline, like any followed link.
    backups: opts.followBackups ? collection('backup', [...state.backups.values()].filter((b) => b.vmId === vm.id).map(backupJson)) : undefined,
    link: [
      {href: `${API}/vms/${vm.id}/diskattachments`, rel: 'diskattachments'},
      {href: `${API}/vms/${vm.id}/backups`, rel: 'backups'},
      {href: `${API}/vms/${vm.id}/checkpoints`, rel: 'checkpoints'},
      {href: `${API}/vms/${vm.id}/tags`, rel: 'tags'},
    ],
  };
}

export function tagJson(name: string): J {
  const id = Buffer.from(name).toString('hex').padEnd(32, '0').slice(0, 32);
  return {href: `${API}/tags/${id}`, id, name};
}

export function backupJson(b: SimBackup): J {
  return {
    href: `${API}/vms/${b.vmId}/backups/${b.id}`, id: b.id,
    actions: {link: [{href: `${API}/vms/${b.vmId}/backups/${b.id}/finalize`, rel: 'finalize'}]},
    link: [{href: `${API}/vms/${b.vmId}/backups/${b.id}/disks`, rel: 'disks'}],
    creation_date: b.created, modification_date: b.modified, description: b.description,
    from_checkpoint_id: b.fromCheckpointId, to_checkpoint_id: b.toCheckpointId, phase: b.phase,
    host: ref('hosts', b.hostId), vm: ref('vms', b.vmId),
  };
}

export function checkpointJson(c: SimCheckpoint): J {
  return {
    href: `${API}/vms/${c.vmId}/checkpoints/${c.id}`, id: c.id, link: [{href: `${API}/vms/${c.vmId}/checkpoints/${c.id}/disks`, rel: 'disks'}],
    creation_date: c.created, parent_id: c.parentId, state: c.state, description: c.description, vm: ref('vms', c.vmId),
  };
}

export function transferJson(t: SimTransfer, urls: {daemon: string; proxy: string}): J {
  const ticket = t.phase === 'transferring' ? t.ticket : undefined;
  return {
    ...ref('imagetransfers', t.id),
    actions: {link: ['cancel', 'extend', 'finalize', 'pause', 'resume'].map((a) => ({href: `${API}/imagetransfers/${t.id}/${a}`, rel: a}))},
    active: (ticket?.ongoing ?? 0) > 0, direction: t.direction, format: t.format, inactivity_timeout: t.inactivityTimeout,
    phase: t.phase, shallow: false, timeout_policy: t.timeoutPolicy, transferred: t.transferred,
    // §5.3: the URLs exist only while transferring and carry the ticket uuid, not the transfer id.
    proxy_url: ticket ? `${urls.proxy}/images/${ticket.uuid}` : undefined,
    transfer_url: ticket ? `${urls.daemon}/images/${ticket.uuid}` : undefined,
    host: ref('hosts', t.hostId), image: {id: t.diskId},
  };
}

export function jobJson(j: SimJob): J {
  return {
    ...ref('jobs', j.id), description: j.description, status: j.status, external: false, auto_cleared: true,
    start_time: j.start, end_time: j.end, last_updated: j.end ?? j.start,
  };
}

export function eventJson(e: SimEvent): J {
  return {
    ...ref('events', String(e.id)), code: e.code, severity: e.severity, description: e.description, time: e.time,
    correlation_id: e.correlationId, origin: 'oVirt', vm: ref('vms', e.vmId),
  };
}
