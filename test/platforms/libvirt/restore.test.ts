/**
 * Restores against real qemu-img / qemu-nbd / libvirtd: a backup is taken of a running VM, its
 * disks captured into raw files (standing in for a restore point), then written back through the
 * adapter's sinks as a new VM, as image files, and as disks attached to an existing VM. Each
 * restored image must be bit-identical to the source at the restore point (qemu-img compare).
 */
import {existsSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {RestoreSource} from '../../../src/platforms/types.js';
import {UserError} from '../../../src/util/errors.js';
import {applySource, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, virsh, writeRawIntoSink, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';
import {filesRestore} from '../../lib/files-target.js';

let vm: TestVm | undefined;
let platform: LibvirtPlatform;
let source: RestoreSource;
const captured = new Map<string, string>();
const restoredVms: string[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm('rs src ünï', [
    {target: 'vda', format: 'qcow2', sizeMiB: 32},
    {target: 'vdb', format: 'raw', sizeMiB: 16},
  ], {start: true});
  await guestWrite(vm, 'vda', 'write -P 0x91 0 1M');
  await guestWrite(vm, 'vda', 'write -P 0x92 17M 300k');
  await guestWrite(vm, 'vdb', 'write -P 0x93 2M 2M');
  const backup = await platform.openBackup(vm.uuid, {log: () => {}});
  for (const s of backup.sources) {
    const out = join(vm.dir, `captured-${s.key}.raw`);
    await applySource(s, out, {create: true});
    captured.set(s.key, out);
  }
  await backup.complete();
  const inv = (await platform.inventory()).find((v) => v.id === vm!.uuid)!;
  source = {
    vmId: vm.uuid,
    vmName: vm.name,
    configuration: backup.configuration,
    disks: inv.disks.map((d) => ({key: d.key, name: d.name, size: d.size, format: d.format})),
  };
});

afterAll(async () => {
  for (const uuid of restoredVms) {
    const xml = await virsh('dumpxml', uuid, '--inactive').catch(() => '');
    await virsh('undefine', uuid, '--checkpoints-metadata').catch(() => '');
    for (const m of xml.matchAll(/<source file='([^']+)'/g)) if (m[1]!.includes('restored') || m[1]!.includes('new')) await import('node:fs/promises').then((fs) => fs.rm(m[1]!, {force: true}));
  }
  await destroyTestVm(vm);
});

describe('libvirt adapter, restore', () => {
  it('writes disks to qcow2 and raw image files that are bit-identical', async () => {
    for (const format of ['qcow2', 'raw'] as const) {
      const dir = join(vm!.dir, `files ${format} 'q'`);
      const restore = await filesRestore(source, {directory: dir, format}, {log: () => {}});
      for (const sink of restore.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
      const {files} = await restore.finish();
      expect(files).toHaveLength(2);
      for (const [i, key] of ['vda', 'vdb'].entries()) {
        const r = await imagesIdentical(files![i]!, vm!.disks.find((d) => d.target === key)!.mirror, format, 'raw');
        expect(r.same, `${format} ${key}: ${r.output}`).toBe(true);
      }
    }
  });

  it('refuses to overwrite an existing file, and abort removes what it created', async () => {
    const dir = join(vm!.dir, 'files qcow2 \'q\'');
    const err = await filesRestore(source, {directory: dir, format: 'qcow2'}, {log: () => {}}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('already exists');

    const dir2 = join(vm!.dir, 'aborted');
    const restore = await filesRestore(source, {directory: dir2, format: 'raw'}, {disks: ['vdb'], log: () => {}});
    const path = (restore.sinks[0] as unknown as {path: string}).path;
    expect(existsSync(path)).toBe(true);
    await restore.abort();
    expect(existsSync(path)).toBe(false);
  });

  it('restores a whole VM under a new name with a new UUID, new MACs and its own disks', async () => {
    const name = `restored "copy" of ${vm!.name}; $x`;
    const missing = await platform.openRestore(source, {mode: 'vm', name, storage: join(vm!.dir, 'new vm')}, {log: () => {}}).catch((e: unknown) => e);
    expect((missing as UserError).message).toContain('does not exist');
    await mkdir(join(vm!.dir, 'new vm'));
    const restore = await platform.openRestore(source, {mode: 'vm', name, storage: join(vm!.dir, 'new vm')}, {log: () => {}});
    for (const sink of restore.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
    const out = await restore.finish();
    restoredVms.push(out.vmId!);
    expect(out.vmName).toBe(name);
    expect(out.vmId).not.toBe(vm!.uuid);
    const xml = await virsh('dumpxml', out.vmId!, '--inactive');
    expect(xml).not.toContain('52:54:00:12:34:56');
    expect(xml).toContain('<mac address=');
    for (const d of vm!.disks) {
      const m = new RegExp(`<source file='([^']+)'/>\\s*<target dev='${d.target}'`).exec(xml);
      expect(m, `disk ${d.target} in the new XML`).not.toBeNull();
      expect(m![1]).not.toBe(d.path);
      const r = await imagesIdentical(m![1]!, d.mirror, d.format, 'raw');
      expect(r.same, `${d.target}: ${r.output}`).toBe(true);
    }
    // Same name again is refused.
    const again = await platform.openRestore(source, {mode: 'vm', name, storage: join(vm!.dir, 'new vm')}, {log: () => {}}).catch((e: unknown) => e);
    expect((again as UserError).message).toContain('already exists');
  });

  it('replaces a shut-off VM when asked to overwrite, keeping its UUID; refuses a running one, and one whose name now belongs to another VM', async () => {
    const name = `overwrite me ${Date.now()}`;
    const dir = join(vm!.dir, 'overwrite');
    await mkdir(dir);
    const first = await platform.openRestore(source, {mode: 'vm', name, storage: dir}, {disks: ['vdb'], log: () => {}});
    for (const sink of first.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
    const {vmId} = await first.finish();
    restoredVms.push(vmId!);

    const refused = await platform.openRestore(source, {mode: 'vm', name, storage: dir}, {log: () => {}}).catch((e: unknown) => e);
    expect((refused as UserError).message).toContain('already exists');

    // The restore point of that VM (its UUID), as a backup of the restored VM would record it.
    const ofIt = {...source, vmId: vmId!};
    await virsh('start', vmId!);
    const running = await platform.openRestore(ofIt, {mode: 'vm', name, storage: dir, overwrite: true}, {log: () => {}}).catch((e: unknown) => e);
    expect((running as UserError).message).toContain('not shut off');
    await virsh('destroy', vmId!);

    // The name now belongs to another VM than the one backed up: "the original place" is refused.
    const other = await platform.openRestore(source, {mode: 'vm', name, storage: dir, overwrite: true}, {log: () => {}}).catch((e: unknown) => e);
    expect((other as UserError).message).toContain(`is not the VM this restore point was taken of: its UUID is ${vmId}, the backed-up VM's was ${source.vmId}`);
    expect(await virsh('domuuid', name)).toContain(vmId!);

    const before = [...(await virsh('dumpxml', vmId!, '--inactive')).matchAll(/<source file='([^']+)'/g)].map((m) => m[1]!);
    const events: {code: string; message: string}[] = [];
    const again2 = await platform.openRestore(ofIt, {mode: 'vm', name, storage: dir, overwrite: true}, {log: (e) => events.push(e)});
    for (const sink of again2.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
    const out = await again2.finish();
    expect(out.vmId).toBe(vmId);
    const xml = await virsh('dumpxml', vmId!, '--inactive');
    expect(xml).toContain(`<target dev='vda'`);
    expect(xml).toContain(`<target dev='vdb'`);
    // The replaced VM's images are kept and named (they take space), never silently left.
    expect(out.replacedFiles).toEqual(before);
    for (const f of before) expect(existsSync(f)).toBe(true);
    expect(events.find((e) => e.code === 'vm-replaced')?.message).toContain(before[0]!);
    // Asked to, a replacement removes them once the new definition is in place.
    const current = [...xml.matchAll(/<source file='([^']+)'/g)].map((m) => m[1]!);
    const third = await platform.openRestore(ofIt, {mode: 'vm', name, storage: dir, overwrite: true, removeReplaced: true}, {log: () => {}});
    for (const sink of third.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
    const done = await third.finish();
    expect(done.replacedFiles).toBeUndefined();
    for (const f of current) expect(existsSync(f)).toBe(false);
  });

  it('attaches restored disks to an existing VM under free targets', async () => {
    const restore = await platform.openRestore(source, {mode: 'disks-to-vm', vmId: vm!.uuid}, {disks: ['vda'], log: () => {}});
    for (const sink of restore.sinks) await writeRawIntoSink(captured.get(sink.key)!, sink);
    const out = await restore.finish();
    const xml = await virsh('dumpxml', vm!.uuid, '--inactive');
    const m = /<source file='([^']+)'\/>\s*<target dev='vdc'/.exec(xml);
    expect(m).not.toBeNull();
    expect(out.files).toEqual([m![1]]);
    const r = await imagesIdentical(m![1]!, vm!.disks[0]!.mirror, 'qcow2', 'raw');
    expect(r.same, r.output).toBe(true);
  });
});
