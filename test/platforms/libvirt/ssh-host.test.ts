/**
 * The libvirt adapter reaching its host over SSH (sshd on 127.0.0.1:2222 from the test bed):
 * virsh, qemu-img and qemu-nbd run through the SSH runner, NBD data comes through SSH-forwarded
 * unix sockets. An unknown host key is refused before anything runs.
 */
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {CheckpointRecord, SourceExtent} from '../../../src/platforms/types.js';
import {ExitCode, UserError} from '../../../src/util/errors.js';
import {applySource, copyFile, createTestVm, destroyTestVm, ensureLibvirt, guestWrite, imagesIdentical, writeRawIntoSink, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';
import {ensureSshd, testSshTarget} from '../../lib/sshd.js';

const MiB = 1024 * 1024;
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
const commands: string[] = [];

function sshPlatform(knownHostsFile?: string): LibvirtPlatform {
  const t = testSshTarget(knownHostsFile ? {knownHostsFile} : {});
  return new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, 
    hosts: [{name: 'hvm-1', connection: {kind: 'ssh', host: t.host, port: t.port, user: t.user, identityFile: t.identityFile, knownHostsFile: t.knownHostsFile}}],
    scratchDir: '/var/tmp/vmbackup-test-remote',
    localScratchDir: '/var/tmp/vmbackup-test-appliance',
    commandLog: (l) => { commands.push(l); if (process.env.TRACE) console.log(new Date().toISOString().slice(14, 23), l.slice(0, 150)); },
  });
}

beforeAll(async () => {
  await ensureLibvirt();
  await ensureSshd();
  platform = sshPlatform();
  vm = await createTestVm("ssh vm 'q' ünï", [{target: 'vda', format: 'qcow2', sizeMiB: 32}], {start: true});
});

afterAll(async () => {
  await platform?.close();
  await destroyTestVm(vm);
});

describe('libvirt adapter over SSH', () => {
  it('lists the VM through the SSH runner', async () => {
    const inv = await platform.inventory();
    const mine = inv.find((v) => v.id === vm!.uuid)!;
    expect(mine.name).toBe(vm!.name);
    expect(mine.host).toBe('hvm-1');
    expect(commands.some((c) => c.includes('[root@127.0.0.1:2222] virsh'))).toBe(true);
  });

  it('takes a full and an incremental backup with NBD through forwarded sockets, bit-identical', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x77 0 2M');
    let base: CheckpointRecord | undefined;
    let image = '';
    for (const [i, write] of ['', 'write -P 0x78 12M 64k'].entries()) {
      if (write) await guestWrite(vm!, 'vda', write);
      const backup = await platform.openBackup(vm!.uuid, {baseCheckpoint: base, log: () => {}});
      const src = backup.sources[0]!;
      expect(src.incremental).toBe(i === 1);
      const out = join(vm!.dir, `ssh-restored-${i}.raw`);
      if (src.incremental) await copyFile(image, out);
      const extents: SourceExtent[] = await applySource(src, out, {create: !src.incremental});
      await backup.complete();
      if (i === 1) expect(extents.filter((e) => e.kind !== 'unchanged')).toEqual([{offset: 12 * MiB, length: 64 * 1024, kind: 'data'}]);
      image = out;
      base = backup.checkpoint;
      const r = await imagesIdentical(out, vm!.disks[0]!.mirror);
      expect(r.same, r.output).toBe(true);
    }
    expect(commands.some((c) => c.includes('-N -L'))).toBe(true);
  });

  it('restores a disk to an image on the remote host, bit-identical', async () => {
    const captured = join(vm!.dir, 'ssh-captured.raw');
    const backup = await platform.openBackup(vm!.uuid, {log: () => {}});
    await applySource(backup.sources[0]!, captured, {create: true});
    await backup.abort();
    const restore = await platform.openRestore(
      {vmId: vm!.uuid, vmName: vm!.name, disks: [{key: 'vda', name: 'vda', size: 32 * MiB, format: 'qcow2'}]},
      {mode: 'disks-to-vm', vmId: vm!.uuid, storage: vm!.dir},
      {log: () => {}},
    );
    await writeRawIntoSink(captured, restore.sinks[0]!);
    const out = await restore.finish();
    const r = await imagesIdentical(out.files![0]!, vm!.disks[0]!.mirror, 'qcow2', 'raw');
    expect(r.same, r.output).toBe(true);
  });

  it("closing one platform does not cut another platform's commands on the same host", async () => {
    // Same host, user, key and known_hosts: before each LibvirtHost had its own control socket,
    // the second platform's close() (`ssh -O exit`) ended the master connection that the first
    // one's command was running on (exit 255).
    const other = sshPlatform();
    await other.inventory();
    const running = platform.hosts[0]!.run(['sleep', '1']);
    await new Promise((r) => setTimeout(r, 300));
    await other.close();
    await expect(running).resolves.toMatchObject({exitCode: 0});
  });

  it('refuses a host whose key is not in the known_hosts file', async () => {
    const empty = join(vm!.dir, 'empty_known_hosts');
    await writeFile(empty, '');
    const err = await sshPlatform(empty).inventory().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
    expect((err as UserError).message).toContain('SHA256:');
  });
});
