/**
 * oVirt restores against the simulator (§8 of docs/reference/ovirt-backup-api.md): a whole VM from its OVF under
 * a new name, single disks into an existing VM, disks to image files, abort, and leftovers of a
 * crashed restore. Every restored disk is compared byte for byte with the disk at backup time.
 */
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import type {DiskSink, RestoreSource, VmBackup} from '../../../src/platforms/types.js';
import {readSource, restartPlatform, startBed, stopBed, type Bed} from './helpers.js';
import {filesRestore} from '../../lib/files-target.js';

let bed: Bed;
let source: RestoreSource;
let images: Map<string, Buffer>;

/** Backs up web01 and keeps what the repository would: the restore source and each disk's bytes. */
async function backupWeb01(): Promise<void> {
  const vm = bed.sim.vm('web01');
  const b: VmBackup = await bed.platform.openBackup(vm.id, {log: bed.log});
  images = new Map();
  for (const s of b.sources) images.set(s.key, (await readSource(s)).image);
  await b.complete();
  source = {
    vmId: b.vm.id, vmName: b.vm.name, configuration: b.configuration,
    disks: b.vm.disks.map((d) => ({key: d.key, name: d.name, size: d.size, format: d.format, details: d.details})),
  };
}

/** Writes an image to a sink the way the engine will: data in 1 MiB pieces, zero runs as zero(). */
async function fill(sink: DiskSink, image: Buffer): Promise<void> {
  const piece = 2 ** 20;
  const jobs: number[] = [];
  for (let o = 0; o < sink.size; o += piece) jobs.push(o);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const o = jobs[next++]!;
      const chunk = image.subarray(o, Math.min(o + piece, sink.size));
      if (chunk.every((b) => b === 0)) await sink.zero(o, chunk.length);
      else await sink.write(o, chunk);
    }
  };
  await Promise.all(Array.from({length: sink.maxParallelWrites}, worker));
  await sink.flush();
}

beforeEach(async () => {
  bed = await startBed();
  await backupWeb01();
  // The original disks change after the backup: the restore must bring back backup-time bytes.
  for (const d of bed.sim.disksOf('web01')) bed.sim.guestWrite(d.id, 0, Buffer.alloc(8192, 0x5a));
});
afterEach(async () => {
  await stopBed(bed);
});

describe('oVirt restore', () => {
  it('restores the whole VM from its OVF under a new name with new ids, bit-identical', async () => {
    const name = `web01 restored 'ü'; x`;
    const r = await bed.platform.openRestore(source, {mode: 'vm', name, storage: 'data2 block', cluster: 'Default', host: 'host1'}, {log: bed.log});
    expect(r.sinks.map((s) => s.key)).toEqual(source.disks.map((d) => d.key));
    for (const s of r.sinks) await fill(s, images.get(s.key)!);
    const res = await r.finish();
    expect(res.vmName).toBe(name);
    expect(res.vmId).not.toBe(source.vmId);
    const vm = bed.sim.vm(name);
    expect(vm.id).toBe(res.vmId);
    expect(vm.hostId).toBe(bed.sim.state.hosts[0]!.id);
    // Imported from the OVF with regenerate_ids (§8.3 option A).
    const post = bed.sim.apiLog.find((l) => l.method === 'POST' && l.path === '/ovirt-engine/api/vms')!;
    expect(post.body).toMatchObject({name, initialization: {configuration: {type: 'ovf'}, regenerate_ids: true}});
    const restored = bed.sim.disksOf(name);
    expect(restored).toHaveLength(2);
    const sd = bed.sim.state.storageDomains.find((s) => s.name === 'data2 block')!;
    for (const [i, d] of restored.entries()) {
      const orig = source.disks[i]!;
      expect(d.id).not.toBe(orig.key); // the originals still exist, so new ids
      expect(d.storageDomainId).toBe(sd.id);
      expect(d.format).toBe(orig.details!.engineFormat);
      expect(d.image.read(0, d.image.size).equals(images.get(orig.key)!)).toBe(true);
    }
    expect(vm.attachments.map((a) => a.bootable)).toEqual([true, false]);
    // The source VM still has its own disks.
    expect(bed.sim.disksOf('web01').map((d) => d.id)).toEqual(source.disks.map((d) => d.key));
  });

  it('a VM whose disks are gone is restored with the original disk ids (auto-attach, gotcha 25)', async () => {
    const web = bed.sim.vm('web01');
    web.status = 'down';
    for (const a of [...web.attachments]) bed.sim.state.deleteDiskNow(a.diskId);
    bed.sim.state.vms.delete(web.id);
    const r = await bed.platform.openRestore(source, {mode: 'vm', name: 'web01'}, {log: bed.log});
    for (const s of r.sinks) await fill(s, images.get(s.key)!);
    await r.finish();
    const restored = bed.sim.disksOf('web01');
    expect(restored.map((d) => d.id).sort()).toEqual(source.disks.map((d) => d.key).sort());
    for (const d of restored) expect(d.image.read(0, d.image.size).equals(images.get(d.id)!)).toBe(true);
    // Attached by the import itself, with the OVF's attachment properties.
    expect(bed.sim.apiLog.filter((l) => l.method === 'POST' && l.path.endsWith('/diskattachments'))).toEqual([]);
    expect(bed.sim.vm('web01').attachments.map((a) => a.bootable)).toEqual([true, false]);
  });

  it('restores a single disk into an existing VM', async () => {
    const raw = source.disks[1]!;
    const target = bed.sim.vm('empty-vm');
    const r = await bed.platform.openRestore(source, {mode: 'disks-to-vm', vmId: target.id}, {disks: [raw.key], log: bed.log});
    expect(r.sinks).toHaveLength(1);
    await fill(r.sinks[0]!, images.get(raw.key)!);
    const res = await r.finish();
    expect(res).toMatchObject({vmId: target.id, vmName: 'empty-vm'});
    const [d] = bed.sim.disksOf('empty-vm');
    expect(d!.format).toBe('raw');
    expect(d!.image.read(0, d!.image.size).equals(images.get(raw.key)!)).toBe(true);
    expect(d!.description).toMatch(/^vmbackup@\S+ restore of web01 disk /);
  });

  it('restores disks to raw and qcow2 files on the appliance', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ovirt restore ü '));
    try {
      const r = await filesRestore(source, {directory: dir, format: 'raw'}, {log: bed.log});
      for (const s of r.sinks) await fill(s, images.get(s.key)!);
      const {files} = await r.finish();
      expect(files).toHaveLength(2);
      for (const [i, f] of files!.entries()) expect((await readFile(f)).equals(images.get(source.disks[i]!.key)!)).toBe(true);
      // Named <VM>-<disk key>.<format>, as for every platform (targets/files.ts).
      expect(files![0]).toBe(join(dir, `web01-${source.disks[0]!.key}.raw`));

      // qcow2 next to the raw files: different names, nothing overwritten.
      const q2 = await filesRestore(source, {directory: dir, format: 'qcow2'}, {disks: [source.disks[0]!.key], log: bed.log});
      await fill(q2.sinks[0]!, images.get(source.disks[0]!.key)!);
      const out = await q2.finish();
      expect(out.files![0]).toMatch(/\.qcow2$/);
      const back = join(dir, 'back.raw');
      await execa('qemu-img', ['convert', '-O', 'raw', out.files![0]!, back]);
      expect((await readFile(back)).equals(images.get(source.disks[0]!.key)!)).toBe(true);
      // A second raw restore into the same directory refuses to overwrite.
      await expect(filesRestore(source, {directory: dir, format: 'raw'}, {log: bed.log}))
        .rejects.toMatchObject({name: 'UserError', message: expect.stringContaining('already exists')});
      expect((await readdir(dir)).sort()).toEqual(['back.raw', ...files!.map((f) => f.slice(dir.length + 1)), out.files![0]!.slice(dir.length + 1)].sort());
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });

  it('an aborted file restore removes the files it created', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ovirt-restore-abort-'));
    try {
      const r = await filesRestore(source, {directory: dir, format: 'qcow2'}, {log: bed.log});
      await r.sinks[0]!.write(0, Buffer.alloc(65536, 3));
      expect(await readdir(dir)).toHaveLength(2);
      await r.abort();
      expect(await readdir(dir)).toEqual([]);
      // A directory that is not there is made (as mkdir -p would); one that cannot be is an error.
      await writeFile(join(dir, 'a-file'), 'x');
      await expect(filesRestore(source, {directory: join(dir, 'a-file', 'sub'), format: 'raw'}, {log: bed.log})).rejects.toThrow(/Not a directory/);
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });

  it('abort() cancels the uploads so the engine deletes the new disks, and creates no VM', async () => {
    const disksBefore = bed.sim.state.disks.size;
    const r = await bed.platform.openRestore(source, {mode: 'vm', name: 'half'}, {log: bed.log});
    await r.sinks[0]!.write(0, images.get(source.disks[0]!.key)!.subarray(0, 2 ** 20));
    await r.abort();
    expect(bed.sim.state.disks.size).toBe(disksBefore);
    expect([...bed.sim.state.vms.values()].some((v) => v.name === 'half')).toBe(false);
    expect([...bed.sim.state.transfers.values()].filter((t) => t.direction === 'upload').every((t) => t.phase === 'finished_failure')).toBe(true);
  });

  it('a crashed restore leaves uploads that cleanupLeftovers cancels (disk removed)', async () => {
    const disksBefore = bed.sim.state.disks.size;
    const r = await bed.platform.openRestore(source, {mode: 'disks-to-vm', vmId: bed.sim.vm('empty-vm').id}, {log: bed.log});
    await r.sinks[0]!.write(0, Buffer.alloc(4096, 1));
    expect(bed.sim.state.disks.size).toBe(disksBefore + 2);
    await restartPlatform(bed);
    await bed.platform.cleanupLeftovers(bed.log);
    expect(bed.events.filter((e) => e.code === 'leftover-restore-removed')).toHaveLength(2);
    expect(bed.sim.state.disks.size).toBe(disksBefore);
  });

  it('cleanup run by a concurrent session leaves a restore in progress alone', async () => {
    const r = await bed.platform.openRestore(source, {mode: 'disks-to-vm', vmId: bed.sim.vm('empty-vm').id}, {log: bed.log});
    await bed.platform.cleanupLeftovers(bed.log);
    for (const s of r.sinks) await fill(s, images.get(s.key)!);
    await r.finish();
    expect(bed.sim.disksOf('empty-vm')).toHaveLength(2);
  });

  it('bad targets are UserErrors that name the problem', async () => {
    await expect(bed.platform.openRestore(source, {mode: 'vm', name: 'web01'}, {log: bed.log}))
      .rejects.toMatchObject({name: 'UserError', exitCode: 17, message: expect.stringContaining('already exists')});
    await expect(bed.platform.openRestore(source, {mode: 'vm', name: 'x', storage: 'nope'}, {log: bed.log}))
      .rejects.toMatchObject({exitCode: 16, message: expect.stringContaining('nope')});
    await expect(bed.platform.openRestore(source, {mode: 'vm', name: 'x', cluster: 'nope'}, {log: bed.log}))
      .rejects.toMatchObject({exitCode: 16});
    await expect(bed.platform.openRestore(source, {mode: 'vm', name: 'x', host: 'nope'}, {log: bed.log}))
      .rejects.toMatchObject({exitCode: 16, message: expect.stringContaining('host "nope"')});
    await expect(bed.platform.openRestore(source, {mode: 'disks-to-vm', vmId: 'nope'}, {log: bed.log}))
      .rejects.toMatchObject({exitCode: 16});
    await expect(bed.platform.openRestore(source, {mode: 'vm', name: 'x'}, {disks: ['nope'], log: bed.log}))
      .rejects.toMatchObject({exitCode: 16});
    // Nothing was created by the refused restores.
    expect([...bed.sim.state.disks.values()].filter((d) => d.description?.startsWith('vmbackup@'))).toEqual([]);
  });
});
