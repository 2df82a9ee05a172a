/**
 * Restores into VMs on libvirt (docs/reference/libvirt-backup.md §7); image files on the appliance
 * are the shared target (../targets/files.ts):
 * - 'vm': disk images written on the chosen host (qemu-img create + writable qemu-nbd, reached
 *   over SSH for remote hosts), then the saved domain XML, rewritten (new name, no UUID, new
 *   MACs, new disk paths), is defined there. With overwrite, the original (shut off) is
 *   undefined and the new definition keeps its UUID; the old images are left in place.
 * - 'disks-to-vm': image files in the target VM's storage directory, attached with
 *   `virsh attach-disk --config` under free target names.
 * New images carry no bitmaps, so the first backup of a restored VM is full (§9.22).
 * abort() closes every export and deletes the files created so far (and nothing else).
 */
import {dirname, join} from 'node:path';
import type {CommandRunner} from '../../transports/command-runner.js';
import {assertName} from '../../util/names.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {ImageFileSink, refuseExisting} from '../image/image-file.js';
import {chooseDisks} from '../targets/choose-disks.js';
import {formatBytes} from '../../util/format.js';
import type {DiskSink, Logger, RestorePlan, RestoreSource, VmRestore, VmRestoreTarget} from '../types.js';
import {parseDomainXml} from './domain-xml.js';
import type {LibvirtHost} from './host.js';
import {describeDomain, locateDomain, parseDomState} from './inventory.js';
import {isNvramDisk, MemoryDiskSink, NVRAM_KEY, writePlainFile} from '../image/plain-file.js';
import type {LibvirtPlatform} from './platform.js';
import {rewriteDomainForRestore} from './restore-xml.js';
import {fileSafe} from '../targets/files.js';
import {compactStamp} from '../../util/format.js';

interface Planned {
  key: string;
  size: number;
  format: 'qcow2' | 'raw';
  path: string;
  /** The target dev in the VM the disk ends up in. */
  target: string;
}

/** Where the UEFI variable store of a restore goes (it is collected in memory, then written in finish()). */
interface PlannedNvram {
  key: string;
  size: number;
  /** Decided at open, or in finish() (a replaced VM's varstore path is known only then). */
  path?: string;
  /** Fail when the file exists (a new file); false when it replaces a varstore. */
  exclusive: boolean;
}

/** Where libvirt keeps the UEFI variable stores it creates. */
const LIBVIRT_NVRAM_DIR = '/var/lib/libvirt/qemu/nvram';


function restoredFormat(f: string | undefined): 'qcow2' | 'raw' {
  return f === 'raw' ? 'raw' : 'qcow2';
}

/** The next free virtio target names (vdX) for disks attached to an existing VM. */
export function freeTargets(used: readonly string[], count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 26 * 27; i++) {
    const name = i < 26 ? `vd${String.fromCharCode(97 + i)}` : `vd${String.fromCharCode(96 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`;
    if (!used.includes(name)) out.push(name);
  }
  return out;
}

/**
 * A restore prepared: what it will do (`plan`, shown before the administrator confirms) and the
 * executor that does it (`open`). Preparing only reads the host (the VM's state, directories,
 * names in use) and refuses what the restore would refuse; nothing changes before open().
 */
export interface PreparedRestore {
  plan: RestorePlan;
  open(log: Logger): Promise<VmRestore>;
}

export async function openLibvirtRestore(platform: LibvirtPlatform, source: RestoreSource, target: VmRestoreTarget, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
  return (await prepareLibvirtRestore(platform, source, target, opts)).open(opts.log);
}

export async function prepareLibvirtRestore(
  platform: LibvirtPlatform,
  source: RestoreSource,
  target: VmRestoreTarget,
  opts: {disks?: string[]},
): Promise<PreparedRestore> {
  /** The session log of the restore, once it is opened. */
  let log: Logger = () => {};
  const plan: RestorePlan = {target: '', creates: [], replaces: [], notes: []};
  // A restore point is untrusted input: its disk keys name files and libvirt targets below.
  assertName('objectId', source.vmId, `the restore point of ${source.vmName}`);
  for (const d of source.disks) assertName('diskKey', d.key, `the restore point of ${source.vmName}`);
  // The varstore replaces an existing VM's UEFI variables: only when it was named explicitly.
  const wanted = chooseDisks(source.disks, opts.disks, `The restore point of ${source.vmName}`).filter((d) => !isNvramDisk(d) || target.mode !== 'disks-to-vm' || opts.disks?.includes(d.key));
  const nvramDisk = wanted.find((d) => isNvramDisk(d));
  const disks = wanted.filter((d) => !isNvramDisk(d));
  let nvram: PlannedNvram | undefined = nvramDisk ? {key: nvramDisk.key, size: nvramDisk.size, exclusive: true} : undefined;
  /** Writes the collected varstore bytes (set up with the sinks below). */
  let writeNvram: () => Promise<string | undefined> = async () => undefined;
  /** The varstore file this restore created (abort removes it). */
  let nvramCreated: string | undefined;

  let runner: CommandRunner;
  let host: LibvirtHost;
  let planned: Planned[];
  let finishStep: (files: string[]) => Promise<{vmId?: string; vmName?: string; files?: string[]; replacedFiles?: string[]}>;

  if (target.mode === 'vm') {
    if (source.configuration?.kind !== 'libvirt-domain-xml') {
      throw new UserError(`The restore point of ${source.vmName} has no libvirt domain configuration, so it cannot be restored as a VM.`, {
        hint: 'Restore its disks to files or attach them to an existing VM instead.',
        exitCode: ExitCode.invalidInput,
      });
    }
    const xml = source.configuration.text;
    host = target.host ? platform.host(target.host) : await locateDomain(platform.hosts, source.vmId).catch(() => platform.hosts[0]!);
    const h = host;
    runner = h.runner;
    const existing = await h.virsh(['domstate', target.name], {allowFailure: true});
    let replaceUuid: string | undefined;
    if (existing.exitCode === 0) {
      if (!target.overwrite) {
        throw new UserError(`A VM named ${target.name} already exists on ${h.name}.`, {
          hint: 'Choose another name, or restore with overwrite to replace it (it must be shut off).',
          exitCode: ExitCode.invalidInput,
        });
      }
      if (parseDomState(existing.stdout) !== 'shutoff') {
        throw new UserError(`The VM ${target.name} on ${h.name} is not shut off, so it cannot be replaced.`, {
          hint: 'Shut it down first, then run the restore again.',
          exitCode: ExitCode.invalidInput,
        });
      }
      replaceUuid = (await h.virsh(['domuuid', target.name])).stdout.trim();
      // "The original place" is the backed-up VM itself, found by its UUID: a name that now
      // belongs to another VM (the original was removed, another took its name) is not it.
      if (replaceUuid !== source.vmId) {
        throw new UserError(
          `The VM named ${target.name} on ${h.name} is not the VM this restore point was taken of: its UUID is ${replaceUuid}, the backed-up VM's was ${source.vmId}. It was not replaced.`,
          {
            hint: 'Restore under a new name instead; if you do mean to replace that other VM, remove it yourself first, then restore under its name.',
            exitCode: ExitCode.invalidInput,
          },
        );
      }
    }
    const original = parseDomainXml(xml);
    let replacedImages: string[] = [];
    const stamp = compactStamp();
    planned = disks.map((d) => {
      const src = original.disks.find((x) => x.target === d.key);
      const dir = target.storage ?? (src?.sourcePath && src.type === 'file' ? dirname(src.sourcePath) : '/var/lib/libvirt/images');
      const format = restoredFormat(d.format ?? src?.driverType);
      return {key: d.key, size: d.size, format, path: join(dir, `${fileSafe(target.name)}-${fileSafe(d.key)}-${stamp}.${format}`), target: d.key};
    });
    if (nvram && !original.nvram) nvram = undefined; // a varstore without <nvram> in the XML has nowhere to go
    if (nvram && replaceUuid) {
      // Original place: the replaced VM's own varstore file (libvirt's undefine --nvram removes it first).
      const current = parseDomainXml((await h.virsh(['dumpxml', replaceUuid, '--inactive'])).stdout).nvram?.path;
      if (current) nvram = {...nvram, path: current, exclusive: false};
    }
    if (nvram && !nvram.path) {
      // A new VM: a new file beside the original's varstore, named as libvirt names its own.
      // Another host may not have the original's directory: then libvirt's own varstore directory.
      const beside = original.nvram?.path ? dirname(original.nvram.path) : undefined;
      const dir = beside && (await h.run(['test', '-d', beside], {allowFailure: true})).exitCode === 0 ? beside : LIBVIRT_NVRAM_DIR;
      if ((await h.run(['test', '-d', dir], {allowFailure: true})).exitCode !== 0) {
        throw new UserError(`Neither the original VM's varstore directory nor ${LIBVIRT_NVRAM_DIR} exists on ${h.name}, so its UEFI variables cannot be restored there.`, {
          hint: `Create ${LIBVIRT_NVRAM_DIR} on that host (libvirt's directory for UEFI variable stores), or leave ${NVRAM_KEY} out of the chosen disks.`,
          exitCode: ExitCode.notFound,
        });
      }
      let path = join(dir, `${fileSafe(target.name)}_VARS.fd`);
      if ((await h.run(['test', '-e', path], {allowFailure: true})).exitCode === 0) path = join(dir, `${fileSafe(target.name)}-${stamp}_VARS.fd`);
      nvram.path = path;
    }
    const nvramPath = nvram?.path;
    finishStep = async (files) => {
      const newXml = rewriteDomainForRestore(xml, {
        name: target.name,
        disks: new Map(planned.map((p) => [p.key, {path: p.path, format: p.format}])),
        keepUuid: replaceUuid !== undefined,
        nvramPath,
      });
      const withUuid = replaceUuid ? newXml.replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${replaceUuid}</uuid>`) : newXml;
      const dir = await h.sessionDir('define');
      try {
        await h.writeFile(join(dir, 'domain.xml'), withUuid);
        if (replaceUuid) {
          // The replaced VM's image files (not the ones this restore wrote): kept and named, or removed when asked.
          const oldXml = (await h.virsh(['dumpxml', replaceUuid, '--inactive'])).stdout;
          replacedImages = parseDomainXml(oldXml)
            .disks.filter((x) => x.type === 'file' && x.sourcePath && !planned.some((p) => p.path === x.sourcePath))
            .map((x) => x.sourcePath!);
          await h.virsh(['undefine', replaceUuid, '--checkpoints-metadata', '--nvram']);
        }
        // After the undefine (which removes the old varstore), before the define that names it.
        const written = await writeNvram();
        if (written) files = [...files, written];
        await h.virsh(['define', join(dir, 'domain.xml')]);
      } finally {
        await h.removeScratch(dir);
      }
      const vmId = (await h.virsh(['domuuid', target.name])).stdout.trim();
      log({severity: 'info', code: 'vm-defined', message: `VM ${target.name} defined on ${h.name} (${vmId})`, vm: target.name});
      if (replaceUuid && replacedImages.length > 0) {
        if (target.removeReplaced) {
          for (const path of replacedImages) await h.run(['rm', '-f', '--', path]);
          log({severity: 'info', code: 'vm-replaced', message: `VM ${target.name} was replaced; its old disk images were removed: ${replacedImages.join(', ')}`, vm: target.name});
        } else {
          log({
            severity: 'warning',
            code: 'vm-replaced',
            message: `VM ${target.name} was replaced; its old disk images are still on ${h.name} and take space: ${replacedImages.join(', ')} (remove them once the restored VM is checked)`,
            vm: target.name,
          });
        }
      }
      return {vmId, vmName: target.name, files, ...(replacedImages.length && !target.removeReplaced ? {replacedFiles: replacedImages} : {})};
    };
    if (replaceUuid) {
      plan.target = `its original place: VM "${target.name}" on ${h.name}`;
      plan.replaces.push(`VM "${target.name}" (${replaceUuid}): its definition is replaced; its current disk images are ${target.removeReplaced ? 'removed' : 'kept (remove them once the restored VM is checked)'}`);
    } else {
      plan.target = `a new VM "${target.name}" on ${h.name}`;
      plan.creates.push(`VM "${target.name}" on ${h.name} (a new UUID and new MAC addresses)`);
    }
  } else {
    host = await locateDomain(platform.hosts, target.vmId);
    const h = host;
    runner = h.runner;
    const d = await describeDomain(h, target.vmId);
    const firstFile = d.info.disks.find((x) => x.type === 'file' && x.sourcePath)?.sourcePath;
    const dir = target.storage ?? (firstFile ? dirname(firstFile) : '/var/lib/libvirt/images');
    const targets = freeTargets(d.info.disks.map((x) => x.target), disks.length);
    if (nvram) {
      // Named explicitly: the VM's own varstore is replaced, which is only safe while it is shut off.
      if (!d.info.nvram?.path) {
        throw new UserError(`The VM ${d.info.name} has no UEFI variable store (<nvram> file) to restore ${NVRAM_KEY} into.`, {
          hint: `Leave ${NVRAM_KEY} out of the chosen disks, or restore it to files.`,
          exitCode: ExitCode.invalidInput,
        });
      }
      if (d.state !== 'shutoff') {
        throw new UserError(`The VM ${d.info.name} is ${d.state}: its UEFI variable store can only be replaced while it is shut off.`, {
          hint: `Shut it down first, or leave ${NVRAM_KEY} out of the chosen disks.`,
          exitCode: ExitCode.invalidInput,
        });
      }
      nvram = {...nvram, path: d.info.nvram.path, exclusive: false};
    }
    const stamp = compactStamp();
    planned = disks.map((disk, i) => {
      const format = restoredFormat(disk.format);
      return {
        key: disk.key,
        size: disk.size,
        format,
        path: join(dir, `${fileSafe(d.info.name)}-restored-${fileSafe(source.vmName)}-${fileSafe(disk.key)}-${stamp}.${format}`),
        target: targets[i]!,
      };
    });
    finishStep = async (files) => {
      const written = await writeNvram();
      if (written) {
        files = [...files, written];
        log({severity: 'info', code: 'nvram-restored', message: `the UEFI variable store of ${d.info.name} (${written}) was replaced`, vm: d.info.name, disk: NVRAM_KEY});
      }
      for (const p of planned) {
        await h.virsh(['attach-disk', target.vmId, p.path, p.target, '--driver', 'qemu', '--subdriver', p.format, '--targetbus', 'virtio', '--config']);
        log({severity: 'info', code: 'disk-attached', message: `disk ${p.key} attached to ${d.info.name} as ${p.target} (${p.path})`, vm: d.info.name, disk: p.target});
      }
      return {vmId: target.vmId, vmName: d.info.name, files};
    };
    plan.target = `the existing VM "${d.info.name}" on ${h.name}`;
  }
  for (const p of planned) {
    plan.creates.push(`disk ${p.key}: ${p.format} image ${p.path} (${formatBytes(p.size)})${target.mode === 'disks-to-vm' ? `, attached as ${p.target}` : ''}`);
  }
  if (nvram?.path) (nvram.exclusive ? plan.creates : plan.replaces).push(`UEFI variable store ${nvram.path}`);

  for (const dir of new Set(planned.map((p) => dirname(p.path)))) {
    if ((await runner.run(['test', '-d', dir], {allowFailure: true})).exitCode !== 0) {
      throw new UserError(`The storage directory ${dir} does not exist on ${host.name}.`, {
        hint: 'Choose an existing directory (a mounted datastore or storage pool path) as the restore storage.',
        exitCode: ExitCode.notFound,
      });
    }
  }
  if (nvram?.path && nvram.exclusive) await refuseExisting(runner, nvram.path);
  const h = host;
  const run = runner;
  const plannedDisks = planned;
  const finishWith = finishStep;
  return {
    plan,
    async open(l: Logger): Promise<VmRestore> {
      log = l;
      const sinks: ImageFileSink[] = [];
      const nvramSink = nvram ? new MemoryDiskSink(nvram.key, nvram.size) : undefined;
      writeNvram = async () => {
        if (!nvram?.path || !nvramSink) return undefined;
        const path = nvram.path;
        await writePlainFile(run, path, nvramSink.data, {exclusive: nvram.exclusive, created: () => (nvramCreated = nvram!.exclusive ? path : undefined)});
        log({severity: 'info', code: 'nvram-written', message: `UEFI variable store written to ${nvram.path} (${nvramSink.size} bytes)`, disk: NVRAM_KEY});
        return nvram.path;
      };
      const scratch = await h.sessionDir('restore');
      const removeScratch = async () => {
        await h.removeScratch(scratch).catch(() => {});
      };
      const removeFiles = async () => {
        for (const s of sinks) await run.run(['rm', '-f', '--', s.path], {allowFailure: true});
        if (nvramCreated) await run.run(['rm', '-f', '--', nvramCreated], {allowFailure: true});
      };
      try {
        for (const p of plannedDisks) {
          sinks.push(
            await ImageFileSink.create({
              runner: run,
              path: p.path,
              format: p.format,
              size: p.size,
              key: p.key,
              scratchDir: scratch,
              endpoint: (dir) => h.nbdEndpoint(dir, 'nbd'),
              connect: (ep) => h.connect(ep),
            }),
          );
        }
      } catch (err) {
        await Promise.allSettled(sinks.map((s) => s.close()));
        await removeFiles();
        await removeScratch();
        throw err;
      }

      let done = false;
      const allSinks: DiskSink[] = nvramSink ? [...sinks, nvramSink] : sinks;
      return {
        sinks: allSinks,
        async finish() {
          await Promise.all(sinks.map((s) => s.close()));
          await removeScratch();
          const out = await finishWith(sinks.map((s) => s.path));
          done = true;
          return out;
        },
        async abort() {
          if (done) return;
          done = true;
          await Promise.allSettled(sinks.map((s) => s.close()));
          await removeFiles();
          await removeScratch();
        },
      };
    },
  };
}
