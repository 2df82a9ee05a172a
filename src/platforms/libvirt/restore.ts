/**
 * Restores on libvirt (libvirt-backup.md §7):
 * - 'vm': disk images written on the chosen host (qemu-img create + writable qemu-nbd, reached
 *   over SSH for remote hosts), then the saved domain XML, rewritten (new name, no UUID, new
 *   MACs, new disk paths), is defined there. With overwrite, the original (shut off) is
 *   undefined and the new definition keeps its UUID; the old images are left in place.
 * - 'disks-to-files': image files on the appliance.
 * - 'disks-to-vm': image files in the target VM's storage directory, attached with
 *   `virsh attach-disk --config` under free target names.
 * New images carry no bitmaps, so the first backup of a restored VM is full (§9.22).
 * abort() closes every export and deletes the files created so far (and nothing else).
 */
import {dirname, join} from 'node:path';
import type {CommandRunner} from '../../transports/command-runner.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {ImageFileSink} from '../image-file.js';
import type {Logger, RestoreSource, RestoreTarget, VmRestore} from '../types.js';
import {parseDomainXml} from './domain-xml.js';
import type {LibvirtHost} from './host.js';
import {describeDomain, locateDomain, parseDomState} from './inventory.js';
import type {LibvirtPlatform} from './platform.js';
import {rewriteDomainForRestore} from './restore-xml.js';

interface Planned {
  key: string;
  size: number;
  format: 'qcow2' | 'raw';
  path: string;
  /** The target dev in the VM the disk ends up in. */
  target: string;
}

export function fileSafe(name: string): string {
  // Keep unicode letters; replace what is awkward in a path or a shell (slashes, quotes, spaces...).
  return name.replace(/[^\p{L}\p{N}._-]+/gu, '_').slice(0, 80) || 'vm';
}

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

export async function openLibvirtRestore(
  platform: LibvirtPlatform,
  source: RestoreSource,
  target: RestoreTarget,
  opts: {disks?: string[]; log: Logger},
): Promise<VmRestore> {
  const chosen = opts.disks ?? source.disks.map((d) => d.key);
  for (const key of chosen) {
    if (!source.disks.some((d) => d.key === key)) {
      throw new UserError(`The restore point of ${source.vmName} has no disk ${key}.`, {
        hint: `Its disks are: ${source.disks.map((d) => d.key).join(', ')}.`,
        exitCode: ExitCode.notFound,
      });
    }
  }
  const disks = source.disks.filter((d) => chosen.includes(d.key));

  let runner: CommandRunner;
  let host: LibvirtHost | undefined;
  let planned: Planned[];
  let finishStep: (files: string[]) => Promise<{vmId?: string; vmName?: string; files?: string[]}>;

  if (target.mode === 'disks-to-files') {
    runner = platform.localRunner;
    const format = target.format;
    planned = disks.map((d) => ({
      key: d.key,
      size: d.size,
      format,
      path: join(target.directory, `${fileSafe(source.vmName)}-${fileSafe(d.key)}.${format}`),
      target: d.key,
    }));
    await runner.run(['mkdir', '-p', '--', target.directory]);
    finishStep = async (files) => ({files});
  } else if (target.mode === 'vm') {
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
    }
    const original = parseDomainXml(xml);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
    planned = disks.map((d) => {
      const src = original.disks.find((x) => x.target === d.key);
      const dir = target.storage ?? (src?.sourcePath && src.type === 'file' ? dirname(src.sourcePath) : '/var/lib/libvirt/images');
      const format = restoredFormat(d.format ?? src?.driverType);
      return {key: d.key, size: d.size, format, path: join(dir, `${fileSafe(target.name)}-${d.key}-${stamp}.${format}`), target: d.key};
    });
    finishStep = async (files) => {
      const newXml = rewriteDomainForRestore(xml, {
        name: target.name,
        disks: new Map(planned.map((p) => [p.key, {path: p.path, format: p.format}])),
        keepUuid: replaceUuid !== undefined,
      });
      const withUuid = replaceUuid ? newXml.replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${replaceUuid}</uuid>`) : newXml;
      const dir = await h.sessionDir('define');
      try {
        await h.writeFile(join(dir, 'domain.xml'), withUuid);
        if (replaceUuid) {
          await h.virsh(['undefine', replaceUuid, '--checkpoints-metadata', '--nvram']);
          opts.log({severity: 'info', code: 'vm-replaced', message: `VM ${target.name} was replaced; its old disk images were left in place`, vm: target.name});
        }
        await h.virsh(['define', join(dir, 'domain.xml')]);
      } finally {
        await h.removeScratch(dir);
      }
      const vmId = (await h.virsh(['domuuid', target.name])).stdout.trim();
      opts.log({severity: 'info', code: 'vm-defined', message: `VM ${target.name} defined on ${h.name} (${vmId})`, vm: target.name});
      return {vmId, vmName: target.name, files};
    };
  } else {
    host = await locateDomain(platform.hosts, target.vmId);
    const h = host;
    runner = h.runner;
    const d = await describeDomain(h, target.vmId);
    const firstFile = d.info.disks.find((x) => x.type === 'file' && x.sourcePath)?.sourcePath;
    const dir = target.storage ?? (firstFile ? dirname(firstFile) : '/var/lib/libvirt/images');
    const targets = freeTargets(d.info.disks.map((x) => x.target), disks.length);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
    planned = disks.map((disk, i) => {
      const format = restoredFormat(disk.format);
      return {
        key: disk.key,
        size: disk.size,
        format,
        path: join(dir, `${fileSafe(d.info.name)}-restored-${fileSafe(source.vmName)}-${disk.key}-${stamp}.${format}`),
        target: targets[i]!,
      };
    });
    finishStep = async (files) => {
      for (const p of planned) {
        await h.virsh(['attach-disk', target.vmId, p.path, p.target, '--driver', 'qemu', '--subdriver', p.format, '--targetbus', 'virtio', '--config']);
        opts.log({severity: 'info', code: 'disk-attached', message: `disk ${p.key} attached to ${d.info.name} as ${p.target} (${p.path})`, vm: d.info.name, disk: p.target});
      }
      return {vmId: target.vmId, vmName: d.info.name, files};
    };
  }

  if (host) {
    for (const dir of new Set(planned.map((p) => dirname(p.path)))) {
      if ((await runner.run(['test', '-d', dir], {allowFailure: true})).exitCode !== 0) {
        throw new UserError(`The storage directory ${dir} does not exist on ${host.name}.`, {
          hint: 'Choose an existing directory (a mounted datastore or storage pool path) as the restore storage.',
          exitCode: ExitCode.notFound,
        });
      }
    }
  }
  const sinks: ImageFileSink[] = [];
  const scratch = host ? await host.sessionDir('restore') : join(platform.localScratchDir, 'restore');
  const removeScratch = async () => {
    if (host) await host.removeScratch(scratch).catch(() => {});
  };
  const removeFiles = async () => {
    for (const s of sinks) await runner.run(['rm', '-f', '--', s.path], {allowFailure: true});
  };
  try {
    if (!host) await runner.run(['mkdir', '-p', '-m', '0700', '--', scratch]);
    for (const p of planned) {
      sinks.push(
        await ImageFileSink.create({
          runner,
          path: p.path,
          format: p.format,
          size: p.size,
          key: p.key,
          scratchDir: scratch,
          endpoint: host ? (dir) => host.nbdEndpoint(dir, 'nbd') : undefined,
          connect: host ? (ep) => host.connect(ep) : undefined,
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
  return {
    sinks,
    async finish() {
      await Promise.all(sinks.map((s) => s.close()));
      await removeScratch();
      const out = await finishStep(sinks.map((s) => s.path));
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
}
