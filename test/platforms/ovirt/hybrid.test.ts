/**
 * Snapshot-based (hybrid) backups, the default from cluster level 4.7 (simulator: state.ts
 * clusterOf/finalizeBackup, citing HybridBackupCommand): `finalizing` lasts as long as the
 * engine's snapshot merge, which may outlast the appliance's phase timeout.
 */
import {afterEach, describe, expect, it} from 'vitest';
import {pattern} from '../../ovirt-sim/index.js';
import {readSource, restartPlatform, startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed | undefined;
afterEach(async () => {
  await stopBed(bed);
  bed = undefined;
});

describe('oVirt hybrid backup finalizing', () => {
  it('a snapshot merge longer than the phase timeout neither fails the backup nor the next run', async () => {
    bed = await startBed({}, {phaseTimeoutMs: 300, finalizingWaitMs: 10_000});
    expect(bed.sim.state.clusterOf(bed.sim.vm('web01')).hybrid).toBe(true);
    bed.sim.state.snapshotMergeMs = 1500;
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const first = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    await readSource(first.sources[0]!);
    await first.complete();
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'backup-finalizing', vm: 'web01'}));
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('finalizing');

    // The next run starts while the merge goes on: it waits for the own backup, then backs up.
    bed.sim.guestWrite(os!.id, 0, pattern(5, 65536));
    const next = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id], baseCheckpoint: first.checkpoint});
    expect(next.sources[0]!.incremental).toBe(true);
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'waiting-for-finalizing'}));
    await readSource(next.sources[0]!);
    bed.sim.state.snapshotMergeMs = 10;
    await next.complete();
    expect([...bed.sim.state.backups.values()].map((b) => b.phase)).toEqual(['succeeded', 'succeeded']);
    // With the merge over, the older checkpoint was pruned by the completed backup.
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toEqual([next.checkpoint!.id]);
  });

  it('start-up cleanup after a crash leaves an own backup that is finalizing alone and ends one that is ready', async () => {
    bed = await startBed({}, {phaseTimeoutMs: 300});
    bed.sim.state.snapshotMergeMs = 60_000;
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const first = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    await first.complete();
    const db = bed.sim.vm(`db 01 'quoted'; ünï`);
    await bed.platform.openBackup(db.id, {log: bed.log});
    // The appliance crashes with the db backup ready and web01's still merging.
    await restartPlatform(bed);
    bed.sim.state.snapshotMergeMs = 20;
    const events: string[] = [];
    await bed.platform.cleanupLeftovers((e) => events.push(e.code));
    const phases = [...bed.sim.state.backups.values()].map((b) => [b.vmId, b.phase]);
    expect(phases).toContainEqual([vm.id, 'finalizing']);
    expect(phases).toContainEqual([db.id, 'succeeded']);
    expect(events).toContain('leftover-backup-ended');
  });
});
