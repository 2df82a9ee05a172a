/**
 * One VM backup on oVirt (docs/reference/ovirt-backup-api.md §4, §7): start the backup (incremental from the
 * base checkpoint when given), wait for `ready`, open one download transfer per disk, and end
 * everything in complete()/abort().
 *
 * Rules kept here:
 * - An unknown or invalid base checkpoint is a 400 from the engine, not a full backup (gotcha 5):
 *   start again as full and warn 'checkpoint-lost'. A backup that fails while starting from a
 *   checkpoint (event 10791, chain reset) is handled the same way.
 * - Per-disk backup_mode decides full vs incremental (gotcha 6); RAW disks are full scans.
 * - The checkpoint (to_checkpoint_id) is engine-assigned and only exists once `ready` (gotcha 7).
 *   The caller records it with the restore point; it becomes the base only after that commits.
 * - complete() and abort() finalize every transfer, then the backup, waiting for terminal phases
 *   (gotchas 3, 4); both are idempotent and safe in a finally. complete() then removes the
 *   appliance's own older checkpoints oldest-first; abort() removes the new checkpoint.
 * - Own backups and checkpoints are recognised by the description marker (ownership.ts; the engine
 *   copies the backup description to its checkpoint) and by the base checkpoint id the caller
 *   passed. A backup in progress is registered so a concurrent cleanup leaves it alone.
 */
import {ExitCode, UserError} from '../../util/errors.js';
import type {BackupOptions, CheckpointRecord, InventoryVm, Logger, VmBackup} from '../types.js';
import {OvirtDiskSource} from './disk-source.js';
import {EngineError, type EngineClient} from './engine-client.js';
import {atLeast, clusterLevel, inventoryDisk, isBackupable, vmAttachments, vmState, type EngineAttachment, type EngineDisk} from './inventory.js';
import {list, obj, refId, str} from './json.js';
import type {Ownership} from './ownership.js';
import {pollUntil, type PollOptions} from './poll.js';

export interface BackupContext {
  client: EngineClient;
  poll: PollOptions;
  inactivityTimeout: number;
  maxConnections: number;
  ownership: Ownership;
  /** Cleans up this appliance's stale backups of one VM (used on 409 "during a backup"). */
  cleanupVm: (vmId: string, log: Logger) => Promise<void>;
}

const CHECKPOINT_GONE = /Checkpoint ID .*(doesn't exist|does not exist|is invalid)/i;
// Refusals of an incremental backup a full one cures (§4.2: incremental disabled for the cluster
// level or for some disks, disks outside the previous backup below level 4.5).
const ALL_OR_NOTHING = /Incremental backup is not supported|Incremental backup is disabled for the following disks|not included in the previous VM backup/i;

/**
 * What the engine's event log says about a failed request: the error and warning events of its
 * correlation id, oldest first (one request for the newest 100 events). Empty when there are none
 * or the events cannot be read.
 */
async function engineEvents(client: EngineClient, vmId: string, correlationId: string): Promise<string> {
  try {
    const events = list(await client.get('/events', {max: '100'}), 'event')
      .filter((e) => str(e.correlation_id) === correlationId && refId(e.vm) === vmId && ['error', 'warning', 'alert'].includes(str(e.severity) ?? ''))
      .reverse();
    return events.map((e) => (str(e.description) ?? '').replace(/\.$/, '')).filter(Boolean).slice(0, 3).join('; ');
  } catch {
    return '';
  }
}

/** Why an all-or-nothing incremental backup (cluster level < 4.5) cannot include these disks, or undefined. */
async function allOrNothingBlockers(client: EngineClient, vmId: string, checkpointId: string, disks: EngineDisk[]): Promise<string | undefined> {
  const notTracked = disks.filter((d) => d.format !== 'cow' || d.backup !== 'incremental');
  if (notTracked.length) return `${notTracked.map((d) => `${d.alias} (${d.format === 'cow' ? 'incremental backup disabled' : 'RAW'})`).join(', ')} cannot be read incrementally`;
  const inCheckpoint = await client.find(`/vms/${vmId}/checkpoints/${checkpointId}/disks`);
  if (!inCheckpoint) return undefined; // the checkpoint is gone: the engine says so, handled as checkpoint-lost
  const ids = new Set(list(inCheckpoint, 'disk').map((d) => str(d.id)));
  const added = disks.filter((d) => !ids.has(d.id));
  return added.length ? `${added.map((d) => d.alias).join(', ')} ${added.length === 1 ? 'was' : 'were'} not in the previous backup` : undefined;
}
// While an earlier backup initializes its disks are locked; once ready the VM is "during a backup" (§4.2).
const DURING_BACKUP = /during a backup|disks are locked/i;

export async function openOvirtBackup(ctx: BackupContext, vmId: string, opts: BackupOptions): Promise<VmBackup> {
  const {client, poll} = ctx;
  const log = opts.log;
  const vmJson = await client.find(`/vms/${vmId}`, {all_content: 'true', follow: 'tags'});
  if (!vmJson) {
    throw new UserError(`The engine has no VM with id ${vmId}.`, {hint: 'The VM was removed or re-created; refresh the job\'s VM selection.', exitCode: ExitCode.notFound});
  }
  const vmName = str(vmJson.name) ?? vmId;
  const status = str(vmJson.status);
  if (status !== 'up' && status !== 'down') {
    throw new UserError(`VM ${vmName} is ${status}; oVirt backs up only VMs that are Up or Down.`, {
      hint: 'Wait until the VM is running or shut down (not paused, migrating or in preview), then run the backup again.',
      exitCode: ExitCode.platformFailed,
    });
  }
  // Below cluster level 4.5 an incremental backup is all-or-nothing and a Down VM cannot be backed
  // up at all (§4.2: per-disk backup modes and bitmap operations need 4.5).
  const level = await clusterLevel(client, refId(vmJson.cluster));
  const oldCluster = level !== undefined && !atLeast({...level, build: 0, full: ''}, 4, 5);
  if (oldCluster && status === 'down') {
    throw new UserError(`VM ${vmName} is shut down, and its cluster's compatibility level ${level!.major}.${level!.minor} lets oVirt back up only running VMs.`, {
      hint: 'Start the VM before its backup, or raise the cluster compatibility level to 4.5 or later (Compute → Clusters → Edit).',
      exitCode: ExitCode.platformFailed,
    });
  }
  const conf = obj(obj(vmJson.initialization).configuration);
  const ovf = str(conf.data) ?? '';
  const atts = (await vmAttachments(client, vmId)).filter(isBackupable) as (EngineAttachment & {disk: EngineDisk})[];
  let chosen = atts;
  if (opts.disks) {
    const unknown = opts.disks.filter((k) => !atts.some((a) => a.disk.id === k));
    if (unknown.length) {
      throw new UserError(`VM ${vmName} has no backupable disk ${unknown.join(', ')}.`, {
        hint: 'The disk was removed, detached, is shareable or a direct LUN; update the job\'s disk selection.',
        exitCode: ExitCode.notFound,
      });
    }
    chosen = atts.filter((a) => opts.disks!.includes(a.disk.id));
  }
  const inventory: InventoryVm = {
    id: vmId, name: vmName, state: vmState(status),
    tags: list(vmJson.tags, 'tag').map((t) => str(t.name)).filter((t): t is string => !!t),
    disks: chosen.map(inventoryDisk),
  };
  const configuration = {kind: 'ovf', text: ovf};
  if (chosen.length === 0) {
    log({severity: 'warning', code: 'no-disks', vm: vmName, message: `VM ${vmName} has no disks that can be backed up; only its configuration is kept`});
    return new OvirtVmBackup(ctx, inventory, configuration, [], undefined, undefined, opts);
  }

  const description = ctx.ownership.describe(new Date().toISOString());
  // With guest consistency the engine fails the backup when the guest cannot be frozen, instead
  // of going on crash-consistent (VmBackupsService.Add require_consistency).
  let query: Record<string, string> | undefined = opts.guestConsistency ? {require_consistency: 'true'} : undefined;
  let correlationId = '';
  const start = async (from: string | undefined) => {
    const body = {description, disks: {disk: chosen.map((a) => ({id: a.disk.id}))}, ...(from ? {from_checkpoint_id: from} : {})};
    let r;
    try {
      r = await client.change('POST', `/vms/${vmId}/backups`, body, query);
    } catch (err) {
      if (!(err instanceof EngineError) || err.status !== 409 || !DURING_BACKUP.test(err.detail)) throw err;
      // Our own backup left over from a crash blocks this one (§10.2): end it, then try once more.
      await ctx.cleanupVm(vmId, log);
      r = await client.change('POST', `/vms/${vmId}/backups`, body, query);
    }
    correlationId = r.correlationId;
    return r.body;
  };
  const waitReady = (id: string) => pollUntil(`backup of VM ${vmName} to become ready`, poll, async () => {
    const b = await client.find(`/vms/${vmId}/backups/${id}`);
    const phase = b ? str(b.phase) : undefined;
    if (phase === 'ready') return b!;
    if (phase === undefined || phase === 'failed' || phase === 'succeeded') return {failed: true} as Record<string, unknown>;
    return undefined;
  });
  const lost = (why: string) => log({
    severity: 'warning', code: 'checkpoint-lost', vm: vmName,
    message: `checkpoint ${opts.baseCheckpoint!.id} of VM ${vmName} is no longer usable (${why}); taking a full backup`,
  });

  let from = opts.baseCheckpoint?.id;
  const fullNeeded = (why: string) => log({
    severity: 'warning', code: 'incremental-not-possible', vm: vmName,
    message: `VM ${vmName} gets a full backup: ${why}`,
  });
  if (from && oldCluster) {
    const blockers = await allOrNothingBlockers(client, vmId, from, chosen.map((a) => a.disk));
    if (blockers) {
      fullNeeded(`at cluster compatibility level ${level!.major}.${level!.minor} an incremental backup must include only qcow2 disks with incremental backup enabled that were in the previous backup, and ${blockers}; raise the cluster level to 4.5 or later, or leave such disks out of the job`);
      from = undefined;
    }
  }
  let created;
  try {
    created = await start(from);
  } catch (err) {
    if (!(from && err instanceof EngineError && err.status === 400 && (CHECKPOINT_GONE.test(err.detail) || ALL_OR_NOTHING.test(err.detail)))) throw err;
    if (ALL_OR_NOTHING.test(err.detail)) {
      fullNeeded(`the engine refused an incremental backup (${err.detail})`);
    } else {
      lost(err.detail);
      if (/is invalid/i.test(err.detail)) await client.delete(`/vms/${vmId}/checkpoints/${from}`).catch(() => undefined);
    }
    from = undefined;
    created = await start(undefined);
  }
  let backupId = str(created.id)!;
  ctx.ownership.activeBackups.add(backupId);
  let ready: Record<string, unknown>;
  // Ends the backup that failed to start and starts it again (as a full when `from` is cleared).
  const startAgain = async () => {
    await finalizeBackup(client, vmId, backupId, poll).catch(() => undefined);
    ctx.ownership.activeBackups.delete(backupId);
    backupId = str((await start(from)).id)!;
    ctx.ownership.activeBackups.add(backupId);
    ready = await waitReady(backupId);
  };
  try {
    ready = await waitReady(backupId);
    if (ready.failed && from) {
      // The engine failed the incremental while starting (event 10791: full backup needed).
      lost('the engine failed the incremental backup');
      from = undefined;
      await startAgain();
    }
    let said = ready.failed ? await engineEvents(client, vmId, correlationId) : '';
    if (ready.failed && query && /freeze/i.test(said)) {
      // Asked for a consistent backup, and the guest could not be frozen: as on libvirt, the
      // backup goes on crash-consistent, with a warning that says why.
      log({severity: 'warning', code: 'guest-freeze-failed', vm: vmName,
        message: `the file systems of VM ${vmName} could not be frozen (${said}); the backup is crash-consistent`});
      query = undefined;
      await startAgain();
      said = ready.failed ? await engineEvents(client, vmId, correlationId) : '';
    }
    if (ready.failed) {
      throw new UserError(`The engine failed the backup of VM ${vmName} while starting it${said ? `: ${said}` : '.'}`, {
        hint: said ? 'Fix what the engine reports on the host, then run the backup again.' : 'See the engine events for the VM (for example a host that cannot start the backup, or storage errors).',
        exitCode: ExitCode.platformFailed,
      });
    }
  } catch (err) {
    // Never leave the VM "during a backup" behind (gotcha 4).
    await finalizeBackup(client, vmId, backupId, poll).catch(() => undefined);
    ctx.ownership.activeBackups.delete(backupId);
    throw err;
  }
  const toCheckpoint = str(ready.to_checkpoint_id);
  const backup = new OvirtVmBackup(ctx, inventory, configuration, [], backupId,
    toCheckpoint ? {id: toCheckpoint, data: {vmId, backupId}} : undefined, opts);
  try {
    const modes = new Map(list(await client.get(`/vms/${vmId}/backups/${backupId}/disks`), 'disk').map((d) => [str(d.id), str(d.backup_mode)]));
    for (const a of chosen) {
      const d = a.disk;
      if (d.format === 'raw') {
        log({severity: 'warning', code: 'raw-disk-full-scan', vm: vmName, disk: d.alias,
          message: `disk ${d.alias} has RAW format and can be backed up only in full scan mode`});
      } else if (d.backup !== 'incremental') {
        log({severity: 'warning', code: 'incremental-disabled', vm: vmName, disk: d.alias,
          message: `disk ${d.alias} does not have incremental backup enabled and is read in full`});
      }
      // Engines below cluster level 4.5 report no backup_mode: there an incremental backup is
      // incremental for every disk (the engine refused it otherwise).
      const mode = modes.get(d.id) ?? (from && d.format === 'cow' ? 'incremental' : 'full');
      const forced = opts.forceFull?.includes(d.id) ?? false;
      if (from && mode === 'full' && d.format === 'cow' && d.backup === 'incremental') {
        log({severity: 'info', code: 'disk-full', vm: vmName, disk: d.alias, message: `disk ${d.alias} is not in the base checkpoint; reading it in full`});
      }
      backup.sources.push(await OvirtDiskSource.open({
        client, poll, log, vmName, backupId, diskId: d.id, diskName: d.alias, size: d.size,
        incremental: !!from && mode === 'incremental' && !forced,
        inactivityTimeout: ctx.inactivityTimeout, maxConnections: ctx.maxConnections, dataPath: opts.dataPath,
      }));
    }
  } catch (err) {
    await backup.abort();
    throw err;
  }
  return backup;
}

/**
 * Finalizes a backup and waits for succeeded/failed. A backup already finalizing is waited for.
 * With `mayStillFinalize`, a backup still `finalizing` when the wait times out is answered
 * 'finalizing' instead of an error: a snapshot-based (hybrid) backup finalizes while the engine
 * merges its snapshot, which takes as long as the data written meanwhile (§4.3 (c)); the data was
 * read by then and the engine ends it on its own.
 */
export async function finalizeBackup(client: EngineClient, vmId: string, backupId: string, poll: PollOptions, opts: {mayStillFinalize?: boolean} = {}): Promise<string> {
  try {
    await pollUntil(`image transfers of backup ${backupId} to end`, poll, async () => {
      try {
        await client.post(`/vms/${vmId}/backups/${backupId}/finalize`, {});
        return true;
      } catch (err) {
        if (err instanceof EngineError && err.status === 409 && /active image transfer/i.test(err.detail)) return undefined;
        throw err;
      }
    });
  } catch (err) {
    // 400 "already in ... phase" = finalized before (gotcha table §10.2); 404 = gone (old engines).
    if (!(err instanceof EngineError && (err.status === 400 || err.status === 404))) throw err;
  }
  let last: string | undefined;
  try {
    return await pollUntil(`backup ${backupId} to finish`, poll, async () => {
      const b = await client.find(`/vms/${vmId}/backups/${backupId}`);
      if (!b) return 'gone';
      last = str(b.phase);
      return last === 'succeeded' || last === 'failed' ? last : undefined;
    });
  } catch (err) {
    if (opts.mayStillFinalize && last === 'finalizing') return 'finalizing';
    throw err;
  }
}

/**
 * Waits for this appliance's own backup of a VM that is still finalizing (a hybrid backup's
 * snapshot merge) to end, up to `timeoutMs`; a clear error when it does not.
 */
export async function waitWhileFinalizing(client: EngineClient, vmId: string, backupId: string, poll: PollOptions, timeoutMs: number): Promise<void> {
  try {
    await pollUntil(`backup ${backupId} to finish finalizing`, {intervalMs: poll.intervalMs, timeoutMs}, async () => {
      const b = await client.find(`/vms/${vmId}/backups/${backupId}`);
      return !b || str(b.phase) !== 'finalizing' ? true : undefined;
    });
  } catch (err) {
    throw new UserError(`The previous backup of VM ${vmId} is still finalizing in the engine after ${Math.round(timeoutMs / 60_000)} min (the engine merges the backup's snapshot).`, {
      hint: 'The engine ends it on its own; the next run backs the VM up. If it never ends, see the engine\'s tasks and events for the VM\'s snapshot removal.',
      exitCode: ExitCode.platformFailed,
      cause: err,
    });
  }
}

/** Deletes a checkpoint and waits until the engine no longer lists it (§4.7). */
export async function deleteCheckpoint(client: EngineClient, vmId: string, id: string, poll: PollOptions): Promise<void> {
  await client.delete(`/vms/${vmId}/checkpoints/${id}`);
  await pollUntil(`checkpoint ${id} to be removed`, poll, async () => ((await client.find(`/vms/${vmId}/checkpoints/${id}`)) ? undefined : true));
}

class OvirtVmBackup implements VmBackup {
  private ended: Promise<void> | undefined;

  constructor(
    private readonly ctx: BackupContext,
    readonly vm: InventoryVm,
    readonly configuration: {kind: string; text: string},
    readonly sources: OvirtDiskSource[],
    readonly backupId: string | undefined,
    readonly checkpoint: CheckpointRecord | undefined,
    private readonly opts: BackupOptions,
  ) {}

  private async release(mayStillFinalize = false): Promise<string | undefined> {
    const errors: unknown[] = [];
    for (const s of this.sources) await s.close().catch((e) => errors.push(e));
    let phase: string | undefined;
    if (this.backupId) {
      try {
        phase = await finalizeBackup(this.ctx.client, this.vm.id, this.backupId, this.ctx.poll, {mayStillFinalize});
      } catch (e) {
        errors.push(e);
      } finally {
        // Whatever is left now is for cleanupLeftovers.
        this.ctx.ownership.activeBackups.delete(this.backupId);
      }
    }
    if (errors.length) throw errors[0];
    return phase;
  }

  complete(): Promise<void> {
    this.ended ??= (async () => {
      const phase = await this.release(true);
      if (phase === 'finalizing') {
        // All data was read; the engine is merging the backup's snapshot (hybrid backup). Old
        // checkpoints cannot be removed while it does (409): the next completed backup does it.
        this.opts.log({severity: 'info', code: 'backup-finalizing', vm: this.vm.name,
          message: `the engine is still finalizing the backup of VM ${this.vm.name} (merging its snapshot); it ends on its own, and the next backup waits for it`});
        return;
      }
      if (phase === 'failed') {
        throw new UserError(`The engine reports the backup of VM ${this.vm.name} as failed after finalizing.`, {
          hint: 'The restore point was written, but the next backup of this VM will be full. See the engine events.',
          exitCode: ExitCode.platformFailed,
        });
      }
      if (this.checkpoint) await this.pruneCheckpoints(this.checkpoint.id);
    })();
    return this.ended;
  }

  abort(): Promise<void> {
    this.ended ??= (async () => {
      try {
        await this.release();
      } catch (err) {
        this.opts.log({severity: 'warning', code: 'backup-release-failed', vm: this.vm.name,
          message: `could not end the backup of VM ${this.vm.name} cleanly: ${(err as Error).message}; the next session cleans it up`});
      }
      if (this.checkpoint) {
        await deleteCheckpoint(this.ctx.client, this.vm.id, this.checkpoint.id, this.ctx.poll).catch(() => undefined);
      }
    })();
    return this.ended;
  }

  /** Removes this appliance's checkpoints older than `keep`, oldest first (gotcha 8). */
  private async pruneCheckpoints(keep: string): Promise<void> {
    const {client, poll} = this.ctx;
    try {
      const chain = list(await client.get(`/vms/${this.vm.id}/checkpoints`), 'checkpoint');
      const at = chain.findIndex((c) => str(c.id) === keep);
      const candidates = at < 0 ? [] : chain.slice(0, at);
      // The engine removes checkpoints from the root of the chain only: stop at the first one
      // another repository still builds on, which keeps it and everything after it.
      const needed = candidates.findIndex((c) => this.opts.keepCheckpoint?.(str(c.id) ?? '') === true);
      const older = (needed < 0 ? candidates : candidates.slice(0, needed)).filter((c) =>
        this.ctx.ownership.owns(c.description) || str(c.id) === this.opts.baseCheckpoint?.id);
      for (const c of older) await deleteCheckpoint(client, this.vm.id, str(c.id)!, poll);
    } catch (err) {
      this.opts.log({severity: 'warning', code: 'checkpoint-prune-failed', vm: this.vm.name,
        message: `could not remove old checkpoints of VM ${this.vm.name}: ${(err as Error).message}`});
    }
  }
}
