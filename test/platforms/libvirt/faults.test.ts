/**
 * Bad input and faults on the libvirt path: each ends in a UserError that says what is wrong,
 * and leaves nothing of ours behind (no checkpoint, no scratch directory, no half-written file).
 */
import {existsSync} from 'node:fs';
import {mkdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {SessionEvent} from '../../../src/platforms/types.js';
import {ExitCode, UserError} from '../../../src/util/errors.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, virsh, writeRawIntoSink, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';
import {filesRestore} from '../../lib/files-target.js';

const SCRATCH = '/var/tmp/vmbackup-test-faults';
let vm: TestVm | undefined;
let platform: LibvirtPlatform;
let tmpfs: string | undefined;

beforeAll(async () => {
  await ensureLibvirt();
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: SCRATCH});
  vm = await createTestVm('faults vm', [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
});

afterAll(async () => {
  if (tmpfs) await execa('umount', [tmpfs], {reject: false});
  await destroyTestVm(vm);
});

async function ours(): Promise<{checkpoints: string[]; scratch: string}> {
  const checkpoints = (await virsh('checkpoint-list', vm!.uuid, '--name')).split('\n').map((l) => l.trim()).filter(Boolean);
  const scratch = (await execa('ls', ['-A', SCRATCH], {reject: false})).stdout.trim();
  return {checkpoints, scratch};
}

describe('libvirt adapter, bad input and faults', () => {
  it('an unknown VM id is a not-found error', async () => {
    const err = await platform.openBackup('00000000-0000-0000-0000-000000000000', {log: () => {}}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.notFound);
  });

  it('an unknown disk in the selection is refused before anything starts', async () => {
    const err = await platform.openBackup(vm!.uuid, {disks: ['vdz'], log: () => {}}).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(ExitCode.notFound);
    expect((err as UserError).message).toContain('vdz');
    expect(await ours()).toEqual({checkpoints: [], scratch: ''});
  });

  it('a job already running on the VM is reported as such, and nothing of ours is left', async () => {
    const dir = join(vm!.dir, 'foreign');
    await mkdir(dir);
    await writeFile(join(dir, 'b.xml'), `<domainbackup mode='pull'><server transport='unix' socket='${dir}/s.sock'/><disks><disk name='vda' type='file'><scratch file='${dir}/s.qcow2'/></disk></disks></domainbackup>`);
    await virsh('backup-begin', vm!.uuid, join(dir, 'b.xml'));
    try {
      const err = await platform.openBackup(vm!.uuid, {log: () => {}}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(ExitCode.locked);
      expect((err as UserError).message).toContain('Another job');
      expect(await ours()).toEqual({checkpoints: [], scratch: ''});
      // The cleanup leaves a job that is not ours alone.
      const events: SessionEvent[] = [];
      await platform.cleanupLeftovers((e) => events.push(e));
      expect(events.filter((e) => e.code === 'leftover-job-aborted')).toEqual([]);
    } finally {
      await virsh('domjobabort', vm!.uuid);
    }
  });

  it('a paused VM is backed up without a freeze', async () => {
    await virsh('suspend', vm!.uuid);
    try {
      const events: SessionEvent[] = [];
      const backup = await platform.openBackup(vm!.uuid, {guestConsistency: true, log: (e) => events.push(e)});
      await backup.abort();
      expect(events.map((e) => e.code)).toContain('guest-paused');
      expect(events.map((e) => e.code)).not.toContain('no-guest-agent');
    } finally {
      await virsh('resume', vm!.uuid);
    }
  });

  it('a restore that runs out of space fails with a clear error, and abort removes the partial file', async () => {
    await guestWrite(vm!, 'vda', 'write -P 0x5e 0 4M');
    const captured = join(vm!.dir, 'captured.raw');
    await execa('sh', ['-c', `head -c 16777216 /dev/urandom > '${captured}'`]);
    tmpfs = join(vm!.dir, 'small');
    await mkdir(tmpfs);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=2M', 'tmpfs', tmpfs]);
    const restore = await filesRestore(
      {vmId: vm!.uuid, vmName: vm!.name, disks: [{key: 'vda', name: 'vda', size: 16 * 1024 * 1024, format: 'qcow2'}]},
      {directory: tmpfs, format: 'raw'},
      {log: () => {}},
    );
    const path = join(tmpfs, 'faults_vm-vda.raw');
    expect(existsSync(path)).toBe(true);
    const err = await writeRawIntoSink(captured, restore.sinks[0]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(String((err as UserError).message)).toMatch(/ENOSPC|space/i);
    await restore.abort();
    expect(existsSync(path)).toBe(false);
  });

  it('warns when the scratch directory has less room than the disks', async () => {
    const small = join(vm!.dir, 'small-scratch');
    await mkdir(small);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=4M', 'tmpfs', small]);
    try {
      const p = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: small});
      const events: SessionEvent[] = [];
      const backup = await p.openBackup(vm!.uuid, {log: (e) => events.push(e)});
      await backup.abort();
      expect(events).toContainEqual(expect.objectContaining({code: 'scratch-space-low', severity: 'warning'}));
    } finally {
      await execa('umount', [small]);
    }
  });

  it('a VM that stops in the middle of a backup: abort still releases everything', async () => {
    const backup = await platform.openBackup(vm!.uuid, {log: () => {}});
    await virsh('destroy', vm!.uuid);
    await backup.abort();
    expect(await ours()).toEqual({checkpoints: [], scratch: ''});
    // The bitmap QEMU stored on exit is ours and recorded by no restore point: cleanup removes it.
    const events: SessionEvent[] = [];
    await new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: SCRATCH, trustedCheckpoints: (id) => (id === vm!.uuid ? [] : undefined)}).cleanupLeftovers((e) => events.push(e));
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', vm!.disks[0]!.path])).stdout) as {'format-specific'?: {data?: {bitmaps?: unknown[]}}};
    expect(info['format-specific']?.data?.bitmaps ?? []).toEqual([]);
  });
});
