/**
 * libvirt checkpoint operations through virsh: list, dump (without the domain), delete, and
 * redefine from the XML a restore point saved (after migration, failover or lost metadata,
 * docs/reference/libvirt-backup.md §1.6 and §9.12). Domains are always addressed by UUID.
 */
import {join} from 'node:path';
import type {LibvirtHost} from './host.js';

export async function listCheckpoints(host: LibvirtHost, uuid: string): Promise<string[]> {
  const r = await host.virsh(['checkpoint-list', uuid, '--name', '--topological']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function dumpCheckpoint(host: LibvirtHost, uuid: string, name: string): Promise<string> {
  return (await host.virsh(['checkpoint-dumpxml', uuid, name, '--no-domain'])).stdout;
}

export interface CheckpointLookup {
  /** libvirt lists the checkpoint. */
  listed: boolean;
  /** Its XML (--no-domain), when it is listed and the dump succeeded. */
  xml?: string;
}

/** Whether libvirt knows a checkpoint, and its XML: the list and the dump run together. */
export async function lookupCheckpoint(host: LibvirtHost, uuid: string, name: string): Promise<CheckpointLookup> {
  const [list, dump] = await Promise.all([
    listCheckpoints(host, uuid),
    host.virsh(['checkpoint-dumpxml', uuid, name, '--no-domain'], {allowFailure: true}),
  ]);
  const listed = list.includes(name);
  return listed && dump.exitCode === 0 ? {listed, xml: dump.stdout} : {listed};
}

/** Deletes a checkpoint (and its bitmaps); with metadataOnly, only libvirt's record. */
export async function deleteCheckpoint(host: LibvirtHost, uuid: string, name: string, opts: {metadataOnly?: boolean} = {}): Promise<void> {
  await host.virsh(['checkpoint-delete', uuid, name, ...(opts.metadataOnly ? ['--metadata'] : [])]);
}

/** Redefines a checkpoint from XML written to `dir` on the host. Returns the error text on failure. */
export async function redefineCheckpoint(
  host: LibvirtHost,
  uuid: string,
  xml: string,
  dir: string,
  opts: {validate?: boolean} = {},
): Promise<string | undefined> {
  const file = join(dir, 'redefine-checkpoint.xml');
  await host.writeFile(file, xml);
  // --redefine-validate checks the bitmaps in the running QEMU: a record without its bitmap is refused.
  const r = await host.virsh(['checkpoint-create', uuid, file, '--redefine', ...(opts.validate ? ['--redefine-validate'] : [])], {allowFailure: true});
  return r.exitCode === 0 ? undefined : r.stderr.trim() || `exit ${r.exitCode}`;
}

/**
 * Ends the domain's backup job if there is one and waits until it is gone; true when a job was
 * aborted. `domjobabort` returns once QEMU was asked to cancel the job's block jobs; libvirt ends
 * the backup job only when QEMU reports them ended (libvirt/libvirt src/qemu/qemu_backup.c:
 * qemuBackupJobCancelBlockjobs, then qemuBackupNotifyBlockjobEnd → qemuBackupJobTerminate), so on
 * a busy host `domjobinfo` still shows the job for a moment and a next backup would be refused.
 */
export async function abortJob(host: LibvirtHost, uuid: string, opts: {waitMs?: number} = {}): Promise<boolean> {
  const r = await host.virsh(['domjobabort', uuid], {allowFailure: true});
  if (r.exitCode !== 0) {
    if (/no job is active|domain is not running|not running/i.test(r.stderr)) return false;
    throw new Error(`virsh domjobabort ${uuid} on ${host.name} failed: ${r.stderr.trim()}`);
  }
  const until = Date.now() + (opts.waitMs ?? 60_000);
  for (;;) {
    const info = await host.virsh(['domjobinfo', uuid], {allowFailure: true});
    const type = /Job type:\s*(\S+)/.exec(info.stdout)?.[1];
    // Gone, or the VM is (no job type printed, or the command failed: nothing left to wait for).
    if (info.exitCode !== 0 || !type || type === 'None') return true;
    if (Date.now() > until) {
      throw new Error(`the backup job of ${uuid} on ${host.name} was asked to stop but is still there after ${Math.round((opts.waitMs ?? 60_000) / 1000)} s ("virsh domjobinfo ${uuid}": ${info.stdout.replace(/\s+/g, ' ').trim()})`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}
