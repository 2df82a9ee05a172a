/**
 * What the administrator is told when oVirt says no (simulator: tls.ts names, state.ts events and
 * require_consistency, engine-api.ts follow=backups): a certificate for another host name, a
 * backup the host failed (with the engine's event text), a guest that cannot be frozen, and a
 * start-up cleanup that does not ask a big engine once per VM.
 */
import {afterEach, describe, expect, it} from 'vitest';
import {startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed | undefined;
afterEach(async () => {
  await stopBed(bed);
  bed = undefined;
});

describe('oVirt diagnostics', () => {
  it('a certificate issued for another host name is reported as that, with the name to use', async () => {
    bed = await startBed({tlsNames: ['DNS:engine.example.com']});
    const err = await bed.platform.inventory().then(() => undefined, (e: unknown) => e as Error & {hint?: string});
    expect(err?.message).toMatch(/issued for other names \(engine\.example\.com\), not "127\.0\.0\.1"/);
    expect(err?.message).not.toMatch(/not signed by the stored engine CA/);
    expect(err?.hint).toMatch(/engine\.example\.com/);
  });

  it('a backup the host fails to start carries the engine\'s event text', async () => {
    bed = await startBed();
    bed.sim.faults.backupStartFailure = 'Internal server error: libvirt: Storage error: failed to add bitmap';
    const vm = bed.sim.vm('web01');
    await expect(bed.platform.openBackup(vm.id, {log: bed.log}))
      .rejects.toThrow(/while starting it: VDSM host1 command StartVmBackupVDS failed: Internal server error: libvirt: Storage error: failed to add bitmap; Backup \S+ for VM web01 failed/);
    expect([...bed.sim.state.backups.values()].every((b) => b.phase === 'failed')).toBe(true);
  });

  it('guest consistency asks the engine to require it; a guest that cannot be frozen is backed up crash-consistent, with a warning that says why', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    vm.guestAgent = false;
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, guestConsistency: true});
    const warning = bed.events.find((e) => e.code === 'guest-freeze-failed');
    expect(warning?.message).toMatch(/could not be frozen \(VDSM host1 command StartVmBackupVDS failed: Failed to freeze VM: Guest agent is not responding/);
    const posts = bed.sim.apiLog.filter((l) => l.method === 'POST' && l.path.startsWith(`/ovirt-engine/api/vms/${vm.id}/backups`) && !l.path.includes('finalize'));
    expect(posts.map((l) => l.path)).toEqual([`/ovirt-engine/api/vms/${vm.id}/backups?require_consistency=true`, `/ovirt-engine/api/vms/${vm.id}/backups`]);
    await b.complete();
    expect([...bed.sim.state.backups.values()].map((x) => x.phase)).toEqual(['failed', 'succeeded']);
  });

  it('start-up cleanup asks a big engine for its VMs and their backups in one request', async () => {
    bed = await startBed({vms: Array.from({length: 80}, (_, i) => ({name: `vm${i}`, status: 'up' as const, disks: []}))});
    bed.sim.apiLog.length = 0;
    await bed.platform.cleanupLeftovers(bed.log);
    const calls = bed.sim.apiLog.filter((l) => l.path.startsWith('/ovirt-engine/api'));
    expect(calls.filter((l) => /\/vms\/[^/?]+\/backups/.test(l.path))).toHaveLength(0);
    expect(calls.length).toBeLessThanOrEqual(3);
  });

  it('an engine that cannot follow the backups link is asked VM by VM instead, and the cleanup still ends leftovers', async () => {
    bed = await startBed({vms: [...Array.from({length: 12}, (_, i) => ({name: `vm${i}`, status: 'up' as const, disks: []})), {name: 'with-disk', status: 'up' as const, disks: [{alias: 'd', size: 2 ** 20}]}]});
    bed.sim.faults.unfollowable = ['backups'];
    const vm = bed.sim.vm('with-disk');
    await bed.platform.openBackup(vm.id, {log: bed.log});
    const {restartPlatform} = await import('./helpers.js');
    await restartPlatform(bed);
    bed.sim.apiLog.length = 0;
    const events: string[] = [];
    await bed.platform.cleanupLeftovers((e) => events.push(e.code));
    expect(bed.sim.apiLog.filter((l) => /\/vms\/[^/?]+\/backups$/.test(l.path))).toHaveLength(13);
    expect(events).toContain('leftover-backup-ended');
    expect([...bed.sim.state.backups.values()].every((b) => b.phase !== 'ready')).toBe(true);
  });
});
