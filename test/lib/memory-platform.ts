/**
 * An in-memory platform adapter: VMs whose disks are Buffers, with changed-block tracking per
 * checkpoint, so engine tests run in milliseconds beside the real-component ones.
 *
 * It is a stand-in, and proven like one: test/platforms/conformance.test.ts runs the same
 * platform contract against it, the real libvirt adapter (libvirt + QEMU) and the oVirt adapter
 * on the simulator. What it models, after the libvirt adapter it is closest to:
 *  - a backup creates a checkpoint; complete() keeps it and retires the appliance's older ones
 *    (except those keepCheckpoint() keeps); abort() deletes it;
 *  - extents: a full backup reads allocated (non-zero) blocks and reports the rest as zero; an
 *    incremental reports the blocks written since its base checkpoint as data (or zero when
 *    they read as zeros now) and everything else as unchanged; an unknown base checkpoint means
 *    a full backup with the warning 'checkpoint-lost';
 *  - one backup per VM at a time (a second one is refused, like a libvirt domain job);
 *  - crash(): the open backups become a dead session's leftovers, which cleanupLeftovers() ends;
 *  - restores create a new VM (a name in use is refused) or attach disks to an existing one, only
 *    in finish(); abort() leaves nothing.
 * Faults: failReadsAfter(bytes) makes reads fail once that much was read (a host gone mid-backup).
 */
import {randomUUID} from 'node:crypto';
import {chooseDisks} from '../../src/platforms/targets/choose-disks.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import type {
  BackupOptions,
  DiskSink,
  DiskSource,
  InventoryVm,
  Logger,
  PlatformAdapter,
  RestorePlan,
  RestoreSource,
  SourceExtent,
  VmBackup,
  VmRestore,
  VmRestoreTarget,
} from '../../src/platforms/types.js';

/** Dirty-tracking granularity (libvirt's default bitmap granularity for qcow2: 64 KiB). */
export const BLOCK = 64 * 1024;

interface MemDisk {
  key: string;
  data: Buffer;
}

interface Checkpoint {
  id: string;
  /** Per disk key: the blocks written since this checkpoint was created. */
  dirty: Map<string, Set<number>>;
}

interface MemVm {
  id: string;
  name: string;
  state: 'running' | 'shutoff';
  disks: MemDisk[];
  checkpoints: Checkpoint[];
  /** The backup running on the VM, with whether its session is alive. */
  backup?: {checkpoint: Checkpoint; orphaned: boolean; end: () => void};
}

export class MemoryPlatform implements PlatformAdapter {
  readonly kind = 'libvirt' as const;
  readonly vms: MemVm[] = [];
  private failAfter: number | undefined;
  private readBytes = 0;

  addVm(name: string, disks: {key: string; size: number}[], state: 'running' | 'shutoff' = 'running'): string {
    const id = randomUUID();
    this.vms.push({id, name, state, disks: disks.map((d) => ({key: d.key, data: Buffer.alloc(d.size)})), checkpoints: []});
    return id;
  }

  /** A guest write: changes the disk and marks the blocks dirty in every checkpoint. */
  write(vmId: string, key: string, offset: number, data: Buffer): void {
    const vm = this.vm(vmId);
    const disk = vm.disks.find((d) => d.key === key)!;
    data.copy(disk.data, offset);
    for (const cp of vm.checkpoints) {
      const set = cp.dirty.get(key) ?? new Set<number>();
      for (let b = Math.floor(offset / BLOCK); b * BLOCK < offset + data.length; b++) set.add(b);
      cp.dirty.set(key, set);
    }
  }

  disk(vmId: string, key: string): Buffer {
    return this.vm(vmId).disks.find((d) => d.key === key)!.data;
  }

  checkpointIds(vmId: string): string[] {
    return this.vm(vmId).checkpoints.map((c) => c.id);
  }

  /** The process died: every open backup is a leftover now. */
  crash(): void {
    for (const vm of this.vms) if (vm.backup) vm.backup.orphaned = true;
  }

  failReadsAfter(bytes: number | undefined): void {
    this.failAfter = bytes;
    this.readBytes = 0;
  }

  private vm(id: string): MemVm {
    const vm = this.vms.find((v) => v.id === id);
    if (!vm) throw new UserError(`No VM with id ${id} is defined.`, {hint: 'It may have been removed; refresh the inventory.', exitCode: ExitCode.notFound});
    return vm;
  }

  async inventory(): Promise<InventoryVm[]> {
    return this.vms.map((vm) => ({
      id: vm.id,
      name: vm.name,
      state: vm.state,
      host: 'memory',
      disks: vm.disks.map((d) => ({key: d.key, name: d.key, format: 'qcow2', size: d.data.length, trackable: true})),
    }));
  }

  async findVm(nameOrId: string): Promise<InventoryVm | undefined> {
    return (await this.inventory()).find((v) => v.id === nameOrId || v.name === nameOrId);
  }

  async openBackup(vmId: string, opts: BackupOptions): Promise<VmBackup> {
    const vm = this.vm(vmId);
    if (vm.backup) {
      throw new UserError(`VM ${vm.name} already has a backup job running.`, {hint: 'Wait for it to finish, or clean up what a crashed run left.', exitCode: ExitCode.platformFailed});
    }
    const base = opts.baseCheckpoint ? vm.checkpoints.find((c) => c.id === opts.baseCheckpoint!.id) : undefined;
    if (opts.baseCheckpoint && !base) {
      opts.log({severity: 'warning', code: 'checkpoint-lost', message: `checkpoint ${opts.baseCheckpoint.id} of ${vm.name} is gone; this backup reads every disk in full`, vm: vm.name});
    }
    const checkpoint: Checkpoint = {id: `vmb-${randomUUID().slice(0, 8)}`, dirty: new Map()};
    vm.checkpoints.push(checkpoint);
    const chosen = vm.disks.filter((d) => !opts.disks || opts.disks.includes(d.key));
    // The point in time of the backup: a copy, as a pull backup's copy-before-write gives.
    const sources = chosen.map((d) => this.source(d.key, Buffer.from(d.data), base && !opts.forceFull?.includes(d.key) ? new Set(base.dirty.get(d.key) ?? []) : undefined));
    let ended = false;
    const end = () => {
      ended = true;
      vm.backup = undefined;
    };
    vm.backup = {checkpoint, orphaned: false, end};
    const self = this;
    return {
      vm: (await this.inventory()).find((v) => v.id === vmId)!,
      configuration: {kind: 'memory', text: JSON.stringify({name: vm.name, disks: vm.disks.map((d) => ({key: d.key, size: d.data.length}))})},
      sources,
      checkpoint: {id: checkpoint.id},
      async complete() {
        if (ended) return;
        end();
        vm.checkpoints = vm.checkpoints.filter((c) => c === checkpoint || opts.keepCheckpoint?.(c.id) === true);
      },
      async abort() {
        if (ended) return;
        end();
        vm.checkpoints = vm.checkpoints.filter((c) => c !== checkpoint);
      },
      async explainFailure(err: unknown) {
        return self.vms.includes(vm) ? err : new UserError(`VM ${vm.name} was removed during its backup.`, {exitCode: ExitCode.notFound});
      },
    };
  }

  private source(key: string, image: Buffer, dirty: Set<number> | undefined): DiskSource {
    const self = this;
    const blocks = Math.ceil(image.length / BLOCK);
    const zeros = Buffer.alloc(BLOCK);
    return {
      key,
      size: image.length,
      incremental: dirty !== undefined,
      maxParallelReads: 4,
      maxReadSize: 32 * 2 ** 20,
      async *extents(): AsyncIterable<SourceExtent> {
        let run: SourceExtent | undefined;
        for (let b = 0; b < blocks; b++) {
          const offset = b * BLOCK;
          const length = Math.min(BLOCK, image.length - offset);
          const isZero = image.subarray(offset, offset + length).equals(zeros.subarray(0, length));
          const kind: SourceExtent['kind'] = dirty && !dirty.has(b) ? 'unchanged' : isZero ? 'zero' : 'data';
          if (run && run.kind === kind) run.length += length;
          else {
            if (run) yield run;
            run = {offset, length, kind};
          }
        }
        if (run) yield run;
      },
      async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
        if (offset < 0 || length < 0 || offset + length > image.length) throw new Error(`read(${offset}, ${length}) outside the disk (${image.length})`);
        self.readBytes += length;
        if (self.failAfter !== undefined && self.readBytes > self.failAfter) throw new Error('connection to the host lost while reading');
        const out = into ?? Buffer.allocUnsafe(length);
        image.copy(out, 0, offset, offset + length);
        return out.subarray(0, length);
      },
      async close() {},
    };
  }

  async planRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]}): Promise<RestorePlan> {
    const {disks, existing} = this.checkRestore(source, target, opts);
    return {
      target: existing ? `the existing VM "${existing.name}"` : `a new VM "${(target as {name: string}).name}"`,
      creates: [...(existing ? [] : [`VM "${(target as {name: string}).name}"`]), ...disks.map((d) => `disk ${d.key} (${d.size} bytes)`)],
      replaces: [],
      notes: [],
    };
  }

  private checkRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]}) {
    const disks = chooseDisks(source.disks, opts.disks, `The restore point of ${source.vmName}`);
    if (target.mode === 'vm' && !target.overwrite && this.vms.some((v) => v.name === target.name)) {
      throw new UserError(`A VM named ${target.name} already exists.`, {hint: 'Choose another name.', exitCode: ExitCode.invalidInput});
    }
    return {disks, existing: target.mode === 'disks-to-vm' ? this.vm(target.vmId) : undefined};
  }

  async openRestore(source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
    const {disks, existing} = this.checkRestore(source, target, opts);
    const made = disks.map((d) => ({key: d.key, data: Buffer.alloc(d.size)}));
    const sinks: DiskSink[] = made.map((d) => ({
      key: d.key,
      size: d.data.length,
      startsZeroed: true,
      maxParallelWrites: 4,
      maxWriteSize: 32 * 2 ** 20,
      async write(offset: number, data: Buffer) {
        if (offset + data.length > d.data.length) throw new Error(`write past the end of ${d.key}`);
        data.copy(d.data, offset);
      },
      async zero(offset: number, length: number) {
        d.data.fill(0, offset, offset + length);
      },
      async flush() {},
      async close() {},
    }));
    return {
      sinks,
      finish: async () => {
        if (existing) {
          const used = new Set(existing.disks.map((d) => d.key));
          for (const d of made) {
            let key = d.key;
            for (let n = 1; used.has(key); n++) key = `${d.key}-${n}`;
            used.add(key);
            existing.disks.push({key, data: d.data});
          }
          return {vmId: existing.id, vmName: existing.name};
        }
        const name = (target as {name: string}).name;
        const id = randomUUID();
        this.vms.push({id, name, state: 'shutoff', disks: made, checkpoints: []});
        return {vmId: id, vmName: name};
      },
      // Nothing exists before finish(): there is nothing to remove.
      abort: async () => undefined,
    };
  }

  async cleanupLeftovers(log: Logger): Promise<void> {
    for (const vm of this.vms) {
      if (!vm.backup?.orphaned) continue;
      const cp = vm.backup.checkpoint;
      vm.backup.end();
      vm.checkpoints = vm.checkpoints.filter((c) => c !== cp);
      log({severity: 'info', code: 'leftover-job-aborted', message: `the backup job a crashed session left on ${vm.name} was ended and its checkpoint ${cp.id} deleted`, vm: vm.name});
    }
  }

  async close(): Promise<void> {}
}
