/**
 * Backup of a shut-off domain (libvirt cannot run a backup job or create a checkpoint on it):
 * persistent qcow2 bitmaps named with the appliance's prefix, added with `qemu-img bitmap --add`
 * before the export, and a read-only `qemu-nbd` per disk, with `--bitmap=<base>` for an
 * incremental (docs/reference/libvirt-backup.md §3.2 option C).
 *
 * The image must not be in use: the backup refuses to start when qemu-img cannot take the write
 * lock (a QEMU or another tool has it open). On shared storage (GFS2/NFS) a VM started on another
 * host during the backup is not detected by that lock; the scheduler must not start VMs then.
 *
 * complete(): stops the exports, removes this appliance's older bitmaps and libvirt records, and
 * tries to redefine the new checkpoint in libvirt (the next running backup redefines it from the
 * saved XML anyway). abort(): stops the exports and removes the new bitmap.
 */
import {CommandError} from '../../transports/command-runner.js';
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import {ExitCode, UserError} from '../../util/errors.js';
import type {BackupOptions, DiskSource, VmBackup} from '../types.js';
import {buildRedefineXml} from './backup-xml.js';
import {resolveOfflineBase} from './base-checkpoint.js';
import {backupDisks, explainVmChange, releaseAll, vmBackup} from './backup-common.js';
import {deleteCheckpoint, listCheckpoints, redefineCheckpoint} from './checkpoints.js';
import {imageInfo} from './image-info.js';
import type {DomainDetails} from './inventory.js';
import {NbdDiskSource} from './nbd-disk-source.js';
import {readNvram} from './nvram.js';
import {planDisks} from './plan.js';
import {isPortInUse, qemuNbdArgv, startQemuNbd, type QemuNbdExport} from '../image/qemu-nbd.js';
import type {LibvirtHost} from './host.js';

export async function openOfflineBackup(d: DomainDetails, opts: BackupOptions, inactiveXml: string): Promise<VmBackup> {
  const {host} = d;
  const uuid = d.info.uuid;
  const vm = d.info.name;
  const disks = backupDisks(d, opts);

  // qemu-img without -U takes the image lock: it fails when anything has the image open (all disks at once).
  const locks = await Promise.all(
    disks.map(({disk}) => host.run(['qemu-img', 'info', '--output=json', ...(disk.driverType ? ['-f', disk.driverType] : []), disk.sourcePath!], {allowFailure: true})),
  );
  for (const [i, {disk}] of disks.entries()) {
    const r = locks[i]!;
    if (r.exitCode !== 0) throw await inUse(host, uuid, vm, `${disk.sourcePath}: ${r.stderr.trim()}`);
  }

  const dir = await host.sessionDir('offline', {vm: uuid});
  const checkpoint = host.naming.newName(new Date(), randomBytes(2).toString('hex'));
  const exports: QemuNbdExport[] = [];
  const sockets: {close(): Promise<void>}[] = [];
  const sources: DiskSource[] = [];
  const added: string[] = [];

  const release = async (removeNew: boolean, afterReleased?: () => Promise<void>) => {
    await releaseAll([
      ...sources.map((s) => () => s.close()),
      ...sockets.map((s) => () => s.close()),
      ...exports.map((e) => () => e.stop()),
      ...(removeNew ? added.map((path) => () => host.run(['qemu-img', 'bitmap', '-f', 'qcow2', '--remove', path, checkpoint])) : []),
      () => host.removeScratch(dir),
    ]);
    await afterReleased?.();
  };

  try {
    const baseBitmaps = resolveOfflineBase(opts.baseCheckpoint, disks.map((x) => x.disk.target));
    const {plans, events} = planDisks({vm, disks: disks.map(({disk, image}) => ({target: disk.target, image})), baseBitmaps, forceFull: opts.forceFull});
    events.forEach(opts.log);

    for (const p of plans) {
      const {disk, image} = disks.find((x) => x.disk.target === p.target)!;
      const path = disk.sourcePath!;
      if (p.bitmap) {
        // Added before qemu-nbd opens the image read-only; recording from now on.
        await host.run(['qemu-img', 'bitmap', '-f', 'qcow2', '--add', path, checkpoint]);
        added.push(path);
      }
      const nbd = await startExport(host, dir, {
        image: path,
        format: image.format,
        exportName: p.target,
        pidFile: join(dir, `${p.target}.qemu-nbd.pid`),
        readOnly: true,
        bitmap: p.mode === 'incremental' ? p.baseBitmap : undefined,
      });
      exports.push(nbd);
      const socket = await host.connect(nbd.endpoint);
      sockets.push(socket);
      sources.push(
        await NbdDiskSource.open({
          key: p.target,
          address: socket.address,
          exportName: p.target,
          dirtyContext: p.mode === 'incremental' ? `qemu:dirty-bitmap:${p.baseBitmap}` : undefined,
          hostRead: host.hostRead(nbd.endpoint, p.target),
        }),
      );
    }

    const checkpointXml = buildRedefineXml({
      name: checkpoint,
      creationTime: Math.floor(Date.now() / 1000),
      description: `vmbackup restore point of ${vm} (shut off)`,
      disks: [
        ...plans.map((p) => ({target: p.target, checkpoint: p.bitmap ? 'bitmap' : 'no', bitmap: p.bitmap ? checkpoint : undefined})),
        ...d.info.disks.filter((x) => !plans.some((p) => p.target === x.target)).map((x) => ({target: x.target, checkpoint: 'no'})),
      ],
    });
    // Shut off: nothing writes the varstore meanwhile.
    const nvram = await readNvram(host, d.info, opts);
    if (nvram) sources.push(nvram.source);
    opts.log({severity: 'info', code: 'offline-export-started', message: `shut-off VM exported read-only with qemu-nbd on ${host.name}, bitmap ${checkpoint} added`, vm});

    return vmBackup({
      d,
      backedUp: plans.map((p) => p.target),
      inactiveXml,
      sources,
      extraDisks: nvram ? [nvram.disk] : [],
      checkpoint: {id: checkpoint, data: {kind: 'qemu-bitmap', xml: checkpointXml, host: host.name}},
      release,
      afterComplete: async () => {
        await dropOlderOwnBitmaps(d, disks.filter((x) => x.image.format === 'qcow2').map((x) => x.disk.sourcePath!), checkpoint, opts);
        const dir2 = await host.sessionDir('redefine');
        try {
          const err = await redefineCheckpoint(host, uuid, checkpointXml, dir2);
          if (err) opts.log({severity: 'info', code: 'checkpoint-deferred', message: `checkpoint ${checkpoint} will be redefined in libvirt at the next backup (${err})`, vm});
        } finally {
          await host.removeScratch(dir2);
        }
      },
    });
  } catch (err) {
    await release(true).catch(() => {});
    // Another process took the image between the lock check and here (two backups started
    // together pass the shared check; only one may add a bitmap): say who, not qemu-img's words.
    if (err instanceof CommandError && /Failed to get .*lock/.test(err.stderr)) throw await inUse(host, uuid, vm, err.stderr);
    // Started (or removed) while its images were being opened: say so, as when it happens during the reads.
    throw await explainVmChange(d, err).catch(() => err);
  }
}

async function inUse(host: DomainDetails['host'], uuid: string, vm: string, detail: string): Promise<UserError> {
  const other = (await host.liveSessionsOf(uuid).catch(() => [])).find((x) => x.tag === 'offline' || x.tag === 'backup');
  if (other) {
    return new UserError(`Another backup of VM ${vm} is running on this appliance (process ${other.pid}); this one did not start.`, {
      hint: 'Wait until it has finished, then run again if you still need another restore point.',
      exitCode: ExitCode.locked,
    });
  }
  return new UserError(`A disk image of shut-off VM ${vm} is in use by another process (${detail.trim()}).`, {
    hint: 'Wait until whatever has it open (another backup, a copy, a VM on another host) is done, then run again.',
    exitCode: ExitCode.locked,
  });
}

/** Removes the appliance's older bitmaps from the images and their records from libvirt. */
async function dropOlderOwnBitmaps(d: DomainDetails, paths: string[], keep: string, opts: BackupOptions): Promise<void> {
  const {host} = d;
  for (const name of await listCheckpoints(host, d.info.uuid)) {
    if (name !== keep && host.naming.isOwn(name) && !opts.keepCheckpoint?.(name)) await deleteCheckpoint(host, d.info.uuid, name, {metadataOnly: true});
  }
  for (const path of paths) {
    for (const b of (await imageInfo(host.runner, path, {shared: false, format: 'qcow2'})).bitmaps) {
      if (b.name !== keep && host.naming.isOwn(b.name) && !opts.keepCheckpoint?.(b.name)) {
        await host.run(['qemu-img', 'bitmap', '-f', 'qcow2', '--remove', path, b.name]);
        opts.log({severity: 'info', code: 'checkpoint-deleted', message: `older bitmap ${b.name} removed from ${path}`, vm: d.info.name});
      }
    }
  }
}

/**
 * Starts a qemu-nbd on a host at a fresh endpoint of the host's NBD transport (the socket
 * `<exportName>.sock` in `dir`, or a random TCP port, retried when taken).
 */
async function startExport(
  host: LibvirtHost,
  dir: string,
  opts: Omit<Parameters<typeof qemuNbdArgv>[0], 'endpoint'>,
): Promise<QemuNbdExport> {
  for (let attempt = 0; ; attempt++) {
    const endpoint = host.nbdEndpoint(dir, opts.exportName);
    try {
      return await startQemuNbd(host.runner, {...opts, endpoint});
    } catch (err) {
      if (attempt < 5 && endpoint.kind === 'tcp' && err instanceof CommandError && isPortInUse(err.stderr)) continue;
      throw err;
    }
  }
}
