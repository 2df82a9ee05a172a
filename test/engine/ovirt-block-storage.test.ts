/**
 * Restores onto oVirt storage as the real engine and vdsm lay disks out (simulator, state.ts
 * allocationOf and addDisk; imageio.ts PUT): a qcow2 disk on block storage lives in a logical
 * volume sized from initial_size, a thin RAW disk cannot exist on block storage, and a restored
 * disk is as thin as the one backed up (no zeros written, pass_discard as it was).
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {backupVm} from '../../src/engine/backup-vm.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import {OvirtPlatform} from '../../src/platforms/ovirt/platform.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {pattern, startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {qcow2Usage} from '../ovirt-sim/state.js';

const MiB = 2 ** 20;
const GRAIN = 64 * 1024;
let sim: Simulator;
let platform: OvirtPlatform;
let repo: Repository;
let work: string;

beforeEach(async () => {
  sim = await startSimulator({
    delayMs: 5,
    vms: [{
      name: 'thin01', status: 'up', disks: [
        {alias: 'thin01_os', size: 96 * MiB, format: 'cow', bootable: true, passDiscard: true, fill: [{offset: 0, length: 20 * MiB, seed: 11}]},
        {alias: 'thin01_raw', size: 24 * MiB, format: 'raw', sparse: true, fill: [{offset: 2 * MiB, length: 3 * MiB, seed: 12}]},
      ],
    }],
  });
  // A guest that wrote zeros: allocated 64 KiB clusters of zeros inside the data (every fourth one).
  const os = sim.disksOf('thin01')[0]!;
  for (let at = 0; at < 20 * MiB; at += 4 * GRAIN) sim.guestWrite(os.id, at, Buffer.alloc(GRAIN));
  platform = new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 10});
  work = await mkdtemp(join(tmpdir(), 'engine-ovirt-block-'));
  repo = await createRepository(join(work, 'repo'), {chunkSize: MiB});
});
afterEach(async () => {
  await platform?.close();
  await sim?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

async function backupThin01(): Promise<{point: string; bytes: Map<string, Buffer>}> {
  const r = await backupVm({platform, repository: repo, vmId: sim.vm('thin01').id, vmName: 'thin01'});
  expect(r.error).toBeUndefined();
  return {point: r.restorePoint!.id, bytes: new Map(sim.disksOf('thin01').map((d) => [d.id, d.image.read(0, d.image.size)]))};
}

function nonZeroGrains(image: Buffer): number[] {
  const out: number[] = [];
  const zero = Buffer.alloc(GRAIN);
  for (let at = 0; at < image.length; at += GRAIN) if (!image.subarray(at, at + GRAIN).equals(zero.subarray(0, Math.min(GRAIN, image.length - at)))) out.push(at / GRAIN);
  return out;
}

describe('oVirt restore onto block and file storage (simulator with vdsm allocation rules)', () => {
  it('a qcow2 disk with more data than vdsm allocates by default restores onto block storage: initial_size as qemu-img measure gives it', async () => {
    const {point, bytes} = await backupThin01();
    // vdsm allocates one volume utilization chunk to a sparse qcow2 volume without initial_size
    // (2.5 GiB by default; a smaller one here so that 15 MiB of data is "more than the chunk").
    sim.state.volumeChunkBytes = 8 * MiB;
    const [os] = sim.disksOf('thin01');
    const r = await restoreVm({platform, repository: repo, restorePointId: point, disks: [os!.id], target: {mode: 'vm', name: 'thin01-block', storage: 'data2 block'}});
    const restored = sim.disksOf('thin01-block');
    const block = sim.state.storageDomains.find((s) => s.name === 'data2 block')!;
    const cow = restored.find((d) => d.alias === os!.alias)!;
    expect(cow.storageDomainId).toBe(block.id);
    expect(cow.initialSize).toBeGreaterThan(0);
    const body = sim.apiLog.find((l) => l.method === 'POST' && l.path.endsWith('/disks') && (l.body as {alias?: string}).alias === os!.alias)!.body as Record<string, unknown>;
    expect(body.initial_size).toBe(cow.initialSize);
    // The volume holds what was uploaded, and the data is the backed-up data.
    expect(qcow2Usage(cow.image.size, nonZeroGrains(cow.image.read(0, cow.image.size)))).toBeLessThanOrEqual(cow.allocation!);
    expect(cow.image.read(0, cow.image.size).equals(bytes.get(os!.id)!)).toBe(true);
    expect(r.vmName).toBe('thin01-block');
  });

  it('a thin RAW disk restored onto block storage is created preallocated (the engine refuses RAW + sparse there), and its zeros are written', async () => {
    const {point, bytes} = await backupThin01();
    const r = await restoreVm({platform, repository: repo, restorePointId: point, target: {mode: 'vm', name: 'thin01-raw', storage: 'data2 block'}});
    const raw = sim.disksOf('thin01')[1]!;
    const restored = sim.disksOf('thin01-raw').find((d) => d.alias === raw.alias)!;
    expect(restored.format).toBe('raw');
    expect(restored.sparse).toBe(false);
    expect(r.events).toContainEqual(expect.objectContaining({code: 'restore-preallocated', disk: raw.alias}));
    // A preallocated logical volume holds old data: every zero range of the disk is zeroed.
    const transfer = [...sim.state.transfers.values()].find((t) => t.diskId === restored.id)!;
    const ticketZeroed = sim.imageioLog.filter((l) => l.op === 'PATCH:zero').reduce((n, l) => n + (l.length ?? 0), 0);
    expect(ticketZeroed).toBeGreaterThanOrEqual(raw.image.size - 3 * MiB);
    expect(transfer.direction).toBe('upload');
    expect(restored.image.read(0, restored.image.size).equals(bytes.get(raw.id)!)).toBe(true);
  });

  it('a disk restored onto file storage is as thin as the backed-up one: no zeros written, pass_discard as it was', async () => {
    const {point, bytes} = await backupThin01();
    const r = await restoreVm({platform, repository: repo, restorePointId: point, target: {mode: 'vm', name: 'thin01-file', storage: 'data1'}});
    const [os, raw] = sim.disksOf('thin01');
    const restored = sim.disksOf('thin01-file');
    const cow = restored.find((d) => d.alias === os!.alias)!;
    // Allocated: only the clusters that hold data (the source also had allocated zero clusters).
    const dataBlocks = [...cow.image.blocks.values()].filter((b) => b !== 'zero').length;
    expect(dataBlocks).toBe(nonZeroGrains(bytes.get(os!.id)!).length);
    expect(dataBlocks).toBeLessThan([...os!.image.blocks.values()].filter((b) => b !== 'zero').length);
    // A new disk on file storage reads as zeros: no zero requests at all.
    expect(sim.imageioLog.filter((l) => l.op === 'PATCH:zero')).toHaveLength(0);
    expect(cow.image.read(0, cow.image.size).equals(bytes.get(os!.id)!)).toBe(true);
    const thinRaw = restored.find((d) => d.alias === raw!.alias)!;
    expect(thinRaw.sparse).toBe(true);
    expect(thinRaw.image.read(0, thinRaw.image.size).equals(bytes.get(raw!.id)!)).toBe(true);
    const vm = sim.vm('thin01-file');
    expect(vm.attachments.find((a) => a.diskId === cow.id)!.passDiscard).toBe(true);
    expect(vm.attachments.find((a) => a.diskId === thinRaw.id)!.passDiscard ?? false).toBe(false);
    expect(r.vmId).toBe(vm.id);
  });
});
