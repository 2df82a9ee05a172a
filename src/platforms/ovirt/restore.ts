/**
 * Restores to oVirt (docs/reference/ovirt-backup-api.md §8): new disks on a storage domain, filled by upload
 * image transfers, then a VM imported from the saved OVF under a new name with new ids
 * ('vm'), or the disks attached to an existing VM ('disks-to-vm').
 *
 * Contract:
 * - Every created disk carries the appliance marker in its description (ownership.ts), so
 *   cleanupLeftovers can find uploads a crash left behind; uploads in progress are registered.
 * - For 'vm', a disk whose original id no longer exists on the engine is recreated under that id
 *   so the OVF import attaches it by itself (gotcha 25); otherwise it gets a new id. After the
 *   import the attachments are checked: missing restored disks are attached and anything else
 *   the import attached (an original disk still lying around) is detached again.
 * - finish() flushes and finalizes every upload (waiting for finished_success and disk `ok`),
 *   then creates the VM or attaches the disks. abort() cancels unfinished uploads — which makes
 *   the engine delete their disks (gotcha 2) — and removes disks and the VM created so far.
 */
import {ImageioClient} from '../../transports/imageio/imageio-client.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {assertName} from '../../util/names.js';
import {chooseDisks} from '../targets/choose-disks.js';
import {formatBytes} from '../../util/format.js';
import type {DiskSink, Logger, RestorePlan, RestoreSource, VmRestore, VmRestoreTarget} from '../types.js';
import type {EngineClient} from './engine-client.js';
import {list, num, obj, refId, str, type Json} from './json.js';
import type {Ownership} from './ownership.js';
import {qcow2Required} from './qcow2-measure.js';
import {pollUntil, type PollOptions} from './poll.js';
import {endTransfer, startTransfer, type Transfer} from './transfers.js';

export interface RestoreContext {
  client: EngineClient;
  poll: PollOptions;
  inactivityTimeout: number;
  maxConnections: number;
  ownership: Ownership;
}

type SourceDisk = RestoreSource['disks'][number];

class UploadSink implements DiskSink {
  readonly maxWriteSize = 32 * 2 ** 20;
  finished = false;
  constructor(
    readonly key: string,
    readonly size: number,
    readonly diskId: string,
    readonly transfer: Transfer,
    private readonly io: ImageioClient,
    readonly source: SourceDisk,
    /**
     * The new disk reads as zeros: a disk on file storage, or a qcow2 disk on block storage. A RAW
     * disk on block storage is a preallocated logical volume holding whatever was on the storage
     * before, so its zero ranges must be written (ovirt-imageio client/_api.py upload(), `disk_is_zero`).
     */
    readonly startsZeroed: boolean,
  ) {}

  get maxParallelWrites(): number {
    return Math.max(1, Math.min(this.io.caps.maxWriters, 4));
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.io.write(offset, data);
  }

  zero(offset: number, length: number): Promise<void> {
    return this.io.zero(offset, length);
  }

  async flush(): Promise<void> {
    if (this.io.caps.features.has('flush')) await this.io.flush();
  }

  close(): Promise<void> {
    return this.io.close();
  }
}

interface StorageDomain {
  id: string;
  name: string;
  /** iSCSI or FC: disks are logical volumes (RAW ones only preallocated, qcow2 ones sized by initial_size). */
  block: boolean;
}

const BLOCK_STORAGE = new Set(['iscsi', 'fcp']);

async function resolveStorageDomain(client: EngineClient, wanted: string | undefined, fallback: string | undefined): Promise<StorageDomain> {
  const sds = list(await client.get('/storagedomains'), 'storage_domain').filter((s) => (str(s.type) ?? 'data') === 'data');
  const pick = (sd: Json): StorageDomain => ({
    id: str(sd.id)!, name: str(sd.name) ?? str(sd.id)!, block: BLOCK_STORAGE.has(str(obj(sd.storage).type) ?? ''),
  });
  if (wanted) {
    const sd = sds.find((s) => str(s.id) === wanted || str(s.name) === wanted);
    if (!sd) {
      throw new UserError(`The engine has no data storage domain "${wanted}".`, {
        hint: `Choose one of: ${sds.map((s) => str(s.name)).join(', ') || '(none)'}.`, exitCode: ExitCode.notFound,
      });
    }
    return pick(sd);
  }
  const original = fallback ? sds.find((s) => str(s.id) === fallback) : undefined;
  if (original) return pick(original);
  const best = [...sds].sort((a, b) => (num(b.available) ?? 0) - (num(a.available) ?? 0))[0];
  if (!best) throw new UserError('The engine has no data storage domain to restore to.', {exitCode: ExitCode.notFound});
  return pick(best);
}

/**
 * The disk to create for a restored disk on a storage domain: the original format and allocation
 * where the domain allows them (ImagesHandler.checkImageConfiguration refuses RAW + sparse on
 * block storage, so such a disk becomes preallocated RAW there), and for qcow2 on block storage
 * an initial_size that holds all the data the upload brings (qcow2-measure.ts).
 */
export function diskCreation(d: SourceDisk, sd: StorageDomain): {format: 'cow' | 'raw'; sparse: boolean; initialSize?: number; preallocatedFromThin: boolean} {
  const details = d.details ?? {};
  const format = (str(details.engineFormat) ?? (d.format === 'raw' ? 'raw' : 'cow')) === 'raw' ? 'raw' : 'cow';
  if (format === 'cow') {
    return {format, sparse: true, initialSize: sd.block ? qcow2Required(d.size, d.dataBytes ?? d.size) : undefined, preallocatedFromThin: false};
  }
  const sparse = (details.sparse as boolean | undefined) ?? true;
  return sd.block ? {format, sparse: false, preallocatedFromThin: sparse} : {format, sparse, preallocatedFromThin: false};
}

async function resolveCluster(client: EngineClient, wanted: string | undefined, sourceVmId: string): Promise<string> {
  const clusters = list(await client.get('/clusters'), 'cluster');
  if (wanted) {
    const c = clusters.find((x) => str(x.id) === wanted || str(x.name) === wanted);
    if (!c) {
      throw new UserError(`The engine has no cluster "${wanted}".`, {
        hint: `Choose one of: ${clusters.map((x) => str(x.name)).join(', ')}.`, exitCode: ExitCode.notFound,
      });
    }
    return str(c.id)!;
  }
  const original = await client.find(`/vms/${sourceVmId}`);
  const originalCluster = original ? refId(original.cluster) : undefined;
  if (originalCluster) return originalCluster;
  if (clusters.length === 1) return str(clusters[0]!.id)!;
  throw new UserError('The original VM no longer exists and the engine has several clusters.', {
    hint: 'Name the cluster to restore the VM into.', exitCode: ExitCode.invalidInput,
  });
}

export async function openOvirtRestore(ctx: RestoreContext, source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
  return (await prepareOvirtRestore(ctx, source, target, opts)).open(opts.log);
}

/**
 * A restore prepared: what it will do (`plan`, shown before the administrator confirms) and the
 * executor (`open`). Preparing only reads the engine (names in use, cluster, host, storage
 * domains) and refuses what the restore would refuse; nothing is created before open().
 */
export async function prepareOvirtRestore(
  ctx: RestoreContext,
  source: RestoreSource,
  target: VmRestoreTarget,
  opts: {disks?: string[]},
): Promise<{plan: RestorePlan; open(log: Logger): Promise<VmRestore>}> {
  const {client, poll} = ctx;
  const plan: RestorePlan = {target: '', creates: [], replaces: [], notes: []};
  // A restore point is untrusted input: its disk keys and VM id go into engine URLs below.
  assertName('objectId', source.vmId, `the restore point of ${source.vmName}`);
  for (const d of source.disks) assertName('diskKey', d.key, `the restore point of ${source.vmName}`);
  const disks = chooseDisks(source.disks, opts.disks, `The restore point of ${source.vmName}`);
  let clusterId: string | undefined;
  let hostId: string | undefined;
  let attachTo: string | undefined;
  if (target.mode === 'vm') {
    if (target.overwrite) {
      throw new UserError('Restoring over the original VM is not supported for oVirt yet.', {
        hint: 'Restore under a new name, check it, then remove the original VM in the engine.', exitCode: ExitCode.invalidInput,
      });
    }
    if (!target.name.trim()) throw new UserError('The restored VM needs a name.', {exitCode: ExitCode.invalidInput});
    const clash = list(await client.get('/vms', {search: `name=${target.name}`}), 'vm').filter((v) => str(v.name) === target.name);
    if (clash.length) {
      throw new UserError(`A VM named "${target.name}" already exists on the engine.`, {hint: 'Choose another name for the restored VM.', exitCode: ExitCode.invalidInput});
    }
    clusterId = await resolveCluster(client, target.cluster, source.vmId);
    if (target.host) {
      const hosts = list(await client.get('/hosts'), 'host');
      const h = hosts.find((x) => str(x.id) === target.host || str(x.name) === target.host);
      if (!h) {
        throw new UserError(`The engine has no host "${target.host}".`, {
          hint: `Choose one of: ${hosts.map((x) => str(x.name)).join(', ')}, or leave the host out to let the engine place the VM.`, exitCode: ExitCode.notFound,
        });
      }
      hostId = str(h.id);
    }
    if (source.configuration && source.configuration.kind !== 'ovf') {
      throw new UserError(`The restore point of ${source.vmName} holds a ${source.configuration.kind} configuration, not an oVirt OVF.`, {
        hint: 'Restore its disks to files or to an existing VM instead.', exitCode: ExitCode.invalidInput,
      });
    }
    const clusterName = str(list(await client.get('/clusters'), 'cluster').find((c) => str(c.id) === clusterId)?.name) ?? clusterId;
    plan.target = `a new VM "${target.name}" in cluster ${clusterName}`;
    plan.creates.push(`VM "${target.name}" in cluster ${clusterName}${target.host ? `, preferring host ${target.host}` : ''} (from the backed-up OVF, with new ids)`);
  } else {
    assertName('objectId', target.vmId, 'the restore target');
    const vm = await client.find(`/vms/${target.vmId}`);
    if (!vm) throw new UserError(`The engine has no VM with id ${target.vmId}.`, {hint: 'Choose an existing VM to attach the disks to.', exitCode: ExitCode.notFound});
    attachTo = target.vmId;
    plan.target = `the existing VM "${str(vm.name) ?? target.vmId}"`;
  }

  // Where each disk goes and how it is created (pure, from what the engine said).
  const placed: {d: SourceDisk; sd: StorageDomain; how: ReturnType<typeof diskCreation>}[] = [];
  for (const d of disks) {
    const sd = await resolveStorageDomain(client, target.storage, str((d.details ?? {}).storageDomainId));
    const how = diskCreation(d, sd);
    placed.push({d, sd, how});
    const alias = str((d.details ?? {}).alias) ?? d.name;
    plan.creates.push(`disk "${alias}": ${how.format === 'cow' ? 'qcow2' : 'raw'}, ${how.sparse ? 'thin' : 'preallocated'}, ${formatBytes(d.size)} on storage domain ${sd.name}${target.mode === 'disks-to-vm' ? ', attached' : ''}`);
    if (how.preallocatedFromThin) plan.notes.push(`disk "${alias}" was thin RAW; block storage domain ${sd.name} holds RAW disks only preallocated, so it is restored preallocated`);
  }
  const execute = async (log: Logger): Promise<VmRestore> => {

  const sinks: UploadSink[] = [];
  const createdDisks: string[] = [];
  let createdVm: string | undefined;

  const abort = async () => {
    for (const s of sinks) {
      await s.close().catch(() => undefined);
      if (!s.finished) await endTransfer(client, s.transfer.id, 'cancel', poll).catch(() => undefined);
      ctx.ownership.activeTransfers.delete(s.transfer.id);
    }
    if (createdVm) await client.delete(`/vms/${createdVm}`, {detach_only: 'true'}).catch(() => undefined);
    for (const id of createdDisks) {
      await pollUntil(`restored disk ${id} to be removed`, poll, async () => {
        const d = await client.find(`/disks/${id}`);
        if (!d) return true;
        if (str(d.status) === 'locked') return undefined;
        await client.delete(`/disks/${id}`).catch(() => undefined);
        return undefined;
      }).catch(() => undefined);
    }
  };

  try {
    for (const {d, sd, how} of placed) {
      const details = d.details ?? {};
      if (how.preallocatedFromThin) {
        log({severity: 'info', code: 'restore-preallocated', vm: source.vmName, disk: d.name,
          message: `disk ${d.name} was thin RAW; block storage domain ${sd.name} holds RAW disks only preallocated, so it is restored preallocated (${d.size} bytes)`});
      }
      const body: Json = {
        alias: str(details.alias) ?? d.name,
        description: ctx.ownership.describe(`restore of ${source.vmName} disk ${d.key}`),
        format: how.format,
        sparse: how.sparse,
        provisioned_size: d.size,
        ...(how.initialSize !== undefined ? {initial_size: how.initialSize} : {}),
        content_type: 'data',
        storage_domains: {storage_domain: [{id: sd.id}]},
        ...(how.format === 'cow' && details.backup === 'incremental' ? {backup: 'incremental'} : {}),
      };
      if (target.mode === 'vm' && !(await client.find(`/disks/${d.key}`))) body.id = d.key;
      const {body: created, correlationId} = await client.change('POST', '/disks', body);
      const diskId = str(created.id)!;
      createdDisks.push(diskId);
      await pollUntil(`new disk ${diskId} to be ready`, poll, async () => (str((await client.get(`/disks/${diskId}`)).status) === 'ok' ? true : undefined));
      // `ok` comes before the command that made the disk ends and releases its lock (§8.1).
      await client.waitForJobs(correlationId, `creating disk ${diskId}`, poll);
      const transfer = await startTransfer(client, {diskId, direction: 'upload', inactivityTimeout: ctx.inactivityTimeout}, poll);
      ctx.ownership.activeTransfers.add(transfer.id);
      let io: ImageioClient;
      try {
        io = await ImageioClient.open({transferUrl: transfer.transferUrl, proxyUrl: transfer.proxyUrl, caPem: client.caPem, maxConnections: ctx.maxConnections});
      } catch (err) {
        await endTransfer(client, transfer.id, 'cancel', poll).catch(() => undefined);
        throw err;
      }
      sinks.push(new UploadSink(d.key, d.size, diskId, transfer, io, d, !sd.block || how.format === 'cow'));
    }
  } catch (err) {
    await abort();
    throw err;
  }

  return {
    sinks,
    abort,
    async finish() {
      for (const s of sinks) {
        await s.flush();
        await s.close();
        const phase = await endTransfer(client, s.transfer.id, 'finalize', poll);
        if (phase === 'finished_failure') {
          throw new UserError(`The engine rejected the uploaded data of disk ${s.key} (transfer ended in failure).`, {
            hint: 'See the engine events; the disk was removed by the engine. Run the restore again.', exitCode: ExitCode.platformFailed,
          });
        }
        s.finished = true;
        ctx.ownership.activeTransfers.delete(s.transfer.id);
        await pollUntil(`restored disk ${s.diskId} to be ready`, poll, async () => {
          const d = await client.find(`/disks/${s.diskId}`);
          if (!d) throw new UserError(`The engine removed restored disk ${s.diskId}.`, {exitCode: ExitCode.platformFailed});
          return str(d.status) === 'ok' ? true : undefined;
        });
      }
      if (target.mode === 'vm') {
        const ovf = source.configuration?.text;
        const vmBody: Json = ovf
          ? {name: target.name, cluster: {id: clusterId}, initialization: {configuration: {type: 'ovf', data: ovf}, regenerate_ids: true}}
          : {name: target.name, cluster: {id: clusterId}, template: {name: 'Blank'}};
        // Placement: the VM prefers the chosen host when it is started (it is created Down).
        if (hostId) vmBody.placement_policy = {affinity: 'migratable', hosts: {host: [{id: hostId}]}};
        const vm = await client.post('/vms', vmBody);
        createdVm = str(vm.id)!;
        attachTo = createdVm;
        // The import attaches OVF disks by id on its own; detach anything that is not ours.
        const ours = new Set(sinks.map((s) => s.diskId));
        const atts = list(await client.get(`/vms/${createdVm}/diskattachments`), 'disk_attachment');
        for (const a of atts) {
          const id = str(a.id) ?? refId(a.disk);
          if (id && !ours.has(id)) await client.delete(`/vms/${createdVm}/diskattachments/${id}`, {detach_only: 'true'});
        }
      }
      const attached = new Set(list(await client.get(`/vms/${attachTo}/diskattachments`), 'disk_attachment').map((a) => str(a.id) ?? refId(a.disk)));
      for (const s of sinks) {
        if (attached.has(s.diskId)) continue;
        const details = s.source.details ?? {};
        await client.post(`/vms/${attachTo}/diskattachments`, {
          disk: {id: s.diskId},
          bootable: target.mode === 'vm' ? details.bootable === true : false,
          interface: str(details.interface) ?? 'virtio_scsi',
          active: true,
          pass_discard: details.passDiscard === true,
        });
      }
      const vmName = target.mode === 'vm' ? target.name : str(obj(await client.get(`/vms/${attachTo}`)).name);
      return {vmId: attachTo, vmName};
    },
  };
  };
  return {plan, open: execute};
}
