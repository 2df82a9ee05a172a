/**
 * The simulated engine's state and its rules (docs/reference/ovirt-backup-api.md §4, §5, §8, §11).
 *
 * Pure bookkeeping, no HTTP: the API layer (engine-api.ts) turns requests into calls here and
 * SimFault exceptions into the engine's fault replies. Phase changes that take time on a real
 * engine run on timers of `delayMs` so that clients must poll.
 */
import {randomUUID} from 'node:crypto';
import {SimImage} from './image.js';

export class SimFault extends Error {
  constructor(readonly status: number, readonly detail: string, readonly reason = 'Operation Failed') {
    super(detail);
  }
}

export interface SimDataCenter {id: string; name: string}
export interface SimCluster {
  id: string; name: string; dataCenterId: string; version: {major: number; minor: number};
  /** engine-config IsIncrementalBackupSupported for the cluster's level (default: level ≥ 4.5, config.sql). */
  incrementalBackup?: boolean;
  /** engine-config UseHybridBackup for the cluster's level (default: level ≥ 4.7). */
  hybridBackup?: boolean;
}

const levelAtLeast = (v: {major: number; minor: number}, major: number, minor: number) => v.major > major || (v.major === major && v.minor >= minor);
export interface SimHost {id: string; name: string; address: string; clusterId: string; status: 'up' | 'maintenance'}
export interface SimStorageDomain {id: string; name: string; available: number; used: number; storageType: string}
export interface SimAttachment {diskId: string; bootable: boolean; iface: string; active: boolean; passDiscard?: boolean}
export interface SimVm {
  id: string;
  name: string;
  status: 'up' | 'down';
  clusterId: string;
  hostId?: string;
  memory: number;
  tags: string[];
  attachments: SimAttachment[];
  osType: string;
  /** CPU topology (default 1 socket × 1 core × 1 thread). */
  cpu?: {sockets: number; cores: number; threads: number};
  /** The engine's BiosType value: 0 cluster default, 1 i440fx SeaBIOS, 2 Q35 SeaBIOS, 3 Q35 OVMF, 4 Q35 secure boot (default 2). */
  biosType?: number;
  /** Network interfaces (type = VmInterfaceType value: 3 VirtIO, 2 e1000, 1 rtl8139). */
  nics?: {name: string; mac: string; network: string; type: number}[];
  /** qemu-guest-agent answers (default true): without it a live backup cannot freeze the guest. */
  guestAgent?: boolean;
}

/** An audit log entry (GET /events): what an administrator reads in the engine's Events tab. */
export interface SimEvent {
  id: number;
  code: number;
  severity: 'normal' | 'warning' | 'error';
  description: string;
  time: number;
  vmId?: string;
  correlationId?: string;
}
export interface SimDisk {
  id: string;
  imageId: string;
  alias: string;
  description?: string;
  format: 'cow' | 'raw';
  sparse: boolean;
  backup: 'incremental' | 'none';
  storageDomainId: string;
  status: 'ok' | 'locked' | 'illegal';
  image: SimImage;
  backupMode?: 'full' | 'incremental';
  /** initial_size given at creation (block storage, sparse qcow2). */
  initialSize?: number;
  /**
   * Bytes of the logical volume holding the disk on block storage (vdsm's allocation rule,
   * allocationOf below); undefined on file storage, where a volume grows as it is written.
   */
  allocation?: number;
}
export interface SimCheckpoint {
  id: string;
  vmId: string;
  parentId?: string;
  created: number;
  state: 'created' | 'invalid';
  description?: string;
  diskIds: string[];
}
export type BackupPhase = 'initializing' | 'starting' | 'ready' | 'finalizing' | 'succeeded' | 'failed';
export interface SimBackup {
  id: string;
  vmId: string;
  hostId?: string;
  fromCheckpointId?: string;
  toCheckpointId?: string;
  description?: string;
  phase: BackupPhase;
  diskIds: string[];
  created: number;
  modified: number;
  /** require_consistency: fail when the guest's file systems cannot be frozen. */
  requireConsistency?: boolean;
  correlationId?: string;
  /** Per disk: the image as it was when the backup became ready, and what is dirty in it. */
  frozen: Map<string, {image: SimImage; mode: 'full' | 'incremental'; dirty?: Set<number>}>;
}
export type TransferPhase =
  | 'initializing' | 'transferring' | 'paused_system' | 'paused_user' | 'resuming'
  | 'cancelled_user' | 'cancelled_system' | 'finalizing_success' | 'finalizing_failure'
  | 'finalizing_cleanup' | 'finished_success' | 'finished_failure' | 'finished_cleanup';
export interface SimTicket {
  uuid: string;
  transferId: string;
  ops: ('read' | 'write')[];
  size: number;
  image: SimImage;
  dirty?: Set<number>;
  sparse: boolean;
  ongoing: number;
  lastActivity: number;
  /** Responses in flight: each stops at the end of its current I/O buffer when the ticket is cancelled. */
  inflight?: Set<() => void>;
  /** Cancelled: new requests get 403 while the operations in flight finish their current I/O. */
  canceled?: boolean;
}
export interface SimTransfer {
  id: string;
  diskId: string;
  backupId?: string;
  hostId: string;
  direction: 'upload' | 'download';
  format: 'raw' | 'cow';
  inactivityTimeout: number;
  timeoutPolicy: 'legacy' | 'pause' | 'cancel';
  phase: TransferPhase;
  ticket?: SimTicket;
  transferred: number;
  created: number;
  /** Why the simulator ended it, for tests ("inactivity"). */
  endedBy?: string;
}

/**
 * An engine job (GET /jobs): one per changing command, found by the request's correlation_id
 * (`search=correlation_id=...`). A command's job ends when its asynchronous part has ended, which
 * can be after the entity it made already looks done.
 */
export interface SimJob {
  id: string;
  correlationId?: string;
  description: string;
  status: 'started' | 'finished' | 'failed';
  start: number;
  end?: number;
}

export interface SimFaults {
  /** Delay of every engine phase step, in ms. */
  delayMs: number;
  /** transfer_url points at a port where nothing listens: clients must use proxy_url. */
  transferUrlUnreachable: boolean;
  /** Overrides every transfer's inactivity_timeout (ms) when set. */
  inactivityTimeoutMs?: number;
  /** Emit JSON numbers and booleans as strings, like engines before 4.4.9 (§1.3). */
  legacyJson: boolean;
  /** Drop backups and transfers as soon as they finish, like engines before 4.4.7 (gotcha 24). */
  dropFinished?: boolean;
  /** Pause between the slices of a GET response (ms): reads stay in flight (slow storage). */
  slowReadsMs?: number;
  /** vdsm fails every backup start with this message (a storage or libvirt error on the host). */
  backupStartFailure?: string;
  /** Links the engine refuses to follow (400), as an engine without that link would. */
  unfollowable?: string[];
}

/** Block storage domains: the disks are LVM logical volumes (vdsm lib/vdsm/storage/blockSD.py). */
export function isBlockDomain(sd: SimStorageDomain | undefined): boolean {
  return sd !== undefined && ['iscsi', 'fcp'].includes(sd.storageType);
}

const MiB = 2 ** 20;
const CLUSTER = 64 * 1024;

/**
 * vdsm's qcow2 overhead factor (lib/vdsm/storage/blockVolume.py QCOW_OVERHEAD_FACTOR = 1.1) and
 * max_size (lib/vdsm/storage/volume.py: virtual size × 1.1 for qcow2, rounded up to 1 MiB).
 */
const QCOW_OVERHEAD_FACTOR = 1.1;
function maxQcowSize(capacity: number): number {
  return Math.ceil((capacity * QCOW_OVERHEAD_FACTOR) / MiB) * MiB;
}

/**
 * The logical volume vdsm creates for a new disk on block storage
 * (repository oVirt/vdsm, lib/vdsm/storage/blockVolume.py BlockVolumeManifest.calculate_volume_alloc_size
 * and BlockVolume._create, which rounds up to whole MiB):
 * - sparse qcow2: initial_size × 1.1 when given, else one "volume utilization chunk"
 *   (vdsm.conf [irs] volume_utilization_chunk_mb, 2560 by default in lib/vdsm/common/config.py.in);
 * - preallocated: the initial size when given, else the whole capacity.
 * Nothing extends the volume during an upload: the extension that keeps a running VM's volume
 * ahead of its writes is driven by the VM's block-threshold events (vdsm virt/thinp.py), and an
 * imageio upload has no VM.
 */
export function allocationOf(format: 'cow' | 'raw', sparse: boolean, capacity: number, initialSize: number | undefined, chunkBytes: number): number {
  const bytes = sparse && format === 'cow'
    ? (initialSize ? Math.floor(initialSize * QCOW_OVERHEAD_FACTOR) : chunkBytes)
    : initialSize ?? capacity;
  return Math.ceil(bytes / MiB) * MiB;
}

/**
 * Bytes a qcow2 image with these 64 KiB data clusters occupies on its volume, as qemu lays it out:
 * header, refcount table and first refcount block, the L1 table, one L2 table per 512 MiB of
 * virtual disk that holds data, and the data clusters (zero clusters are flags in L2, no data).
 */
export function qcow2Usage(size: number, dataClusters: Iterable<number>): number {
  const l2Covers = (CLUSTER / 8) * CLUSTER;
  const l2 = new Set<number>();
  let data = 0;
  for (const c of dataClusters) {
    data++;
    l2.add(Math.floor((c * CLUSTER) / l2Covers));
  }
  const l1 = Math.ceil((Math.ceil(size / l2Covers) * 8) / CLUSTER);
  return (3 + l1 + l2.size + data) * CLUSTER;
}

export class SimState {
  dataCenters: SimDataCenter[] = [];
  clusters: SimCluster[] = [];
  hosts: SimHost[] = [];
  storageDomains: SimStorageDomain[] = [];
  vms = new Map<string, SimVm>();
  disks = new Map<string, SimDisk>();
  checkpoints: SimCheckpoint[] = [];
  backups = new Map<string, SimBackup>();
  transfers = new Map<string, SimTransfer>();
  tickets = new Map<string, SimTicket>();
  jobs: SimJob[] = [];
  events: SimEvent[] = [];
  /**
   * Disks whose engine lock (the in-memory EngineLock a command holds until its end action) is
   * still held, with the job holding it: a disk is `ok` once vdsm created it, but AddDiskCommand
   * keeps its lock until the command ends, so the next command on the disk fails validation.
   */
  engineLocks = new Map<string, SimJob>();
  /** The job of the command being executed (engine-api.ts sets it around each changing request). */
  currentJob: SimJob | undefined;
  /** How much longer than the disk's own creation AddDisk's job runs (in `delayMs` steps). */
  addDiskTailSteps = 6;
  /**
   * How long a hybrid backup stays `finalizing` after finalize (ms; default one phase step): the
   * engine removes the backup's snapshot then, and the merge takes as long as the data written
   * since (HybridBackupCommand: REMOVING_SNAPSHOT is reported as finalizing).
   */
  snapshotMergeMs: number | undefined;
  private timers = new Set<NodeJS.Timeout>();
  stopped = false;
  /** imageio's read buffer: a cancelled read ends at the end of the buffer it is sending (dropTicket). */
  imageioBufferBytes = 8 * MiB;
  /** vdsm's [irs] volume_utilization_chunk_mb in bytes (a site may configure it; default 2560 MiB). */
  volumeChunkBytes = 2560 * MiB;

  constructor(readonly faults: SimFaults) {}

  later(fn: () => void, factor = 1): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, this.faults.delayMs * factor);
    this.timers.add(t);
  }

  /** Adds an audit log entry (AuditLogDirector) with the current command's correlation id. */
  event(code: number, severity: SimEvent['severity'], description: string, vmId?: string, correlationId?: string): void {
    this.events.push({id: this.events.length + 1, code, severity, description, time: Date.now(), vmId, correlationId});
  }

  /** Runs fn after ms (stopped with the simulator). */
  after(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Refuses a command on a disk whose engine lock another command holds: AppErrors'
   * ACTION_TYPE_FAILED_OBJECT_LOCKED (oVirt/ovirt-engine, backend/manager/modules/dal/src/main/
   * resources/bundles/AppErrors.properties), which clients must retry.
   */
  checkEngineLock(diskId: string, action: string): void {
    const job = this.engineLocks.get(diskId);
    if (job && job.status === 'started') throw new SimFault(409, `[Cannot ${action}. Related operation is currently in progress. Please try again later.]`);
  }

  /** Ends a job (and releases the engine locks it holds). */
  endJob(job: SimJob, status: 'finished' | 'failed' = 'finished'): void {
    job.status = status;
    job.end = Date.now();
    for (const [disk, j] of this.engineLocks) if (j === job) this.engineLocks.delete(disk);
  }

  vm(id: string): SimVm {
    const vm = this.vms.get(id);
    if (!vm) throw new SimFault(404, '');
    return vm;
  }

  disk(id: string): SimDisk {
    const d = this.disks.get(id);
    if (!d) throw new SimFault(404, '');
    return d;
  }

  vmCheckpoints(vmId: string): SimCheckpoint[] {
    // Root → leaf, following parent links (the engine's recursive query).
    const own = this.checkpoints.filter((c) => c.vmId === vmId);
    const out: SimCheckpoint[] = [];
    let cur = own.find((c) => !c.parentId || !own.some((o) => o.id === c.parentId));
    while (cur) {
      out.push(cur);
      const parent: SimCheckpoint = cur;
      cur = own.find((c) => c.parentId === parent.id);
    }
    return out;
  }

  isDuringBackup(vmId: string): boolean {
    return [...this.backups.values()].some((b) => b.vmId === vmId && !['succeeded', 'failed'].includes(b.phase));
  }

  // ---- backups (§4)

  /**
   * The cluster rules of a backup (oVirt/ovirt-engine, backend/manager/modules/common/src/main/java/
   * org/ovirt/engine/core/common/FeatureSupported.java isBackupModeAndBitmapsOperationsSupported: 4.5;
   * packaging/dbscripts/upgrade/pre_upgrade/0000_config.sql IsIncrementalBackupSupported: false up
   * to 4.4, true from 4.5).
   */
  clusterOf(vm: SimVm): {perDiskModes: boolean; incremental: boolean; hybrid: boolean} {
    const c = this.clusters.find((x) => x.id === vm.clusterId);
    const perDiskModes = c ? levelAtLeast(c.version, 4, 5) : true;
    // engine-config UseHybridBackup: true from cluster level 4.7 (0000_config.sql; FeatureSupported.isHybridBackupSupported).
    const hybrid = c?.hybridBackup ?? (c ? levelAtLeast(c.version, 4, 7) : false);
    return {perDiskModes, incremental: c?.incrementalBackup ?? perDiskModes, hybrid};
  }

  startBackup(vmId: string, req: {id?: string; fromCheckpointId?: string; description?: string; diskIds: string[]; requireConsistency?: boolean}): SimBackup {
    const vm = this.vm(vmId);
    const cluster = this.clusterOf(vm);
    if (req.diskIds.length === 0) throw new SimFault(400, 'Backup [disks] required for add', 'Incomplete parameters');
    const missing = req.diskIds.filter((d) => !this.disks.has(d));
    if (missing.length) throw new SimFault(400, `[Cannot backup VM. The following disk(s) ID(s) does not exist: ${missing.join(', ')}.]`);
    const locked = req.diskIds.filter((d) => this.disks.get(d)!.status === 'locked');
    if (locked.length) throw new SimFault(409, `[Cannot backup VM. The following disks are locked: ${locked.join(', ')}. Please try again in a few minutes.]`);
    // StartVmBackupCommand.validate() (E/bll/storage/backup/StartVmBackupCommand.java), in its order.
    if (req.fromCheckpointId !== undefined && !cluster.incremental) throw new SimFault(400, '[Cannot backup VM. Incremental backup is not supported.]');
    if (req.fromCheckpointId !== undefined) {
      const cp = this.checkpoints.find((c) => c.id === req.fromCheckpointId && c.vmId === vmId);
      if (!cp) throw new SimFault(400, `[Cannot backup VM. Checkpoint ID ${req.fromCheckpointId} doesn't exist.]`);
      if (cp.state === 'invalid') throw new SimFault(400, `[Cannot backup VM. Checkpoint ID ${req.fromCheckpointId} is invalid and should be removed.]`);
      if (!cluster.perDiskModes) {
        // Below 4.5 an incremental backup is all-or-nothing: every disk must have incremental
        // backup enabled (ACTION_TYPE_FAILED_INCREMENTAL_BACKUP_DISABLED_FOR_DISKS) and be in the
        // previous checkpoint (ACTION_TYPE_FAILED_MIXED_INCREMENTAL_AND_FULL_BACKUP_NOT_SUPPORTED).
        const disabled = req.diskIds.filter((d) => this.disks.get(d)!.backup !== 'incremental' || this.disks.get(d)!.format !== 'cow');
        if (disabled.length) throw new SimFault(400, `[Cannot backup VM. Incremental backup is disabled for the following disks: ${disabled.join(', ')}.]`);
        const outside = req.diskIds.filter((d) => !cp.diskIds.includes(d));
        if (outside.length) {
          throw new SimFault(400, `[Cannot backup VM. The following disks are not included in the previous VM backup: ${outside.join(', ')}. Please use a full VM backup for all the VM disks.]`);
        }
      }
    }
    // A Down VM is backed up by the cold path, which adds bitmaps with qemu-img: 4.5 and later
    // (ACTION_TYPE_BITMAPS_OPERATION_ARE_NOT_SUPPORTED, 409; its text here is ours).
    if (vm.status === 'down' && !cluster.perDiskModes) {
      throw new SimFault(409, '[Cannot backup VM. Bitmaps operations are not supported by the cluster compatibility version.]');
    }
    if (this.isDuringBackup(vmId)) throw new SimFault(409, '[Cannot backup VM. The VM is during a backup operation.]');
    if ((req.description ?? '').length > 1024) throw new SimFault(400, '[Cannot backup VM. The description is too long.]');
    const id = req.id ?? randomUUID();
    if (this.backups.has(id)) throw new SimFault(400, '[Cannot backup VM. A VM backup with the same ID already exists.]');
    const now = Date.now();
    const b: SimBackup = {
      id, vmId, hostId: vm.status === 'up' ? vm.hostId : undefined, fromCheckpointId: req.fromCheckpointId,
      description: req.description, phase: 'initializing', diskIds: [...req.diskIds], created: now, modified: now,
      frozen: new Map(), requireConsistency: req.requireConsistency, correlationId: this.currentJob?.correlationId,
    };
    this.backups.set(id, b);
    for (const d of b.diskIds) this.disks.get(d)!.status = 'locked';
    this.later(() => this.backupReady(b));
    return b;
  }

  private backupReady(b: SimBackup): void {
    if (b.phase !== 'initializing') return;
    const from = b.fromCheckpointId ? this.checkpoints.find((c) => c.id === b.fromCheckpointId) : undefined;
    if (b.fromCheckpointId && !from) {
      // The checkpoint vanished between validation and start: "Full backup is now needed" (10791).
      this.failBackup(b);
      return;
    }
    const vm = this.vm(b.vmId);
    const host = this.hosts.find((h) => h.id === b.hostId)?.name ?? 'host';
    // vdsm's start_backup freezes the guest when asked to be consistent (vdsm lib/vdsm/virt/backup.py
    // _freeze_vm, require_consistency); without an agent the freeze fails and so does the backup.
    const vdsmFailure = this.faults.backupStartFailure
      ?? (vm.status === 'up' && b.requireConsistency && vm.guestAgent === false ? `Failed to freeze VM: Guest agent is not responding: QEMU guest agent is not connected` : undefined);
    if (vdsmFailure) {
      // The engine logs the host's error (VDS_BROKER_COMMAND_FAILURE, AuditLogType 10802) and the
      // backup's failure (VM_BACKUP_FAILED) with the command's correlation id.
      this.event(10802, 'error', `VDSM ${host} command StartVmBackupVDS failed: ${vdsmFailure}`, vm.id, b.correlationId);
      this.event(10792, 'error', `Backup ${b.id} for VM ${vm.name} failed (User: admin@internal-authz).`, vm.id, b.correlationId);
      this.failBackup(b);
      return;
    }
    for (const diskId of b.diskIds) {
      const disk = this.disks.get(diskId)!;
      // §4.4: incremental only for a disk recorded in the from-checkpoint (qcow2 disks only).
      const mode = from && from.diskIds.includes(diskId) && disk.image.bitmaps.has(from.id) ? 'incremental' : 'full';
      const dirty = mode === 'incremental' ? new Set(disk.image.bitmaps.get(from!.id)) : undefined;
      b.frozen.set(diskId, {image: disk.image.snapshot(), mode, dirty});
      // backup_mode exists from 4.5 on (StartVmBackupCommand.setDiskBackupModeIfSupported).
      if (this.clusterOf(this.vm(b.vmId)).perDiskModes) disk.backupMode = mode;
      disk.status = 'ok';
    }
    const cowDisks = b.diskIds.filter((d) => this.disks.get(d)!.format === 'cow');
    if (cowDisks.length && this.clusterOf(this.vm(b.vmId)).incremental) {
      const leaf = this.vmCheckpoints(b.vmId).at(-1);
      const cp: SimCheckpoint = {
        id: randomUUID(), vmId: b.vmId, parentId: leaf?.id, created: Date.now(), state: 'created',
        description: b.description, diskIds: cowDisks,
      };
      this.checkpoints.push(cp);
      for (const d of cowDisks) this.disks.get(d)!.image.addBitmap(cp.id);
      b.toCheckpointId = cp.id;
    }
    b.phase = 'ready';
    b.modified = Date.now();
  }

  private failBackup(b: SimBackup): void {
    b.phase = 'failed';
    b.modified = Date.now();
    for (const d of b.diskIds) {
      const disk = this.disks.get(d);
      if (disk) {
        disk.status = 'ok';
        delete disk.backupMode;
      }
    }
    if (b.toCheckpointId) this.removeCheckpointNow(b.toCheckpointId);
  }

  finalizeBackup(vmId: string, backupId: string): void {
    const b = this.backups.get(backupId);
    if (!b || b.vmId !== vmId) throw new SimFault(404, '');
    const active = [...this.transfers.values()].filter(
      (t) => t.backupId === b.id && t.phase !== 'finished_success' && t.phase !== 'finished_failure',
    );
    if (active.length) throw new SimFault(409, '[Cannot stop VM backup. There is an active image transfer for VM backup]');
    if (b.phase !== 'ready' && b.phase !== 'initializing' && b.phase !== 'starting') {
      throw new SimFault(400, `VM '${this.vms.get(vmId)?.name}' backup '${b.id}' is already in '${b.phase.toUpperCase()}' phase, no need to stop the backup again`);
    }
    if (b.phase !== 'ready') {
      // A premature stop fails the backup (§4.5).
      b.phase = 'finalizing';
      this.later(() => this.failBackup(b));
      return;
    }
    b.phase = 'finalizing';
    b.modified = Date.now();
    // A hybrid (snapshot-based) backup stays finalizing while the engine merges its snapshot
    // (oVirt/ovirt-engine, backend/manager/modules/bll/src/main/java/org/ovirt/engine/core/bll/
    // storage/backup/HybridBackupCommand.java: finalize marks it stopped, the callback removes the
    // auto-generated snapshot, then SUCCEEDED).
    const hybrid = this.clusterOf(this.vm(vmId)).hybrid;
    this.after(hybrid ? this.snapshotMergeMs ?? this.faults.delayMs : this.faults.delayMs, () => {
      b.phase = 'succeeded';
      if (this.faults.dropFinished) this.backups.delete(b.id);
      b.modified = Date.now();
      for (const d of b.diskIds) {
        const disk = this.disks.get(d);
        if (disk) delete disk.backupMode;
      }
    });
  }

  // ---- checkpoints (§4.7, 4.4.7+ rules)

  deleteCheckpoint(vmId: string, id: string): void {
    const cp = this.checkpoints.find((c) => c.id === id && c.vmId === vmId);
    if (!cp) throw new SimFault(400, `[Cannot remove checkpoint. Checkpoint ID ${id} doesn't exist.]`);
    if (this.isDuringBackup(vmId)) throw new SimFault(409, '[Cannot remove checkpoint. The VM is during a backup operation.]');
    this.later(() => this.removeCheckpointNow(id));
  }

  /** Removes a checkpoint at once and re-parents its child (also the "vanished" fault). */
  removeCheckpointNow(id: string): void {
    const cp = this.checkpoints.find((c) => c.id === id);
    if (!cp) return;
    for (const c of this.checkpoints) if (c.parentId === id) c.parentId = cp.parentId;
    this.checkpoints = this.checkpoints.filter((c) => c !== cp);
    for (const d of cp.diskIds) this.disks.get(d)?.image.removeBitmap(id);
  }

  // ---- image transfers (§5)

  createTransfer(req: {
    diskId?: string; backupId?: string; direction?: string; format?: string;
    inactivityTimeout?: number; timeoutPolicy?: string; hostId?: string;
  }): SimTransfer {
    // §5.1 / gotcha 1: anything but an explicit "download" is an upload.
    const direction = req.direction === 'download' ? 'download' : 'upload';
    if (!req.diskId) {
      throw new SimFault(400, direction === 'download'
        ? '[Cannot transfer Virtual Disk. Image is not specified for download.]'
        : 'ImageTransfer [disk.id|snapshot.id|image.id] required for add', direction === 'download' ? 'Operation Failed' : 'Incomplete parameters');
    }
    const disk = this.disks.get(req.diskId);
    if (!disk) throw new SimFault(400, `[Cannot transfer Virtual Disk. The disk ${req.diskId} does not exist.]`);
    this.checkEngineLock(disk.id, 'transfer Virtual Disk');
    let backup: SimBackup | undefined;
    if (req.backupId) {
      backup = this.backups.get(req.backupId);
      if (!backup) throw new SimFault(400, '[Cannot transfer Virtual Disk. The VM backup does not exist.]');
      if (req.format === 'cow') throw new SimFault(400, '[Cannot transfer Virtual Disk. The format cow is not applicable for backup.]');
      if (backup.phase !== 'ready') {
        throw new SimFault(409, `[Cannot transfer Virtual Disk. The VM backup is not in READY phase, backup phase is ${backup.phase.toUpperCase()}.]`);
      }
      if (!backup.frozen.has(disk.id)) throw new SimFault(400, `[Cannot transfer Virtual Disk. The disk ${disk.id} is not part of the backup.]`);
    } else {
      if (disk.status === 'locked') throw new SimFault(409, `[Cannot transfer Virtual Disk. Disk ${disk.alias} is locked. Please try again in a few minutes.]`);
      const busy = [...this.transfers.values()].some((t) => t.diskId === disk.id && !t.phase.startsWith('finished'));
      if (busy) throw new SimFault(409, `[Cannot transfer Virtual Disk. The disk ${disk.alias} is being transferred.]`);
      if (direction === 'upload') {
        const vm = [...this.vms.values()].find((v) => v.attachments.some((a) => a.diskId === disk.id));
        if (vm && vm.status !== 'down') throw new SimFault(409, `[Cannot transfer Virtual Disk. The disk is plugged into a running VM ${vm.name}.]`);
      }
    }
    const vm = backup ? this.vms.get(backup.vmId) : undefined;
    const host = vm?.hostId ?? req.hostId ?? this.hosts.find((h) => h.status === 'up')?.id;
    if (!host) throw new SimFault(409, '[Cannot transfer Virtual Disk. There are no hosts available in the Data Center.]');
    const t: SimTransfer = {
      id: randomUUID(), diskId: disk.id, backupId: backup?.id, hostId: host, direction,
      format: req.format === 'cow' ? 'cow' : 'raw',
      inactivityTimeout: req.inactivityTimeout ?? 60,
      timeoutPolicy: (['pause', 'cancel'].includes(req.timeoutPolicy ?? '') ? req.timeoutPolicy : 'legacy') as SimTransfer['timeoutPolicy'],
      phase: 'initializing', transferred: 0, created: Date.now(),
    };
    this.transfers.set(t.id, t);
    if (!backup) disk.status = 'locked';
    this.later(() => {
      if (t.phase !== 'initializing') return;
      const frozen = backup?.frozen.get(disk.id);
      const image = frozen ? frozen.image : disk.image;
      const ticket: SimTicket = {
        uuid: randomUUID(), transferId: t.id, ops: direction === 'download' ? ['read'] : ['write', 'read'],
        size: image.size, image, dirty: frozen?.mode === 'incremental' ? frozen.dirty : undefined,
        sparse: disk.sparse, ongoing: 0, lastActivity: Date.now(),
      };
      t.ticket = ticket;
      this.tickets.set(ticket.uuid, ticket);
      t.phase = 'transferring';
    });
    return t;
  }

  /**
   * Removing a ticket cancels it as the real daemon does (repository oVirt/ovirt-imageio,
   * ovirt_imageio/_internal/auth.py): Ticket.cancel() marks it cancelled at once, so every new
   * request is refused with 403 ("Transfer=... was canceled", Authorizer.authorize), and cancels
   * the operations in flight, which "will be canceled once they complete the current I/O" — a
   * read goes on to the end of its current buffer (8 MiB, [backend_nbd] buffer_size in
   * ovirt_imageio/_internal/config.py; `imageioBufferBytes` here), then its response is cut short
   * and the connection closed. Authorizer.remove() deletes the ticket when the last operation has
   * ended; requests after that get 403 "No such ticket".
   */
  private dropTicket(t: SimTransfer): void {
    const ticket = t.ticket;
    if (!ticket || ticket.canceled) return;
    ticket.canceled = true;
    if (!ticket.inflight?.size) this.tickets.delete(ticket.uuid);
    for (const abort of ticket.inflight ?? []) abort();
  }

  /** An operation of a cancelled ticket ended: the ticket goes with the last one. */
  operationEnded(ticket: SimTicket): void {
    if (ticket.canceled && !ticket.inflight?.size) this.tickets.delete(ticket.uuid);
  }

  transferAction(id: string, action: string): void {
    const t = this.transfers.get(id);
    if (!t) throw new SimFault(404, '');
    const disk = this.disks.get(t.diskId);
    switch (action) {
      case 'finalize':
        if (t.phase !== 'transferring' && t.phase !== 'paused_user' && t.phase !== 'paused_system') {
          throw new SimFault(409, `[Cannot finalize transfer. The transfer is in ${t.phase} phase.]`);
        }
        t.phase = 'finalizing_success';
        this.dropTicket(t);
        this.later(() => {
          t.phase = 'finished_success';
          if (this.faults.dropFinished) this.transfers.delete(t.id);
          if (disk && !t.backupId) disk.status = 'ok';
        });
        return;
      case 'cancel':
        if (t.phase.startsWith('finished') || t.phase.startsWith('finalizing') || t.phase.startsWith('cancelled')) {
          throw new SimFault(409, `[Cannot cancel transfer. The transfer is in ${t.phase} phase.]`);
        }
        this.endTransfer(t, 'cancelled_user');
        return;
      case 'extend':
        return;
      case 'pause':
        t.phase = 'paused_user';
        return;
      case 'resume':
        t.phase = 'resuming';
        this.later(() => (t.phase = 'transferring'));
        return;
      default:
        throw new SimFault(404, '');
    }
  }

  /** Cancel path (§5.4): cancelled → cleanup → finished_failure; an upload's disk is deleted. */
  private endTransfer(t: SimTransfer, via: 'cancelled_user' | 'cancelled_system'): void {
    t.phase = via;
    this.dropTicket(t);
    this.later(() => {
      t.phase = 'finalizing_cleanup';
      this.later(() => {
        t.phase = 'finished_failure';
        if (this.faults.dropFinished) this.transfers.delete(t.id);
        const disk = this.disks.get(t.diskId);
        if (!disk) return;
        if (t.direction === 'upload' && !t.backupId) this.deleteDiskNow(disk.id);
        else if (!t.backupId) disk.status = 'ok';
      });
    });
  }

  /** Applies the inactivity policy (§5.6) to one transfer now. */
  timeOutTransfer(t: SimTransfer): void {
    if (t.phase !== 'transferring') return;
    t.endedBy = 'inactivity';
    const pause = t.timeoutPolicy === 'pause' || (t.timeoutPolicy === 'legacy' && t.direction === 'upload');
    if (pause) {
      t.phase = 'paused_system';
      this.dropTicket(t);
    } else {
      this.endTransfer(t, 'cancelled_system');
    }
  }

  checkInactivity(): void {
    const now = Date.now();
    for (const t of this.transfers.values()) {
      if (t.phase !== 'transferring' || !t.ticket || t.ticket.ongoing > 0) continue;
      const limit = this.faults.inactivityTimeoutMs ?? (t.inactivityTimeout > 0 ? t.inactivityTimeout * 1000 : Infinity);
      if (now - t.ticket.lastActivity > limit) this.timeOutTransfer(t);
    }
  }

  // ---- disks and VMs (§8)

  addDisk(req: {
    id?: string; alias?: string; description?: string; format?: string; sparse?: boolean; provisionedSize?: number;
    initialSize?: number; backup?: string; storageDomainId?: string;
  }): SimDisk {
    if (!req.provisionedSize || req.provisionedSize <= 0) throw new SimFault(400, 'Disk [provisionedSize] required for add', 'Incomplete parameters');
    if (!req.format) throw new SimFault(400, 'Disk [format] required for add', 'Incomplete parameters');
    if (!req.storageDomainId) throw new SimFault(400, 'Disk [storageDomain] required for add', 'Incomplete parameters');
    const sd = this.storageDomains.find((s) => s.id === req.storageDomainId);
    if (!sd) throw new SimFault(400, `[Cannot add Virtual Disk. Storage Domain doesn't exist.]`);
    if (req.id && this.disks.has(req.id)) throw new SimFault(409, '[Cannot add Virtual Disk. The disk already exists.]');
    if (req.format === 'raw' && req.backup === 'incremental') throw new SimFault(400, '[Cannot add Virtual Disk. Incremental backup is not supported for RAW disk format.]');
    const format = req.format === 'raw' ? 'raw' : 'cow';
    const sparse = req.sparse ?? true;
    const backup = req.backup === 'incremental' ? 'incremental' : 'none';
    // ImagesHandler.checkImageConfiguration (oVirt/ovirt-engine, backend/manager/modules/bll/src/main/
    // java/org/ovirt/engine/core/bll/storage/disk/image/ImagesHandler.java): RAW + sparse is not allowed
    // on block domains, preallocated qcow2 only with incremental backup; the message is AppErrors'
    // ACTION_TYPE_FAILED_DISK_CONFIGURATION_NOT_SUPPORTED with the disk's configuration filled in.
    const incompatible = (format === 'raw' && sparse && isBlockDomain(sd)) || (format === 'cow' && !sparse && backup !== 'incremental');
    if (incompatible) {
      throw new SimFault(400, `[Cannot add Virtual Disk. Disk configuration (${format.toUpperCase()} ${sparse ? 'Sparse' : 'Preallocated'} backup-${backup === 'incremental' ? 'Incremental' : 'None'}) is incompatible with the storage domain type.]`);
    }
    const size = Math.ceil(req.provisionedSize / 512) * 512;
    if (req.initialSize !== undefined) {
      // vdsm refuses an initial size for RAW and one above the qcow2 maximum (InvalidParameterException).
      if (format === 'raw' || req.initialSize > maxQcowSize(size)) throw new SimFault(400, `[Cannot add Virtual Disk. Invalid parameter: 'initial size=${req.initialSize}'.]`);
    }
    const d: SimDisk = {
      id: req.id ?? randomUUID(), imageId: randomUUID(), alias: req.alias ?? 'disk', description: req.description, format,
      sparse, backup, storageDomainId: sd.id, status: 'locked', image: new SimImage(size), initialSize: req.initialSize,
      allocation: isBlockDomain(sd) ? allocationOf(format, sparse, size, req.initialSize, this.volumeChunkBytes) : undefined,
    };
    this.disks.set(d.id, d);
    const job = this.currentJob;
    if (job) {
      this.engineLocks.set(d.id, job);
      job.status = 'started';
    }
    this.later(() => {
      if (d.status === 'locked') d.status = 'ok';
      // The disk reads `ok`; the command (and its lock) ends a little later.
      if (job) this.later(() => this.endJob(job), this.addDiskTailSteps);
    });
    return d;
  }

  /**
   * Bytes a write of [offset, offset+length) leaves the disk's volume using, for a qcow2 disk on
   * block storage (qcow2Usage): the data clusters it has plus those the write adds.
   */
  usageAfterWrite(d: SimDisk, offset: number, length: number): number {
    const clusters = new Set<number>();
    for (const [i, b] of d.image.blocks) if (b !== 'zero') clusters.add(i);
    for (let c = Math.floor(offset / CLUSTER); c * CLUSTER < offset + length; c++) clusters.add(c);
    return d.format === 'cow' ? qcow2Usage(d.image.size, clusters) : d.image.size;
  }

  deleteDiskNow(id: string): void {
    this.disks.delete(id);
    for (const vm of this.vms.values()) vm.attachments = vm.attachments.filter((a) => a.diskId !== id);
  }

  attachedTo(diskId: string): SimVm | undefined {
    return [...this.vms.values()].find((v) => v.attachments.some((a) => a.diskId === diskId));
  }

  attachDisk(vmId: string, a: SimAttachment): void {
    const vm = this.vm(vmId);
    const disk = this.disks.get(a.diskId);
    if (!disk) throw new SimFault(400, `[Cannot attach Virtual Disk. The disk ${a.diskId} does not exist.]`);
    this.checkEngineLock(a.diskId, 'attach Virtual Disk');
    if (this.attachedTo(a.diskId)) throw new SimFault(409, `[Cannot attach Virtual Disk. The disk is already attached to a VM.]`);
    if (disk.status === 'locked') throw new SimFault(409, `[Cannot attach Virtual Disk. Disk ${disk.alias} is locked. Please try again in a few minutes.]`);
    vm.attachments.push(a);
  }
}
