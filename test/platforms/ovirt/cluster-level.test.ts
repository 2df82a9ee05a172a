/**
 * Clusters below compatibility level 4.5 (simulator: state.ts clusterOf/startBackup, citing
 * StartVmBackupCommand and FeatureSupported): an incremental backup there is all-or-nothing, the
 * engine reports no per-disk backup_mode, and a Down VM cannot be backed up.
 */
import {randomUUID} from 'node:crypto';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {SimImage} from '../../ovirt-sim/image.js';
import {pattern} from '../../ovirt-sim/index.js';
import {readSource, startBed, stopBed, type Bed} from './helpers.js';

const MiB = 2 ** 20;
let bed: Bed;

beforeEach(async () => {
  bed = await startBed({
    vms: [
      {name: 'mixed44', status: 'up', disks: [
        {alias: 'mixed44_os', size: 16 * MiB, format: 'cow', bootable: true, fill: [{offset: 0, length: MiB, seed: 1}]},
        {alias: 'mixed44_raw', size: 8 * MiB, format: 'raw', fill: [{offset: 0, length: MiB, seed: 2}]},
      ]},
      {name: 'cow44', status: 'up', disks: [
        {alias: 'cow44_os', size: 16 * MiB, format: 'cow', bootable: true, fill: [{offset: 0, length: 2 * MiB, seed: 3}]},
        {alias: 'cow44_data', size: 16 * MiB, format: 'cow', fill: [{offset: 4 * MiB, length: MiB, seed: 4}]},
      ]},
      {name: 'down44', status: 'down', disks: [{alias: 'down44_os', size: 8 * MiB, format: 'cow'}]},
    ],
  });
  // A 4.4 cluster whose administrator enabled incremental backup (engine-config IsIncrementalBackupSupported).
  const cluster = bed.sim.state.clusters[0]!;
  cluster.version = {major: 4, minor: 4};
  cluster.incrementalBackup = true;
});
afterEach(async () => {
  await stopBed(bed);
});

async function fullBackup(name: string) {
  const b = await bed.platform.openBackup(bed.sim.vm(name).id, {log: bed.log});
  for (const s of b.sources) await readSource(s);
  await b.complete();
  return b.checkpoint!;
}

describe('oVirt cluster compatibility level 4.4', () => {
  it('a VM with a RAW disk gets a full backup with a warning that says why, not a failed incremental', async () => {
    const cp = await fullBackup('mixed44');
    const b = await bed.platform.openBackup(bed.sim.vm('mixed44').id, {baseCheckpoint: cp, log: bed.log});
    expect(b.sources.every((s) => !s.incremental)).toBe(true);
    const warning = bed.events.find((e) => e.code === 'incremental-not-possible');
    expect(warning?.message).toMatch(/compatibility level 4\.4.*mixed44_raw \(RAW\)/);
    // Planned before asking: the engine never saw an incremental request it would refuse.
    expect(bed.sim.apiLog.filter((l) => l.status === 400)).toHaveLength(0);
    for (const s of b.sources) await readSource(s);
    await b.complete();
  });

  it('an incremental of qcow2 disks reads only changed blocks although the engine reports no backup_mode', async () => {
    const cp = await fullBackup('cow44');
    const [os, data] = bed.sim.disksOf('cow44');
    bed.sim.guestWrite(os!.id, 5 * MiB, pattern(7, 64 * 1024));
    const b = await bed.platform.openBackup(bed.sim.vm('cow44').id, {baseCheckpoint: cp, log: bed.log});
    expect(b.sources.map((s) => s.incremental)).toEqual([true, true]);
    const {reads} = await readSource(b.sources[0]!, os!.image.read(0, os!.image.size));
    expect(reads).toEqual([[5 * MiB, 64 * 1024]]);
    expect((await readSource(b.sources[1]!, data!.image.read(0, data!.image.size))).reads).toEqual([]);
    await b.complete();
  });

  it('a disk added since the last backup makes the next one full, with a warning naming it', async () => {
    const cp = await fullBackup('cow44');
    const vm = bed.sim.vm('cow44');
    const added = {id: randomUUID(), imageId: randomUUID(), alias: 'cow44_new', format: 'cow' as const, sparse: true, backup: 'incremental' as const,
      storageDomainId: bed.sim.state.storageDomains[0]!.id, status: 'ok' as const, image: new SimImage(4 * MiB)};
    bed.sim.state.disks.set(added.id, added);
    vm.attachments.push({diskId: added.id, bootable: false, iface: 'virtio_scsi', active: true});
    const b = await bed.platform.openBackup(vm.id, {baseCheckpoint: cp, log: bed.log});
    expect(b.sources.every((s) => !s.incremental)).toBe(true);
    expect(bed.events.find((e) => e.code === 'incremental-not-possible')?.message).toMatch(/cow44_new was not in the previous backup/);
    for (const s of b.sources) await readSource(s);
    await b.complete();
  });

  it('an engine refusal of an incremental (disks changed under us) becomes a full backup with a warning', async () => {
    const cp = await fullBackup('cow44');
    // The plan saw both disks tracked; incremental backup is switched off on one just before the start.
    const [, data] = bed.sim.disksOf('cow44');
    const client = bed.platform.client;
    const realFind = client.find.bind(client);
    client.find = async (path, query) => {
      const r = await realFind(path, query);
      if (path.endsWith('/disks') && path.includes('/checkpoints/')) bed.sim.state.disk(data!.id).backup = 'none';
      return r;
    };
    const b = await bed.platform.openBackup(bed.sim.vm('cow44').id, {baseCheckpoint: cp, log: bed.log});
    client.find = realFind;
    expect(b.sources.every((s) => !s.incremental)).toBe(true);
    expect(bed.events.find((e) => e.code === 'incremental-not-possible')?.message).toMatch(/Incremental backup is disabled for the following disks/);
    for (const s of b.sources) await readSource(s);
    await b.complete();
  });

  it('a Down VM is refused with the reason and what to do', async () => {
    await expect(bed.platform.openBackup(bed.sim.vm('down44').id, {log: bed.log}))
      .rejects.toThrow(/shut down, and its cluster's compatibility level 4\.4 lets oVirt back up only running VMs/);
    expect(bed.sim.state.backups.size).toBe(0);
  });
});
