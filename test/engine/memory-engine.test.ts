/**
 * The engine on in-memory stand-ins — the memory platform (test/lib/memory-platform.ts, proven by
 * the platform conformance suite) and the memory storage backend (proven by the storage
 * conformance suite) — for what is about the engine's own logic, in milliseconds: which base it
 * takes, what it reads, what it commits and what it leaves behind when a read fails. The same
 * paths run against libvirt + QEMU and the oVirt simulator in the other engine tests.
 */
import {beforeEach, describe, expect, it} from 'vitest';
import {backupVm} from '../../src/engine/backup-vm.js';
import {restoreVm} from '../../src/engine/restore-vm.js';
import {createRepositoryOn, MemoryBackend, type Repository} from '../../src/repository/index.js';
import {MemoryPlatform} from '../lib/memory-platform.js';

const MiB = 2 ** 20;
let platform: MemoryPlatform;
let repo: Repository;
let vmId: string;

beforeEach(async () => {
  platform = new MemoryPlatform();
  repo = await createRepositoryOn(new MemoryBackend(), {chunkSize: 256 * 1024});
  vmId = platform.addVm('app', [
    {key: 'vda', size: 32 * MiB},
    {key: 'vdb', size: 8 * MiB},
  ]);
  platform.write(vmId, 'vda', 0, Buffer.alloc(2 * MiB, 7));
  platform.write(vmId, 'vdb', 4 * MiB, Buffer.alloc(MiB, 9));
});

const backup = (opts: {full?: boolean} = {}) => backupVm({platform, repository: repo, vmId, vmName: 'app', ...opts});

describe('engine on the in-memory platform and repository', () => {
  it('a full, then an incremental that reads only the changed block, each restorable bit for bit', async () => {
    const full = await backup();
    expect(full.status).toBe('success');
    expect(full.incremental).toBe(false);
    expect(full.disks['vda']!.readBytes).toBe(2 * MiB);
    expect(full.disks['vda']!.zeroBytes).toBe(30 * MiB);

    platform.write(vmId, 'vda', 20 * MiB, Buffer.alloc(1000, 1));
    const incr = await backup();
    expect(incr.incremental).toBe(true);
    expect(incr.restorePoint!.base).toBe(full.restorePoint!.id);
    // One 64 KiB dirty block, read as its 256 KiB chunk.
    expect(incr.disks['vda']!.readBytes).toBe(256 * 1024);
    expect(incr.disks['vdb']!.readBytes).toBe(0);

    const restored = await restoreVm({platform, repository: repo, restorePointId: incr.restorePoint!.id, target: {mode: 'vm', name: 'app-copy'}});
    for (const key of ['vda', 'vdb']) expect(platform.disk(restored.vmId!, key).equals(platform.disk(vmId, key))).toBe(true);
    // The older point still restores its own state.
    const old = await restoreVm({platform, repository: repo, restorePointId: full.restorePoint!.id, target: {mode: 'vm', name: 'app-old'}});
    expect(platform.disk(old.vmId!, 'vda').subarray(20 * MiB, 20 * MiB + 1000).every((b) => b === 0)).toBe(true);
  });

  it('only the newest checkpoint is kept after a backup; an active full reads everything allocated again', async () => {
    await backup();
    const second = await backup();
    expect(platform.checkpointIds(vmId)).toEqual([second.restorePoint!.checkpoint!.id]);
    const full = await backup({full: true});
    expect(full.incremental).toBe(false);
    expect(full.disks['vda']!.readBytes).toBe(2 * MiB);
    expect(full.disks['vda']!.newChunks).toBe(0); // all deduplicated
  });

  it('a read that fails mid-backup: the VM fails, nothing is committed, the new checkpoint is gone, the next backup is incremental from the last good one', async () => {
    const good = await backup();
    platform.write(vmId, 'vda', 10 * MiB, Buffer.alloc(3 * MiB, 3));
    platform.failReadsAfter(MiB);
    const failed = await backup();
    expect(failed.status).toBe('failed');
    expect(String(failed.error)).toMatch(/connection to the host lost/);
    expect((await repo.listRestorePoints()).map((p) => p.id)).toEqual([good.restorePoint!.id]);
    expect(platform.checkpointIds(vmId)).toEqual([good.restorePoint!.checkpoint!.id]);
    expect(platform.vms[0]!.backup).toBeUndefined();

    platform.failReadsAfter(undefined);
    const next = await backup();
    expect(next.status).toBe('success');
    expect(next.restorePoint!.base).toBe(good.restorePoint!.id);
    expect(next.disks['vda']!.readBytes).toBe(3 * MiB);
  });

  it('a base checkpoint the platform lost means a full read, with the warning', async () => {
    await backup();
    platform.vms[0]!.checkpoints = [];
    const r = await backup();
    expect(r.status).toBe('warning');
    expect(r.events.map((e) => e.code)).toContain('checkpoint-lost');
    expect(r.disks['vda']!.readBytes).toBe(2 * MiB);
  });
});
