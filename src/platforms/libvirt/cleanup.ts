/**
 * Finds and removes what this appliance left behind on a libvirt host after a crash or a kill
 * (run by the daemon's start-up reconciler). Only things that are provably ours are touched:
 * - session directories in the appliance's scratch directory on the host that no session of
 *   this process uses: the qemu-nbd processes named by their pid files are ended (after checking
 *   that the pid is a qemu-nbd), then the directory (sockets, scratch files, XML) is removed;
 * - backup jobs whose NBD socket lies in that scratch directory: domjobabort;
 * - checkpoints and qcow2 bitmaps with the appliance's prefix that no committed restore point
 *   recorded (only when the caller says which are trusted; without that list none are deleted);
 * anything else (foreign checkpoints, jobs started by others) is left alone. Every action is logged.
 */
import {join} from 'node:path';
import type {Logger} from '../types.js';
import {parseXml, attr, child} from './xml.js';
import {abortJob, deleteCheckpoint, listCheckpoints} from './checkpoints.js';
import type {LibvirtHost} from './host.js';
import {leaseAlive, SELF_LEASE} from '../../util/process-lease.js';
import {describeDomain, listDomainUuids} from './inventory.js';
import {stopByPidFile} from '../image/qemu-nbd.js';

/**
 * Checkpoint ids that committed restore points recorded for a VM; every other checkpoint or bitmap
 * of ours on that VM may go. `undefined` means the appliance does not manage this VM: leave it.
 */
export type TrustedCheckpoints = (vmId: string) => Promise<readonly string[] | undefined> | readonly string[] | undefined;

/** The unix socket of a running backup job (`virsh backup-dumpxml`), if it has one. */
export function backupJobSocket(xml: string): string | undefined {
  return attr(child(child(parseXml(xml), 'domainbackup'), 'server'), 'socket');
}

export async function cleanupHost(host: LibvirtHost, trusted: TrustedCheckpoints | undefined, log: Logger): Promise<void> {
  const info = (message: string, code: string, vm?: string) => log({severity: 'info', code, message: `${host.name}: ${message}`, ...(vm ? {vm} : {})});

  // Whether a session directory is a leftover: ours (this appliance's marker) and its process gone.
  const leases = new Map<string, Promise<boolean>>();
  const leftover = (dir: string): Promise<boolean> => {
    let p = leases.get(dir);
    if (!p) {
      p = (async () => {
        if (host.activeScratch.has(dir)) return false;
        const marker = await host.sessionMarker(dir);
        if (!marker) return false; // no marker: not provably ours
        // A marker without a lease is an older vmbackup's: ours, and its process is long gone.
        if (!marker.lease) return true;
        if (marker.lease.host !== SELF_LEASE.host) return false; // another appliance's session
        return !leaseAlive(marker.lease);
      })();
      leases.set(dir, p);
    }
    return p;
  };
  const sessionDirOf = (path: string): string | undefined => {
    if (!path.startsWith(`${host.scratchDir}/`)) return undefined;
    const first = path.slice(host.scratchDir.length + 1).split('/')[0];
    return first ? join(host.scratchDir, first) : undefined;
  };

  // Only inside a scratch directory that passes its owner and mode check, and only directories
  // that carry the appliance's marker with a dead lease: nothing a local user planted there,
  // nothing a live CLI run or another appliance uses, is acted on.
  const rootOk = await host.ensureScratchRoot().then(
    () => true,
    (err: unknown) => {
      log({severity: 'warning', code: 'scratch-untrusted', message: `${host.name}: ${(err as Error).message} Leftovers there were not cleaned up.`});
      return false;
    },
  );
  const leftoverDirs: string[] = [];
  for (const entry of rootOk ? await host.scratchEntries() : []) {
    const dir = join(host.scratchDir, entry);
    if (!/^(backup|offline|restore|define|redefine)-/.test(entry)) continue;
    if ((await host.run(['test', '!', '-L', dir], {allowFailure: true})).exitCode !== 0) continue;
    if (await leftover(dir)) leftoverDirs.push(dir);
  }
  // Nothing left over and no checkpoint work (the CLI's case): no need to look at every domain.
  if (leftoverDirs.length === 0 && !trusted) return;

  const domains = [];
  for (const uuid of await listDomainUuids(host)) {
    // A domain that disappears meanwhile (undefined by someone else) is simply not ours to clean.
    const d = await describeDomain(host, uuid).catch(() => undefined);
    if (d) domains.push(d);
  }

  // 1. Backup jobs whose NBD socket is in a leftover session directory of ours.
  for (const d of leftoverDirs.length > 0 ? domains : []) {
    if (d.state !== 'running' && d.state !== 'paused') continue;
    const job = await host.virsh(['backup-dumpxml', d.info.uuid], {allowFailure: true});
    const socket = job.exitCode === 0 ? backupJobSocket(job.stdout) : undefined;
    const dir = socket ? sessionDirOf(socket) : undefined;
    if (dir && (await leftover(dir))) {
      if (await abortJob(host, d.info.uuid)) info(`aborted a leftover backup job of ${d.info.name}`, 'leftover-job-aborted', d.info.name);
    }
  }

  // 2. Leftover session directories: end their qemu-nbd exports (which hold image locks), then remove them.
  for (const dir of leftoverDirs) {
    const pids = await host.run(['find', dir, '-name', '*.pid', '-type', 'f'], {allowFailure: true});
    for (const pidFile of pids.stdout.split('\n').filter((l) => l.trim() !== '')) {
      await stopByPidFile(host.runner, pidFile);
      info(`stopped the qemu-nbd of ${pidFile}`, 'leftover-export-stopped');
    }
    await host.removeScratch(dir);
    info(`removed leftover scratch directory ${dir}`, 'leftover-scratch-removed');
  }

  // 3. Our checkpoints and bitmaps that no committed restore point recorded.
  if (!trusted) return;
  for (const d of domains) {
    const uuid = d.info.uuid;
    const vm = d.info.name;
    const listed = await trusted(uuid);
    if (listed === undefined) continue;
    const keep = new Set(listed);
    for (const name of await listCheckpoints(host, uuid)) {
      if (!host.naming.isOwn(name) || keep.has(name)) continue;
      const r = await deleteCheckpoint(host, uuid, name).then(
        () => 'deleted',
        async () => deleteCheckpoint(host, uuid, name, {metadataOnly: true}).then(() => 'metadata deleted'),
      );
      info(`checkpoint ${name} of ${vm} recorded by no restore point: ${r}`, 'leftover-checkpoint-deleted', vm);
    }
    if (d.state !== 'shutoff') continue;
    for (const {disk, image} of d.disks) {
      if (!image || image.format !== 'qcow2' || !disk.sourcePath) continue;
      for (const b of image.bitmaps) {
        if (!host.naming.isOwn(b.name) || keep.has(b.name)) continue;
        const r = await host.run(['qemu-img', 'bitmap', '-f', 'qcow2', '--remove', disk.sourcePath, b.name], {allowFailure: true});
        if (r.exitCode === 0) info(`bitmap ${b.name} removed from ${disk.sourcePath} (recorded by no restore point)`, 'leftover-bitmap-removed', vm);
        else log({severity: 'warning', code: 'leftover-bitmap-kept', message: `${host.name}: bitmap ${b.name} of ${disk.sourcePath} could not be removed: ${r.stderr.trim()}`, vm});
      }
    }
  }
}
