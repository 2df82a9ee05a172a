/**
 * The oVirt adapter's backups against the simulator: full, incremental, raw disks, lost
 * checkpoints, checkpoint housekeeping, a crash in the middle, and abort.
 * Section numbers refer to docs/reference/ovirt-backup-api.md.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {pattern} from '../../ovirt-sim/index.js';
import {readSource, restartPlatform, startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed;
beforeEach(async () => {
  bed = await startBed();
});
afterEach(async () => {
  await stopBed(bed);
});

const MiB = 2 ** 20;

describe('oVirt backup', () => {
  it('inventory lists VMs with tags, placement and disks with format and trackability', async () => {
    const vms = await bed.platform.inventory();
    const web = vms.find((v) => v.name === 'web01')!;
    expect(web.state).toBe('running');
    expect(web.host).toBe('host1');
    expect(web.cluster).toBe('Default');
    expect(web.tags).toEqual(['prod', 'web']);
    expect(web.disks.map((d) => [d.name, d.format, d.size, d.trackable])).toEqual([
      ['web01_os', 'qcow2', 64 * MiB, true],
      ['web01_data', 'raw', 32 * MiB, false],
    ]);
    // One request for all VMs (follow=tags,disk_attachments.disk), not one per VM.
    expect(bed.sim.apiLog.filter((l) => l.path.includes('/diskattachments'))).toEqual([]);
    const db = vms.find((v) => v.name.startsWith('db 01'))!;
    expect(db.name).toBe(`db 01 'quoted'; ünï`);
    expect(db.state).toBe('shutoff');
  });

  it('full backup reads every data extent bit-identical, warns about the raw disk, and ends everything', async () => {
    const vm = bed.sim.vm('web01');
    const [os, data] = bed.sim.disksOf('web01');
    const backup = await bed.platform.openBackup(vm.id, {log: bed.log});
    expect(backup.configuration.kind).toBe('ovf');
    expect(backup.configuration.text).toContain('<ovf:Envelope');
    expect(backup.checkpoint?.id).toBeTruthy();
    expect(backup.sources.map((s) => s.key)).toEqual([os!.id, data!.id]);
    const expected = [os!.image.read(0, os!.image.size), data!.image.read(0, data!.image.size)];
    // Guest writes after the backup started must not show in it (point-in-time export).
    bed.sim.guestWrite(os!.id, 0, Buffer.alloc(4096, 0xee));
    for (const [i, src] of backup.sources.entries()) {
      expect(src.incremental).toBe(false);
      const {image, kinds} = await readSource(src);
      expect(image.equals(expected[i]!)).toBe(true);
      expect(kinds.unchanged).toBe(0);
    }
    // Only allocated data was read: 2 MiB + 640 KiB of the os disk (§6.2 zero extents).
    const osReads = bed.sim.imageioLog.filter((l) => l.op === 'GET' && l.status === 206);
    expect(osReads.length).toBeGreaterThan(0);
    // The raw disk warning, verbatim (feature-inventory: "full scan mode").
    expect(bed.events).toContainEqual(expect.objectContaining({
      severity: 'warning', code: 'raw-disk-full-scan', disk: data!.alias,
      message: `disk ${data!.alias} has RAW format and can be backed up only in full scan mode`,
    }));
    // Transfers asked for download with an explicit inactivity timeout (gotchas 1, 13).
    const creates = bed.sim.apiLog.filter((l) => l.method === 'POST' && l.path.endsWith('/imagetransfers'));
    for (const c of creates) expect(c.body).toMatchObject({direction: 'download', format: 'raw', inactivity_timeout: 600});
    await backup.complete();
    await backup.complete(); // idempotent
    const b = [...bed.sim.state.backups.values()][0]!;
    expect(b.phase).toBe('succeeded');
    expect([...bed.sim.state.transfers.values()].every((t) => t.phase === 'finished_success')).toBe(true);
    // The checkpoint only covers the qcow2 disk (§4.4).
    expect(bed.sim.state.checkpoints.map((c) => c.diskIds)).toEqual([[os!.id]]);
  });

  it('incremental backup reads only the blocks changed since the base checkpoint', async () => {
    const vm = bed.sim.vm('web01');
    const [os, data] = bed.sim.disksOf('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    const base = (await readSource(full.sources[0]!)).image;
    for (const s of full.sources.slice(1)) await readSource(s);
    await full.complete();
    const cp1 = full.checkpoint!;

    // Guest writes: 100 KiB at 3 MiB + 10 KiB (blocks 48 and 49 of 64 KiB), and 1 block zeroed.
    bed.sim.guestWrite(os!.id, 3 * MiB + 10 * 1024, pattern(9, 100 * 1024));
    bed.sim.state.disk(os!.id).image.zero(20 * MiB, 64 * 1024);
    const expected = os!.image.read(0, os!.image.size);
    bed.sim.imageioLog.length = 0;

    const inc = await bed.platform.openBackup(vm.id, {baseCheckpoint: cp1, log: bed.log});
    expect(bed.sim.apiLog.some((l) => l.method === 'POST' && l.path.endsWith('/backups') && (l.body as {from_checkpoint_id?: string}).from_checkpoint_id === cp1.id)).toBe(true);
    const [osSrc, dataSrc] = inc.sources;
    expect(osSrc!.incremental).toBe(true);
    expect(dataSrc!.incremental).toBe(false); // raw disk: backup_mode full (§4.4, gotcha 6)
    const {image, reads, kinds} = await readSource(osSrc!, base);
    expect(image.equals(expected)).toBe(true);
    // Exactly the two dirty 64 KiB blocks were read; the zeroed block was recorded as zero (gotcha 18).
    expect(reads).toEqual([[3 * MiB, 2 * 64 * 1024]]);
    expect(kinds.zero).toBe(64 * 1024);
    expect(bed.sim.imageioLog.some((l) => l.op === 'extents:dirty' && l.status === 200)).toBe(true);
    const rawRead = await readSource(dataSrc!);
    expect(rawRead.image.equals(data!.image.read(0, data!.image.size))).toBe(true);
    await inc.complete();
    // complete() pruned the old own checkpoint; only the new one is left (§7.3).
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toEqual([inc.checkpoint!.id]);
  });

  it('two repositories: a checkpoint another repository builds on is kept, so both stay incremental', async () => {
    const vm = bed.sim.vm('web01');
    const run = async (base: {id: string} | undefined, keep: string[]) => {
      const b = await bed.platform.openBackup(vm.id, {...(base ? {baseCheckpoint: base} : {}), keepCheckpoint: (id) => keep.includes(id), log: bed.log});
      for (const s of b.sources) await readSource(s);
      await b.complete();
      return b;
    };
    // Repository A: full, incremental. Repository B: full, keeping A's newest checkpoint.
    const a1 = await run(undefined, []);
    const a2 = await run(a1.checkpoint, []);
    const b1 = await run(undefined, [a2.checkpoint!.id]);
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toContain(a2.checkpoint!.id);
    // A again: still incremental from its own checkpoint, keeping B's; then B incremental too.
    const a3 = await run(a2.checkpoint, [b1.checkpoint!.id]);
    expect(a3.sources[0]!.incremental).toBe(true);
    expect(bed.events.map((e) => e.code)).not.toContain('checkpoint-lost');
    const b2 = await run(b1.checkpoint, [a3.checkpoint!.id]);
    expect(b2.sources[0]!.incremental).toBe(true);
    // The chain is pruned from its root only up to the first checkpoint still needed.
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toEqual([a3.checkpoint!.id, b2.checkpoint!.id]);
  });

  it('an unknown base checkpoint (400, §4.2) becomes a full backup with a checkpoint-lost warning', async () => {
    const vm = bed.sim.vm('web01');
    const backup = await bed.platform.openBackup(vm.id, {baseCheckpoint: {id: '00000000-0000-4000-8000-000000000000'}, log: bed.log});
    expect(bed.sim.apiLog.some((l) => l.path.endsWith('/backups') && l.status === 400)).toBe(true);
    expect(backup.sources.every((s) => !s.incremental)).toBe(true);
    expect(bed.events).toContainEqual(expect.objectContaining({severity: 'warning', code: 'checkpoint-lost'}));
    await backup.complete();
  });

  it('a checkpoint that vanished (snapshot revert, §4.7) also falls back to full', async () => {
    const vm = bed.sim.vm('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    await full.complete();
    bed.sim.faults.vanishCheckpoint(full.checkpoint!.id);
    const next = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    expect(next.sources[0]!.incremental).toBe(false);
    expect(bed.events.filter((e) => e.code === 'checkpoint-lost')).toHaveLength(1);
    await next.complete();
  });

  it('forceFull reads a tracked disk in full inside an incremental backup', async () => {
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    await full.complete();
    const inc = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, forceFull: [os!.id], disks: [os!.id], log: bed.log});
    expect(inc.sources).toHaveLength(1);
    expect(inc.sources[0]!.incremental).toBe(false);
    const {image} = await readSource(inc.sources[0]!);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    await inc.complete();
  });

  it('abort() finalizes everything and removes the new checkpoint; the base stays usable', async () => {
    const vm = bed.sim.vm('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    await full.complete();
    const inc = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    await inc.sources[0]!.read(0, 4096);
    await inc.abort();
    await inc.abort();
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toEqual([full.checkpoint!.id]);
    expect([...bed.sim.state.transfers.values()].every((t) => t.phase.startsWith('finished'))).toBe(true);
    expect(bed.sim.state.isDuringBackup(vm.id)).toBe(false);
    const again = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    expect(again.sources[0]!.incremental).toBe(true);
    await again.complete();
  });

  it('a crash in the middle: the next session cleans up leftovers and its incremental is correct', async () => {
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    const base = (await readSource(full.sources[0]!)).image;
    await full.complete();
    bed.sim.guestWrite(os!.id, 5 * MiB, pattern(11, 64 * 1024));
    // Session 2 "crashes": the backup and its transfers stay open, the adapter is dropped.
    const crashed = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    await crashed.sources[0]!.read(5 * MiB, 4096);
    bed.sim.guestWrite(os!.id, 7 * MiB, pattern(12, 64 * 1024));
    expect(bed.sim.state.isDuringBackup(vm.id)).toBe(true);
    await restartPlatform(bed);
    await bed.platform.cleanupLeftovers(bed.log);
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'leftover-backup-ended'}));
    expect(bed.sim.state.isDuringBackup(vm.id)).toBe(false);
    expect([...bed.sim.state.transfers.values()].every((t) => t.phase.startsWith('finished'))).toBe(true);

    // The last committed restore point is the full one: its checkpoint is the base.
    const next = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    const {image} = await readSource(next.sources[0]!, base);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    for (const s of next.sources.slice(1)) await readSource(s);
    await next.complete();
    // Both older own checkpoints (the base and the crashed one) were pruned.
    expect(bed.sim.state.vmCheckpoints(vm.id).map((c) => c.id)).toEqual([next.checkpoint!.id]);
  });

  it('a stale own backup that blocks a new one (409, §10.2) is ended and the backup proceeds', async () => {
    const vm = bed.sim.vm(`db 01 'quoted'; ünï`);
    await bed.platform.openBackup(vm.id, {log: bed.log}); // never completed: a crash
    await restartPlatform(bed);
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    expect(bed.sim.apiLog.some((l) => l.path.endsWith('/backups') && l.status === 409)).toBe(true);
    const {image} = await readSource(b.sources[0]!);
    const [disk] = bed.sim.disksOf(vm.name);
    expect(image.equals(disk!.image.read(0, disk!.image.size))).toBe(true);
    await b.complete();
  });

  it('a VM without disks gives a configuration-only backup with a warning', async () => {
    const vm = bed.sim.vm('empty-vm');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    expect(b.sources).toHaveLength(0);
    expect(b.checkpoint).toBeUndefined();
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'no-disks'}));
    await b.complete();
  });

  it('unknown VM and unknown disk keys are UserErrors', async () => {
    await expect(bed.platform.openBackup('no-such-vm', {log: bed.log})).rejects.toMatchObject({name: 'UserError', exitCode: 16});
    const vm = bed.sim.vm('web01');
    await expect(bed.platform.openBackup(vm.id, {disks: ['nope'], log: bed.log})).rejects.toMatchObject({exitCode: 16, message: expect.stringContaining('nope')});
    expect(bed.sim.state.backups.size).toBe(0);
  });

  it("another application's running backup is left alone and reported (409, §10.2)", async () => {
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const foreign = bed.sim.state.startBackup(vm.id, {diskIds: [os!.id], description: 'OtherVendor nightly'});
    while (foreign.phase !== 'ready') await new Promise((r) => setTimeout(r, 5));
    await expect(bed.platform.openBackup(vm.id, {log: bed.log})).rejects.toMatchObject({
      name: 'EngineError', status: 409, exitCode: 23, message: expect.stringContaining('during a backup operation'),
    });
    expect(foreign.phase).toBe('ready');
  });

  it('cleanup leaves backups in progress and other appliances\' backups alone', async () => {
    const vm = bed.sim.vm('web01');
    const running = await bed.platform.openBackup(vm.id, {log: bed.log});
    await bed.platform.cleanupLeftovers(bed.log);
    const {OvirtPlatform} = await import('../../../src/platforms/ovirt/platform.js');
    const other = new OvirtPlatform({url: bed.sim.url, user: bed.sim.user, password: bed.sim.password, caPem: bed.sim.caPem, pollIntervalMs: 10, applianceId: 'other-appliance'});
    await other.cleanupLeftovers(bed.log);
    await other.close();
    expect(bed.events.filter((e) => e.code === 'leftover-backup-ended')).toEqual([]);
    const [os] = bed.sim.disksOf('web01');
    const {image} = await readSource(running.sources[0]!);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    await running.complete();
    expect([...bed.sim.state.backups.values()][0]!.description).toMatch(/^vmbackup@\S+ \d{4}-/);
  });

  it('a disk added after the base checkpoint is read in full inside an incremental (§4.4)', async () => {
    const vm = bed.sim.vm('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    await full.complete();
    const sd = bed.sim.state.storageDomains[0]!;
    const added = bed.sim.state.addDisk({alias: 'web01_new', format: 'cow', backup: 'incremental', provisionedSize: 8 * MiB, storageDomainId: sd.id});
    while (added.status !== 'ok') await new Promise((r) => setTimeout(r, 5));
    added.image.write(MiB, pattern(21, 128 * 1024));
    bed.sim.state.attachDisk(vm.id, {diskId: added.id, bootable: false, iface: 'virtio_scsi', active: true});
    const inc = await bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    const src = inc.sources.find((s) => s.key === added.id)!;
    expect(inc.sources[0]!.incremental).toBe(true);
    expect(src.incremental).toBe(false);
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'disk-full', disk: added.alias}));
    const {image, reads} = await readSource(src);
    expect(image.equals(added.image.read(0, added.image.size))).toBe(true);
    expect(reads).toEqual([[MiB, 128 * 1024]]);
    await inc.complete();
  });
});
