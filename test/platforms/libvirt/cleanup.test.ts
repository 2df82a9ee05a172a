/**
 * cleanupLeftovers after a simulated crash (backups opened and never completed or aborted, by a
 * platform instance that is then dropped, as a daemon that died would): the leftover backup job,
 * its untrusted checkpoint, the qemu-nbd of a shut-off VM, its bitmap and the scratch directories
 * go; a trusted checkpoint and a foreign checkpoint stay; the next backup works.
 */
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import type {SessionEvent} from '../../../src/platforms/types.js';
import {createTestVm, destroyTestVm, ensureLibvirt, expireScratchLeases, virsh, type TestVm, TEST_PREFIX} from '../../lib/libvirt.js';

const SCRATCH = '/var/tmp/vmbackup-test-cleanup';
let running: TestVm | undefined;
let off: TestVm | undefined;
// Only this file's VMs are managed: other test files run VMs on the same libvirtd meanwhile.
const make = (trusted: string[]) =>
  new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, 
    hosts: [{name: 'local', connection: {kind: 'local'}}],
    scratchDir: SCRATCH,
    trustedCheckpoints: (id) => (id === running?.uuid || id === off?.uuid ? trusted : undefined),
  });

beforeAll(async () => {
  await ensureLibvirt();
  await execa('rm', ['-rf', SCRATCH]);
  running = await createTestVm('cleanup run', [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
  off = await createTestVm('cleanup off', [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
});

afterAll(async () => {
  // Whatever a failed run left (a qemu-nbd holding an image) must not outlive the test.
  await make([]).cleanupLeftovers(() => {}).catch(() => {});
  await destroyTestVm(running);
  await destroyTestVm(off);
});

async function bitmaps(path: string): Promise<string[]> {
  const j = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', path])).stdout) as {'format-specific'?: {data?: {bitmaps?: {name: string}[]}}};
  return (j['format-specific']?.data?.bitmaps ?? []).map((b) => b.name);
}

describe('libvirt adapter, cleanupLeftovers', () => {
  it('removes what a crashed session left and keeps trusted and foreign checkpoints', async () => {
    const first = make([]);
    const kept = await first.openBackup(running!.uuid, {log: () => {}});
    await kept.complete();
    const trustedId = kept.checkpoint!.id;
    await virsh('checkpoint-create-as', running!.uuid, 'morpheus-native-1');

    // The "crash": both backups stay open and their platform instance is dropped.
    const crashed = make([]);
    const leftRunning = await crashed.openBackup(running!.uuid, {baseCheckpoint: kept.checkpoint, log: () => {}});
    const leftOff = await crashed.openBackup(off!.uuid, {log: () => {}});
    expect(await bitmaps(off!.disks[0]!.path)).toEqual([leftOff.checkpoint!.id]);
    const nbdPids = (await execa('pgrep', ['-f', `qemu-nbd.*${SCRATCH}`], {reject: false})).stdout.trim();
    expect(nbdPids).not.toBe('');

    // The crashed sessions' process is the test itself: make their leases those of a dead one.
    await expireScratchLeases(SCRATCH);
    const events: SessionEvent[] = [];
    await make([trustedId]).cleanupLeftovers((e) => events.push(e));
    const codes = events.map((e) => e.code);
    expect(codes).toContain('leftover-job-aborted');
    expect(codes).toContain('leftover-checkpoint-deleted');
    expect(codes).toContain('leftover-export-stopped');
    expect(codes).toContain('leftover-bitmap-removed');
    expect(codes).toContain('leftover-scratch-removed');

    const cps = (await virsh('checkpoint-list', running!.uuid, '--name')).split('\n').map((l) => l.trim()).filter(Boolean).sort();
    expect(cps).toEqual(['morpheus-native-1', trustedId].sort());
    expect(cps).not.toContain(leftRunning.checkpoint!.id);
    expect(await bitmaps(off!.disks[0]!.path)).toEqual([]);
    expect((await execa('pgrep', ['-f', `qemu-nbd.*${SCRATCH}`], {reject: false})).stdout.trim()).toBe('');
    expect((await execa('ls', ['-A', SCRATCH])).stdout.trim()).toBe('');

    // No job is left behind: the next backup of the running VM starts normally.
    const next = await make([trustedId]).openBackup(running!.uuid, {baseCheckpoint: kept.checkpoint, log: () => {}});
    expect(next.sources[0]!.incremental).toBe(true);
    await next.abort();
  });
});
