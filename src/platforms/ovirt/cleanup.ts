/**
 * Finds and ends what this appliance left behind on the engine after a crash
 * (docs/reference/ovirt-backup-api.md §10.2): unfinished backups it started (description marker, ownership.ts),
 * their download transfers, and upload transfers of restores it started (the target disks carry
 * the marker; cancelling such an upload deletes the half-written disk, gotcha 2). Work this
 * process still has in progress is skipped.
 * Checkpoints of crashed backups are not removed here: the next completed backup prunes them.
 */
import {parallelFor} from '../../util/parallel-for.js';
import type {Logger} from '../types.js';
import {finalizeBackup, waitWhileFinalizing} from './backup.js';
import {EngineError, type EngineClient} from './engine-client.js';
import {list, obj, refId, str, type Json} from './json.js';
import type {Ownership} from './ownership.js';
import type {PollOptions} from './poll.js';
import {endTransfer} from './transfers.js';

const UNFINISHED_BACKUP = new Set(['initializing', 'starting', 'ready']);

/**
 * Ends this appliance's unfinished backups of one VM. Its backups that are `finalizing` (a hybrid
 * backup merging its snapshot, possibly for longer than a phase timeout) end on their own: with
 * `finalizingWaitMs` they are waited for (a new backup of the VM needs them gone), otherwise left.
 */
export async function cleanupVmBackups(
  client: EngineClient, own: Ownership, vmId: string, poll: PollOptions, log: Logger,
  opts: {finalizingWaitMs?: number; backups?: Json[]} = {},
): Promise<void> {
  const mine = (opts.backups ?? list(await client.get(`/vms/${vmId}/backups`), 'backup'))
    .filter((b) => own.owns(b.description) && !own.activeBackups.has(str(b.id) ?? ''));
  if (opts.finalizingWaitMs !== undefined) {
    for (const b of mine.filter((x) => str(x.phase) === 'finalizing')) {
      log({severity: 'info', code: 'waiting-for-finalizing', message: `waiting for the previous backup ${str(b.id)} of VM ${vmId} to finish finalizing`});
      await waitWhileFinalizing(client, vmId, str(b.id)!, poll, opts.finalizingWaitMs);
    }
  }
  const backups = mine.filter((b) => UNFINISHED_BACKUP.has(str(b.phase) ?? ''));
  if (backups.length === 0) return;
  const transfers = list(await client.get('/imagetransfers'), 'image_transfer');
  for (const b of backups) {
    const id = str(b.id)!;
    const disks = new Set(list(await client.get(`/vms/${vmId}/backups/${id}/disks`), 'disk').map((d) => str(d.id)));
    // The transfer entity names the disk (image), not the backup (§5.4): match by disk.
    for (const t of transfers) {
      const phase = str(t.phase) ?? '';
      if (str(t.direction) !== 'download' || phase.startsWith('finished') || !disks.has(refId(t.image) ?? refId(t.disk))) continue;
      await endTransfer(client, str(t.id)!, 'finalize', poll);
    }
    // A hybrid backup may merge its snapshot for a long time after this: it ends on its own.
    await finalizeBackup(client, vmId, id, poll, {mayStillFinalize: true});
    log({severity: 'info', code: 'leftover-backup-ended', message: `ended backup ${id} of VM ${vmId} left over by an earlier session`});
  }
}

export async function cleanupLeftovers(client: EngineClient, own: Ownership, poll: PollOptions, log: Logger): Promise<void> {
  // One request for every VM with its backups (follow=backups, the engine's generic link
  // following of 4.2+, as the inventory does with disk_attachments): a big engine is not asked
  // once per VM. A VM whose answer lacks the followed backups is asked on its own, a few at a time.
  let vms: Json[];
  try {
    vms = list(await client.get('/vms', {follow: 'backups'}), 'vm');
  } catch (err) {
    // An engine that cannot follow that link: the plain list, and each VM asked on its own.
    if (!(err instanceof EngineError && err.status === 400)) throw err;
    vms = list(await client.get('/vms'), 'vm');
  }
  const unknown: string[] = [];
  for (const vm of vms) {
    const id = str(vm.id);
    if (!id) continue;
    if (vm.backups === undefined) unknown.push(id);
    else await cleanupVmBackups(client, own, id, poll, log, {backups: list(vm.backups, 'backup')});
  }
  await parallelFor(unknown.length, 8, (i) => cleanupVmBackups(client, own, unknown[i]!, poll, log));
  for (const t of list(await client.get('/imagetransfers'), 'image_transfer')) {
    const phase = str(t.phase) ?? '';
    if (str(t.direction) !== 'upload' || phase.startsWith('finished') || own.activeTransfers.has(str(t.id) ?? '')) continue;
    const diskId = refId(t.image) ?? refId(t.disk);
    const disk = diskId ? await client.find(`/disks/${diskId}`) : undefined;
    if (!disk || !own.owns(obj(disk).description)) continue;
    await endTransfer(client, str(t.id)!, 'cancel', poll);
    const alias = str(obj(disk).alias) ?? diskId;
    log({severity: 'info', code: 'leftover-restore-removed', disk: alias,
      message: `cancelled an unfinished restore upload left over by an earlier session; its disk ${alias} (${diskId}) was removed`});
  }
}
