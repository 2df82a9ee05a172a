/**
 * The seams between the engine and the hypervisors (docs/architecture.md "The seams").
 *
 * A platform adapter (libvirt, oVirt) lists inventory, opens a backup of one VM as a set of
 * disk sources, opens restore targets as disk sinks, and cleans up what the appliance left
 * behind. The engine only ever sees these interfaces: it never knows which hypervisor it reads.
 */
import type {SshHostAccess} from '../transports/ssh-host.js';

/** One extent of a disk as the source reports it. Offsets and lengths are in bytes. */
export interface SourceExtent {
  offset: number;
  length: number;
  /**
   * data: must be read and stored;
   * zero: reads as zeros (unallocated or known zero) and is recorded as zero without reading;
   * unchanged: not changed since the base checkpoint; the repository keeps the base's chunks.
   */
  kind: 'data' | 'zero' | 'unchanged';
}

/** What the engine reads one disk from. NBD and imageio both fit under it. */
export interface DiskSource {
  /** Stable disk key inside the VM (libvirt target "vda", oVirt disk id). */
  readonly key: string;
  /** Virtual size in bytes. */
  readonly size: number;
  /** True when extents() describes changes since the base checkpoint (an incremental). */
  readonly incremental: boolean;
  /**
   * The extents covering [0, size) in order, without gaps. For a full backup there are no
   * 'unchanged' extents. Sources yield lazily so a 2 TiB disk never sits in memory.
   */
  extents(): AsyncIterable<SourceExtent>;
  /**
   * Reads exactly `length` bytes at `offset` into a fresh buffer (or into `into` when given).
   * May be called concurrently up to `maxParallelReads`.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** How many read() calls may be outstanding at once (NBD connections, imageio readers). */
  readonly maxParallelReads: number;
  /** The largest length one read() accepts. */
  readonly maxReadSize: number;
  /**
   * How a worker on the VM's host could read this disk next to it (src/worker/): set by a
   * platform whose export is a unix socket on a host reached over SSH. Absent: only the appliance
   * can read it (a local host, exports on TCP, oVirt's imageio, image files).
   */
  readonly hostRead?: HostRead;
  close(): Promise<void>;
}

/** A disk's export as a worker on its host opens it, and the host as the worker layer reaches it. */
export interface HostRead extends SshHostAccess {
  /** The export: a unix socket on the host, and its name. */
  socketPath: string;
  exportName: string;
}

/** Where the engine writes one disk during a restore. */
export interface DiskSink {
  readonly key: string;
  readonly size: number;
  write(offset: number, data: Buffer): Promise<void>;
  /** Marks [offset, offset+length) as zeros (a hole where the target supports it). */
  zero(offset: number, length: number): Promise<void>;
  /** A new, empty target that reads as zeros until written: the restore sends it no zero requests. */
  readonly startsZeroed?: boolean;
  readonly maxParallelWrites: number;
  readonly maxWriteSize: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export type Severity = 'info' | 'warning' | 'error';

/** A line for the session log; warnings also end up in the report with a "what to do". */
export interface SessionEvent {
  severity: Severity;
  /** Stable machine-readable code, e.g. 'raw-disk-full-scan', 'no-guest-agent', 'checkpoint-lost'. */
  code: string;
  message: string;
  vm?: string;
  disk?: string;
}

export type Logger = (event: SessionEvent) => void;

export interface InventoryDisk {
  key: string;
  name: string;
  /** qcow2, raw, ... */
  format: string;
  size: number;
  /** Whether changed-block tracking can work for this disk; when false, `trackingNote` says why. */
  trackable: boolean;
  trackingNote?: string;
  /** Platform-specific details (source path, storage domain, ...). */
  details?: Record<string, unknown>;
}

export interface InventoryVm {
  /** Stable id: libvirt UUID or oVirt VM id. */
  id: string;
  name: string;
  state: 'running' | 'shutoff' | 'paused' | 'other';
  host?: string;
  cluster?: string;
  tags?: string[];
  disks: InventoryDisk[];
}

/** The checkpoint a restore point ends at, as recorded in its manifest. */
export interface CheckpointRecord {
  /** Checkpoint name or id on the platform. */
  id: string;
  /** Platform data needed to restore the checkpoint (libvirt checkpoint XML, ...). */
  data?: Record<string, unknown>;
}

export interface BackupOptions {
  /** The checkpoint of the last committed restore point of this VM, if any: an incremental. */
  baseCheckpoint?: CheckpointRecord;
  /** Disk keys to back up; all when omitted. */
  disks?: string[];
  /** Freeze guest filesystems through the guest agent. */
  guestConsistency?: boolean;
  /** Disk keys that must be read in full (new since the base, or damaged in the repository). */
  forceFull?: string[];
  /**
   * Where the data is read from, on platforms that offer a choice (oVirt): 'host' reads from the
   * VM's host (imageio transfer_url, falling back to the engine's proxy when the host cannot be
   * reached), 'proxy' always through the manager (the engine's imageio proxy). The worker that
   * runs the task decides: a worker placed in the VM's cluster or host reads from the host, the
   * appliance's own worker through the proxy. Default 'host'.
   */
  dataPath?: 'host' | 'proxy';
  /**
   * Checkpoints another repository still builds on (its newest restore point of this VM): when
   * the backup completes, the platform retires the appliance's older checkpoints except these,
   * so a VM backed up by two jobs into two repositories stays incremental in both. Without it,
   * every older checkpoint of the appliance's goes.
   */
  keepCheckpoint?: (id: string) => boolean;
  log: Logger;
}

/**
 * One VM backup in progress on a platform. The engine reads every source, commits the
 * restore point, and then calls complete(); on any failure it calls abort(). Both must be
 * safe to call in a finally and must release every platform resource (jobs, exports, transfers).
 */
export interface VmBackup {
  readonly vm: InventoryVm;
  /** The VM configuration to keep in the manifest (libvirt domain XML, oVirt OVF). */
  readonly configuration: {kind: string; text: string};
  readonly sources: DiskSource[];
  /** The checkpoint this backup ends at; recorded in the manifest. */
  readonly checkpoint: CheckpointRecord | undefined;
  /** Called after the restore point committed: keep the new checkpoint, drop old ones. */
  complete(): Promise<void>;
  /** Called when the restore point will not commit: delete the new checkpoint, release all. */
  abort(): Promise<void>;
  /**
   * A failure while reading, told in the administrator's words when the platform knows more:
   * the VM was removed or stopped meanwhile (instead of the NBD error that followed). Returns
   * `err` itself when there is nothing to add.
   */
  explainFailure?(err: unknown): Promise<unknown>;
}

/** The disks and configuration of a restore point, as a platform needs them to restore. */
export interface RestoreSource {
  vmId: string;
  vmName: string;
  configuration?: {kind: string; text: string};
  disks: {
    key: string; name: string; size: number; format?: string; details?: Record<string, unknown>;
    /** Bytes of data (non-zero chunks) the restore will write: what a thin target must hold. */
    dataBytes?: number;
  }[];
}

export type RestoreTarget =
  /** A whole VM: under a new name (and new UUID/ids), optionally on another host/cluster/storage. */
  | {
      mode: 'vm';
      name: string;
      host?: string;
      cluster?: string;
      /** oVirt storage domain id/name, or a libvirt directory for the disk images. */
      storage?: string;
      /** Replace the original VM instead of creating a new one (it must not be running). */
      overwrite?: boolean;
      /** With overwrite: delete the replaced VM's disk images once the new definition is in place (else they are kept and named). */
      removeReplaced?: boolean;
    }
  /** Chosen disks attached to an existing VM. */
  | {mode: 'disks-to-vm'; vmId: string; storage?: string}
  /** Chosen disks written to image files on the appliance, the same for every platform (targets/files.ts). */
  | {mode: 'disks-to-files'; directory: string; format: 'qcow2' | 'raw'};

/** The targets a platform restores to itself: a VM, new or existing. */
export type VmRestoreTarget = Exclude<RestoreTarget, {mode: 'disks-to-files'}>;

/**
 * A restore in progress. The engine writes and flushes every sink, then calls finish(), which
 * closes the sinks and defines / creates the VM or attaches the disks; on failure abort() closes
 * the sinks and removes what was created so far. The engine never closes a sink itself.
 */
export interface VmRestore {
  readonly sinks: DiskSink[];
  /** `replacedFiles`: a replaced VM's disk images that were kept (overwrite without removeReplaced). */
  finish(): Promise<{vmId?: string; vmName?: string; files?: string[]; replacedFiles?: string[]}>;
  abort(): Promise<void>;
}

/** A platform's one name (platforms/registry.ts): the adapter's kind, recorded in restore points. */
export type PlatformKind = 'libvirt' | 'ovirt';

/**
 * What a restore will do, told before it starts (the console's summary, `vmbackup restore
 * --dry-run`): computed from the restore point and what is on the target now, without changing
 * anything. Each line is in the administrator's words.
 */
export interface RestorePlan {
  /** Where the restore goes, one line. */
  target: string;
  /** What will be created: a VM, disks, image files. */
  creates: string[];
  /** What will be overwritten or replaced (and what of the replaced is kept). */
  replaces: string[];
  /** Anything else the administrator should know (a disk restored preallocated, ...). */
  notes: string[];
}

/** What starts an instant VM (InstantRecovery.start). */
export interface InstantStartSpec {
  source: RestoreSource;
  /** The instant VM's name (a new VM: new UUID and MAC addresses). */
  name: string;
  /** The host to start it on (default: where the VM ran, else the first). */
  host?: string;
  /** The directory on the host for its overlays (default: where the VM's first disk was). */
  storage?: string;
  /** Keep the VM's network interfaces (false: none, an isolated VM). */
  network: boolean;
  /** The disks to start it with (default: all). */
  disks?: string[];
  /** The restore point's UEFI variable store, when it has one. */
  nvram?: Uint8Array;
  /** Give the VM a display adapter when it has none, so that screenshot() has a screen (restore verification). */
  display?: boolean;
  /**
   * Called with the VM's state (its UUID chosen, the overlays' paths) before anything is made on
   * the host: a caller that records it can discard what a crash in the middle leaves.
   */
  onPrepared?(state: InstantVmState): Promise<void>;
  /**
   * Asks the appliance to serve the restore point's disks (NBD, export names = disk keys) on a
   * unix socket at this path on the appliance; resolves once it listens.
   */
  serve(path: string): Promise<void>;
}

/** An instant VM as recorded, enough to find it again after the daemon restarts. */
export interface InstantVmState {
  host: string;
  name: string;
  uuid: string;
  /** The directory of its overlays (and of the migrated disks unless told otherwise). */
  storage: string;
  overlays: {key: string; target: string; path: string; format: 'qcow2' | 'raw'}[];
  nvramPath?: string;
  /** The socket QEMU reads the export from, on the host. */
  hostSocket: string;
  /** The socket the appliance serves the export on. */
  applianceSocket: string;
}

/** What a running instant VM shows of its boot (restore verification, engine/verify-boot.ts). */
export interface BootObservation {
  /** False once the VM stopped (shut down, crashed, destroyed). */
  running: boolean;
  /** Bytes the guest has read from its disks so far (firmware, boot loader, operating system), in how many requests. */
  readBytes: number;
  readRequests: number;
  /** The VM has a guest agent channel, and whether the agent answered a ping just now. */
  agentConfigured: boolean;
  agentAnswered: boolean;
  /** UEFI firmware: it reads the disk's EFI system partition itself before any boot loader runs. */
  uefi: boolean;
}

export interface InstantVm {
  readonly state: InstantVmState;
  running(): Promise<boolean>;
  /** How far the VM's boot has come (see BootObservation). */
  observe(): Promise<BootObservation>;
  /** Its screen as an image (PNG), or undefined when it has no screen to take. */
  screenshot(): Promise<Uint8Array | undefined>;
  /**
   * Moves the running VM's disks to new images on storage (formats as backed up), switches it
   * onto them and makes it persistent; the export is not needed afterwards. Returns the files.
   */
  migrate(opts: {storage?: string; onProgress?: (done: number, total: number) => void; signal?: AbortSignal}): Promise<{files: string[]}>;
  /** Stops the VM and removes its overlays: nothing of it is left. */
  discard(): Promise<void>;
  /** Closes the way from the host to the export (a tunnel), leaving the VM alone. */
  detach(): Promise<void>;
}

/** A platform that can start a VM from a restore point while its disks stay in the repository. */
export interface InstantRecovery {
  start(spec: InstantStartSpec, log: Logger): Promise<InstantVm>;
  /**
   * An instant VM recorded earlier, with the way to the export opened again (`serve` as in
   * start); without `serve`, only to discard it.
   */
  resume(state: InstantVmState, serve?: (path: string) => Promise<void>): Promise<InstantVm>;
}

export interface PlatformAdapter {
  readonly kind: PlatformKind;
  /** Instant recovery, on platforms that have it (libvirt). */
  readonly instant?: InstantRecovery;
  inventory(): Promise<InventoryVm[]>;
  /**
   * One VM by id or name, described as inventory() would describe it, or undefined when there is
   * none. Its cost does not grow with the number of VMs on the platform: a backup of one VM
   * describes that VM only.
   */
  findVm(nameOrId: string): Promise<InventoryVm | undefined>;
  openBackup(vmId: string, opts: BackupOptions): Promise<VmBackup>;
  /** What openRestore() with the same arguments would do; checks what it would refuse, changes nothing. */
  planRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]}): Promise<RestorePlan>;
  openRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore>;
  /** Finds and removes what the appliance itself left behind (jobs, checkpoints, exports, transfers). */
  cleanupLeftovers(log: Logger): Promise<void>;
  close(): Promise<void>;
}
