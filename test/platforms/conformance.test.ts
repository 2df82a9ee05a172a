/**
 * The platform conformance suite: the contract of PlatformAdapter (src/platforms/types.ts) in
 * executable form, run through the engine against every platform — the real libvirt adapter on
 * libvirt + QEMU, the oVirt adapter on the simulator, and the in-memory fake the engine tests use
 * (test/lib/memory-platform.ts), which passing here proves a fair stand-in. A new platform adds a
 * bed to BEDS (docs/architecture.md "Adding a platform").
 *
 * Each bed has one VM with one disk the suite writes to as a guest would; the repository is the
 * in-memory one (the storage conformance suite proves it equal to the local directory).
 */
import {execa} from 'execa';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm} from '../../src/engine/backup-vm.js';
import {planRestoreVm, restoreVm} from '../../src/engine/restore-vm.js';
import {LibvirtPlatform} from '../../src/platforms/libvirt/platform.js';
import {OvirtPlatform} from '../../src/platforms/ovirt/platform.js';
import type {PlatformAdapter, VmRestoreTarget} from '../../src/platforms/types.js';
import {createRepositoryOn, MemoryBackend, type Repository} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {createTestVm, destroyTestVm, ensureLibvirt, expireScratchLeases, guestWrite, TEST_PREFIX, virsh, type TestVm} from '../lib/libvirt.js';
import {MemoryPlatform} from '../lib/memory-platform.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';

interface Bed {
  platform: PlatformAdapter;
  vmId: string;
  vmName: string;
  key: string;
  /** A guest write of `length` bytes of `byte` at `offset` into the disk under test. */
  write(offset: number, length: number, byte: number): Promise<void>;
  /** The whole disk `key` of VM `vmId` as its guest would read it. */
  read(vmId: string, key: string): Promise<Buffer>;
  /** A new VM called `name` as a restore target. */
  newVm(name: string): VmRestoreTarget;
  /** The appliance's checkpoints on the VM under test. */
  checkpoints(): Promise<string[]>;
  /** A new adapter, as after a crash of the appliance: the old one's sessions are dead. */
  restart(trusted: string[]): Promise<PlatformAdapter>;
  stop(): Promise<void>;
}

const MiB = 2 ** 20;

const BEDS: {name: string; make: () => Promise<Bed>}[] = [
  {
    name: 'in-memory fake',
    make: async () => {
      const p = new MemoryPlatform();
      const vmId = p.addVm('conformance', [{key: 'vda', size: 16 * MiB}]);
      return {
        platform: p,
        vmId,
        vmName: 'conformance',
        key: 'vda',
        write: async (offset, length, byte) => p.write(vmId, 'vda', offset, Buffer.alloc(length, byte)),
        read: async (id, key) => Buffer.from(p.disk(id, key)),
        newVm: (name) => ({mode: 'vm', name}),
        checkpoints: async () => p.checkpointIds(vmId),
        restart: async () => {
          p.crash();
          return p;
        },
        stop: async () => undefined,
      };
    },
  },
  {
    name: 'oVirt adapter on the simulator',
    make: async () => {
      const sim: Simulator = await startSimulator({delayMs: 5});
      const connect = () => new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 10, phaseTimeoutMs: 30_000});
      let platform = connect();
      const vm = sim.vm('web01');
      const disk = sim.disksOf('web01')[0]!;
      return {
        get platform() {
          return platform;
        },
        vmId: vm.id,
        vmName: vm.name,
        key: disk.id,
        write: async (offset, length, byte) => sim.guestWrite(disk.id, offset, Buffer.alloc(length, byte)),
        read: async (id, key) => {
          const name = sim.vms.find((v) => v.id === id)!.name;
          const d = sim.disksOf(name).find((x) => x.id === key)!;
          return d.image.read(0, d.image.size);
        },
        newVm: (name) => ({mode: 'vm', name}),
        checkpoints: async () => sim.state.checkpoints.filter((c) => c.vmId === vm.id).map((c) => c.id),
        restart: async () => {
          // The old process is gone without a word: its client is simply dropped.
          platform = connect();
          return platform;
        },
        stop: async () => {
          await platform.close().catch(() => undefined);
          await sim.stop();
        },
      } as Bed;
    },
  },
  {
    name: 'libvirt adapter on libvirt + QEMU',
    make: async () => {
      await ensureLibvirt();
      const scratch = await mkdtemp(join(tmpdir(), 'vmb-conformance-'));
      const vm: TestVm = await createTestVm('conformance vm', [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
      const restoredDir = join(vm.dir, 'restored');
      await execa('mkdir', ['-p', restoredDir]);
      let trusted: string[] = [];
      const connect = () =>
        new LibvirtPlatform({
          checkpointPrefix: TEST_PREFIX,
          hosts: [{name: 'local', connection: {kind: 'local'}}],
          scratchDir: scratch,
          trustedCheckpoints: (id) => (id === vm.uuid ? trusted : undefined),
        });
      let platform = connect();
      const made: string[] = [];
      return {
        get platform() {
          return platform;
        },
        vmId: vm.uuid,
        vmName: vm.name,
        key: 'vda',
        write: (offset, length, byte) => guestWrite(vm, 'vda', `write -P ${byte} ${offset} ${length}`),
        read: async (id, key) => {
          if (id === vm.uuid) return readFile(vm.disks.find((d) => d.target === key)!.mirror);
          made.push(id);
          const xml = await virsh('dumpxml', id, '--inactive');
          const path = new RegExp(`<source file='([^']+)'/>\\s*<target dev='${key}'`).exec(xml)?.[1];
          if (!path) throw new Error(`no disk ${key} in the restored VM`);
          const raw = join(scratch, `read-${key}.raw`);
          await execa('qemu-img', ['convert', '-U', '-O', 'raw', path, raw]);
          try {
            return await readFile(raw);
          } finally {
            await rm(raw, {force: true});
          }
        },
        newVm: (name) => ({mode: 'vm', name, storage: restoredDir}),
        checkpoints: async () =>
          (await virsh('checkpoint-list', vm.uuid, '--name'))
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean),
        restart: async (t) => {
          trusted = t;
          await expireScratchLeases(scratch);
          platform = connect();
          return platform;
        },
        stop: async () => {
          await platform.cleanupLeftovers(() => {}).catch(() => undefined);
          for (const id of made) await execa('virsh', ['-c', 'qemu:///system', 'undefine', id, '--checkpoints-metadata'], {reject: false});
          await destroyTestVm(vm);
          await rm(scratch, {recursive: true, force: true});
        },
      } as Bed;
    },
  },
];

describe.each(BEDS)('platform conformance: $name', ({make}) => {
  let bed: Bed;
  let repo: Repository;
  const log = () => {};
  beforeAll(async () => {
    bed = await make();
    repo = await createRepositoryOn(new MemoryBackend(), {chunkSize: 256 * 1024});
  }, 120_000);
  afterAll(async () => {
    await bed?.stop();
  }, 120_000);

  const backup = (full = false) => backupVm({platform: bed.platform, repository: repo, vmId: bed.vmId, vmName: bed.vmName, full, disks: [bed.key]});

  it('inventory describes the VM and its disk; findVm describes the same VM by id or name, and no other', async () => {
    const vm = (await bed.platform.inventory()).find((v) => v.id === bed.vmId);
    expect(vm?.name).toBe(bed.vmName);
    const disk = vm!.disks.find((d) => d.key === bed.key);
    expect(disk?.size).toBeGreaterThan(0);
    expect(typeof disk?.format).toBe('string');
    expect(await bed.platform.findVm(bed.vmId)).toEqual(vm);
    expect(await bed.platform.findVm(bed.vmName)).toEqual(vm);
    expect(await bed.platform.findVm('no such vm')).toBeUndefined();
    expect(await bed.platform.findVm('00000000-0000-4000-8000-00000000dead')).toBeUndefined();
  });

  it('a full backup holds the disk as it was, and a restore to a new VM gives it back bit for bit', async () => {
    await bed.write(MiB, 3 * MiB, 0x5a);
    const before = await bed.read(bed.vmId, bed.key);
    const r = await backup(true);
    expect(r.status, String(r.error)).not.toBe('failed');
    expect(r.incremental).toBe(false);
    expect(r.restorePoint?.checkpoint).toBeDefined();
    expect(await bed.checkpoints()).toContain(r.restorePoint!.checkpoint!.id);
    // Only what is allocated is read: far less than the disk.
    expect(r.disks[bed.key]!.readBytes).toBeLessThan(before.length);

    const restored = await restoreVm({platform: bed.platform, repository: repo, restorePointId: r.restorePoint!.id, target: bed.newVm('conformance-copy')});
    expect(restored.vmId).toBeDefined();
    const inv = (await bed.platform.inventory()).find((v) => v.id === restored.vmId);
    expect(inv?.name).toBe('conformance-copy');
    const key = inv!.disks[0]!.key;
    expect((await bed.read(restored.vmId!, key)).equals(before)).toBe(true);
  });

  it('planRestore says what a restore would create, refuses what it would refuse, and changes nothing', async () => {
    const [point] = await repo.listRestorePoints({vmId: bed.vmId});
    const plan = await planRestoreVm({platform: bed.platform, repository: repo, restorePointId: point!.id, target: bed.newVm('conformance-planned')});
    expect(plan.target).toContain('conformance-planned');
    expect(plan.creates.some((c) => c.includes('conformance-planned'))).toBe(true);
    expect(plan.creates.filter((c) => /^disk /.test(c)).length).toBeGreaterThan(0);
    expect(plan.replaces).toEqual([]);
    const clash = await planRestoreVm({platform: bed.platform, repository: repo, restorePointId: point!.id, target: bed.newVm(bed.vmName)}).catch((e: unknown) => e);
    expect(clash).toBeInstanceOf(UserError);
    expect((clash as UserError).message).toMatch(/already exists/);
    // Nothing made: no VM of the planned name (the whole inventory is not compared: other test
    // files start and remove VMs on the same libvirtd meanwhile), the VM itself still there.
    const after = await bed.platform.inventory();
    expect(after.some((v) => v.name === 'conformance-planned')).toBe(false);
    expect(after.some((v) => v.id === bed.vmId)).toBe(true);
  });

  it('an incremental reads only what the guest wrote since, and restores to the same bytes', async () => {
    await bed.write(8 * MiB, 64 * 1024, 0x21);
    const now = await bed.read(bed.vmId, bed.key);
    const r = await backup();
    expect(r.status, String(r.error)).not.toBe('failed');
    expect(r.incremental).toBe(true);
    expect(r.disks[bed.key]!.readBytes).toBeLessThanOrEqual(2 * MiB);
    expect(r.disks[bed.key]!.unchangedBytes).toBeGreaterThan(0);
    const out = join(await mkdtemp(join(tmpdir(), 'vmb-conf-files-')), 'out');
    try {
      const files = await restoreVm({repository: repo, restorePointId: r.restorePoint!.id, target: {mode: 'disks-to-files', directory: out, format: 'raw'}});
      expect((await readFile(files.files![0]!)).equals(now)).toBe(true);
    } finally {
      await rm(join(out, '..'), {recursive: true, force: true});
    }
  });

  it('an aborted backup leaves no checkpoint and nothing running: the next backup starts', async () => {
    const before = (await bed.checkpoints()).sort();
    const b = await bed.platform.openBackup(bed.vmId, {log});
    expect(b.sources.map((s) => s.key)).toContain(bed.key);
    await b.abort();
    await b.abort(); // twice: harmless
    expect((await bed.checkpoints()).sort()).toEqual(before);
    const again = await bed.platform.openBackup(bed.vmId, {log});
    await again.abort();
  });

  it("a crashed session's backup is ended by the next appliance's cleanupLeftovers; its checkpoint is never built on and gone after the next backup", async () => {
    const trusted = (await repo.listRestorePoints()).flatMap((p) => (p.checkpoint ? [p.checkpoint.id] : []));
    const left = await bed.platform.openBackup(bed.vmId, {log});
    const after = await bed.restart(trusted);
    await after.cleanupLeftovers(log);
    // libvirt deletes it at once; oVirt deletes only the oldest checkpoint of a chain (the engine's
    // rule since 4.4.7), so there it goes when the next backup retires the older ones.
    const next = await backup();
    expect(next.status, String(next.error)).not.toBe('failed');
    expect(next.incremental).toBe(true);
    expect(await bed.checkpoints()).not.toContain(left.checkpoint!.id);
  });

  it('a VM that does not exist is a clear error', async () => {
    const err = await bed.platform.openBackup('00000000-0000-4000-8000-00000000dead', {log}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.notFound);
  });
});
