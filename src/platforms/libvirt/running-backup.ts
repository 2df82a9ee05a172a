/**
 * Backup of a running domain: `virsh backup-begin` in pull mode with a new checkpoint of the
 * appliance's prefix, each disk read over NBD from a unix socket in a per-session directory on
 * the host (forwarded over SSH for remote hosts).
 *
 * Life cycle (docs/reference/libvirt-backup.md §1.5, §9.1-2): the checkpoint exists as soon as backup-begin
 * returns, so every failure after it aborts the job AND deletes that checkpoint. complete() ends
 * the job, keeps the new checkpoint and deletes this appliance's older ones (never others');
 * abort() ends the job and deletes the new checkpoint. Both are idempotent and always release
 * the job, the tunnel and the scratch directory.
 */
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import type {BackupOptions, DiskSource, VmBackup} from '../types.js';
import {buildBackupXml, buildCheckpointXml} from './backup-xml.js';
import {resolveRunningBase} from './base-checkpoint.js';
import {abortJob, deleteCheckpoint, dumpCheckpoint, listCheckpoints, lookupCheckpoint} from './checkpoints.js';
import {withGuestFrozen} from './guest-freeze.js';
import {isPortInUse, type LibvirtHost, type NbdEndpoint} from './host.js';
import type {NbdAddress} from '../../transports/nbd/index.js';
import type {DomainDetails} from './inventory.js';
import {NbdDiskSource} from './nbd-disk-source.js';
import {planDisks, type DiskPlan} from './plan.js';
import {CommandError} from '../../transports/command-runner.js';
import {anotherJobError, explainBackupBeginError, isBrokenBitmapChain, parseDfAvail} from './job-errors.js';
import {backupDisks, explainVmChange, releaseAll, vmBackup} from './backup-common.js';
import {readNvram} from './nvram.js';

export async function openRunningBackup(d: DomainDetails, opts: BackupOptions, inactiveXml: string): Promise<VmBackup> {
  const {host} = d;
  const uuid = d.info.uuid;
  const vm = d.info.name;
  const disks = backupDisks(d, opts);
  const dir = await host.sessionDir('backup', {vm: uuid});
  const checkpoint = host.naming.newName(new Date(), randomBytes(2).toString('hex'));
  const sources: DiskSource[] = [];
  let connection: {address: NbdAddress; close(): Promise<void>} | undefined;
  let jobStarted = false;

  // `afterReleased` (older checkpoints deleted) needs the job gone, not the scratch directory:
  // the two run together once every other step succeeded.
  const release = async (deleteNew: boolean, afterReleased?: () => Promise<void>) => {
    let failure: {reason: unknown} | undefined;
    await releaseAll([
      ...sources.map((s) => () => s.close()),
      () => connection?.close(),
      async () => {
        if (jobStarted) await abortJob(host, uuid);
      },
      async () => {
        // If the VM stopped meanwhile libvirt may refuse the full delete: drop the record at
        // least; the bitmap left in the image is removed by cleanupLeftovers (not trusted).
        if (jobStarted && deleteNew) {
          await deleteCheckpoint(host, uuid, checkpoint).catch(() => deleteCheckpoint(host, uuid, checkpoint, {metadataOnly: true}));
        }
      },
    ]).catch((reason: unknown) => {
      failure = {reason};
    });
    const [scratch, after] = await Promise.allSettled([host.removeScratch(dir), failure ? undefined : afterReleased?.()]);
    if (failure) throw failure.reason;
    if (scratch.status === 'rejected') throw scratch.reason;
    if (after.status === 'rejected') throw after.reason;
  };

  try {
    // Read-only look-ups, run together: the job state, the base checkpoint, the scratch space.
    const lookup = opts.baseCheckpoint ? lookupCheckpoint(host, uuid, opts.baseCheckpoint.id) : undefined;
    lookup?.catch(() => undefined); // awaited below; a failure there must not go unhandled meanwhile
    const [job] = await Promise.all([
      host.virsh(['domjobinfo', uuid], {allowFailure: true}),
      warnIfScratchSmall(d, dir, disks.reduce((n, x) => n + x.image.virtualSize, 0), opts),
      lookup,
    ]);
    // Fail fast: backup-begin would wait 30 s for the job lock before saying the same.
    const jobType = /Job type:\s*(\S+)/.exec(job.stdout)?.[1];
    if (jobType && jobType !== 'None') throw anotherJobError(vm, host.name, job.stdout.replace(/\s+/g, ' ').trim());
    let baseBitmaps = await resolveRunningBase(host, uuid, vm, opts.baseCheckpoint, dir, opts.log, d.info.disks.map((x) => x.target), lookup);
    let endpoint = host.nbdEndpoint(dir, 'nbd');
    let plans: DiskPlan[] = [];
    for (let attempt = 0; ; attempt++) {
      const planned = planDisks({
        vm,
        disks: disks.map(({disk, image}) => ({target: disk.target, image})),
        baseBitmaps,
        forceFull: opts.forceFull,
        bitmapUsable: () => true,
      });
      plans = planned.plans;
      const anyIncremental = plans.some((p) => p.mode === 'incremental');
      await writeJobXml(d, dir, endpoint, checkpoint, plans, anyIncremental ? opts.baseCheckpoint!.id : undefined);
      try {
        if (attempt === 0 && opts.guestConsistency && d.state === 'paused') {
          opts.log({severity: 'info', code: 'guest-paused', message: `${vm} is paused: its filesystems are not frozen (nothing runs in the guest)`, vm});
        }
        await withGuestFrozen(host, uuid, vm, opts.guestConsistency === true && d.state === 'running', opts.log, async () => {
          await host.virsh(['backup-begin', uuid, join(dir, 'backup.xml'), join(dir, 'checkpoint.xml')]);
          jobStarted = true;
        });
        planned.events.forEach(opts.log);
        break;
      } catch (err) {
        // libvirt validates the bitmap chain here (VIR_ERR_CHECKPOINT_INCONSISTENT): go full once.
        if (attempt === 0 && anyIncremental && err instanceof CommandError && isBrokenBitmapChain(err.stderr)) {
          opts.log({
            severity: 'warning',
            code: 'checkpoint-lost',
            message: `the bitmaps of checkpoint ${opts.baseCheckpoint!.id} are missing or broken (${err.stderr.trim()}); this backup is full`,
            vm,
          });
          baseBitmaps = undefined;
          continue;
        }
        // TCP: the random port was taken (another export, another service): try another one.
        if (attempt < 5 && endpoint.kind === 'tcp' && err instanceof CommandError && isPortInUse(err.stderr)) {
          endpoint = host.nbdEndpoint(dir, 'nbd');
          continue;
        }
        if (err instanceof CommandError) throw explainBackupBeginError(vm, host.name, err.stderr) ?? err;
        throw err;
      }
    }
    opts.log({severity: 'info', code: 'backup-job-started', message: `backup job started on ${host.name} with checkpoint ${checkpoint}`, vm});

    // The new checkpoint's XML is read while the exports are opened; both settle before going on,
    // so that release() sees every source that was opened.
    const [dumped, exportsOpened] = await Promise.allSettled([
      dumpCheckpoint(host, uuid, checkpoint),
      (async () => {
        connection = await host.connect(endpoint);
        const address = connection.address;
        const opened = await Promise.allSettled(
          plans.map((p) =>
            NbdDiskSource.open({
              key: p.target,
              address,
              exportName: p.target,
              dirtyContext: p.mode === 'incremental' ? `qemu:dirty-bitmap:backup-${p.target}` : undefined,
              hostRead: host.hostRead(endpoint, p.target),
            }),
          ),
        );
        // Keep every opened one (release closes them), in disk order; then report a failure.
        for (const r of opened) if (r.status === 'fulfilled') sources.push(r.value);
        const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      })(),
    ]);
    if (exportsOpened.status === 'rejected') throw exportsOpened.reason;
    if (dumped.status === 'rejected') throw dumped.reason;
    const savedXml = dumped.value;
    // Right after backup-begin (the disks' point in time); see nvram.ts on its consistency.
    const nvram = await readNvram(host, d.info, opts);
    if (nvram) sources.push(nvram.source);

    return vmBackup({
      d,
      backedUp: plans.map((p) => p.target),
      inactiveXml,
      sources,
      extraDisks: nvram ? [nvram.disk] : [],
      checkpoint: {id: checkpoint, data: {kind: 'libvirt-checkpoint', xml: savedXml, host: host.name}},
      release,
      // Older checkpoints of ours only: each one is a bitmap that every guest write updates.
      afterComplete: async () => {
        for (const name of await listCheckpoints(host, uuid)) {
          if (name !== checkpoint && host.naming.isOwn(name) && !opts.keepCheckpoint?.(name)) {
            await deleteCheckpoint(host, uuid, name).catch(async () => deleteCheckpoint(host, uuid, name, {metadataOnly: true}));
            opts.log({severity: 'info', code: 'checkpoint-deleted', message: `older checkpoint ${name} deleted`, vm});
          }
        }
      },
    });
  } catch (err) {
    await release(true).catch(() => {});
    // Destroyed while its exports were being opened: say so, as when it goes during the reads.
    throw jobStarted ? await explainVmChange(d, err).catch(() => err) : err;
  }
}

/** Writes backup.xml and checkpoint.xml for backup-begin into the session directory. */
async function writeJobXml(d: DomainDetails, dir: string, server: NbdEndpoint, checkpoint: string, plans: DiskPlan[], incremental: string | undefined): Promise<void> {
  const host: LibvirtHost = d.host;
  const others = d.info.disks.filter((x) => !plans.some((p) => p.target === x.target)).map((x) => x.target);
  const backupXml = buildBackupXml({
    incremental,
    server,
    disks: plans.map((p) => ({
      target: p.target,
      type: d.info.disks.find((x) => x.target === p.target)!.type,
      mode: p.mode,
      scratchFile: join(dir, `${p.target}.scratch.qcow2`),
      bitmap: p.bitmap,
    })),
    skip: others,
  });
  const checkpointXml = buildCheckpointXml({
    name: checkpoint,
    description: `vmbackup restore point of ${d.info.name}`,
    disks: [...plans.map((p) => ({target: p.target, bitmap: p.bitmap})), ...others.map((target) => ({target, bitmap: false}))],
  });
  await Promise.all([host.writeFile(join(dir, 'backup.xml'), backupXml), host.writeFile(join(dir, 'checkpoint.xml'), checkpointXml)]);
}


/**
 * The pull job's scratch files grow by what the guest overwrites during the backup, up to the
 * disks' size (§1.2); a full scratch file fails the backup. Warn when that could happen.
 */
async function warnIfScratchSmall(d: DomainDetails, dir: string, diskBytes: number, opts: BackupOptions): Promise<void> {
  const df = await d.host.run(['df', '-B1', '--output=avail', '--', dir], {allowFailure: true});
  const avail = parseDfAvail(df.stdout);
  if (avail !== undefined && avail < diskBytes) {
    opts.log({
      severity: 'warning',
      code: 'scratch-space-low',
      message: `only ${Math.floor(avail / 2 ** 20)} MiB are free for scratch files in ${d.host.scratchDir} on ${d.host.name} (the disks hold ${Math.floor(diskBytes / 2 ** 20)} MiB); heavy guest writes during the backup could fill it and fail the backup`,
      vm: d.info.name,
    });
  }
}
