/**
 * What a failed `virsh backup-begin` means for the administrator (docs/reference/libvirt-backup.md §1.1, §9):
 * libvirt's own messages, turned into UserErrors that say what to do. Pure, so each case is
 * unit-tested with the message libvirt really prints.
 */
import {ExitCode, UserError} from '../../util/errors.js';

/** The base checkpoint's bitmaps failed libvirt's validation: the backup may go full instead. */
export function isBrokenBitmapChain(stderr: string): boolean {
  return /missing or broken bitmap|bitmap '[^']*' not found|checkpoint inconsistent|inconsistent bitmap|bitmap .* is inconsistent/i.test(stderr);
}

export function anotherJobError(vm: string, host: string, detail: string): UserError {
  return new UserError(`Another job is running on VM ${vm} on ${host}, so no backup can start (${detail}).`, {
    hint: 'Wait for it to finish. A backup job left by a crashed appliance session is removed by the start-up cleanup; one started by another tool can be ended with "virsh domjobabort" on the host.',
    exitCode: ExitCode.locked,
  });
}

export function explainBackupBeginError(vm: string, host: string, stderr: string): UserError | undefined {
  const said = stderr.trim().replace(/^error: /gm, '').split('\n').join(' / ');
  if (/another .*job|already running|state change lock/i.test(stderr)) return anotherJobError(vm, host, said);
  if (/not supported yet|does not support .*(backup|checkpoint)|unsupported flags/i.test(stderr)) {
    return new UserError(`libvirt on ${host} cannot make checkpointed backups of ${vm} (${said}).`, {
      hint: 'The host needs libvirt 7.6 or newer and QEMU 6.1 or newer (check with "virsh version --daemon"); upgrade the host.',
      exitCode: ExitCode.platformFailed,
    });
  }
  if (/snapshot/i.test(stderr)) {
    return new UserError(`VM ${vm} on ${host} has snapshots, and libvirt allows no checkpoints while snapshots exist (${said}).`, {
      hint: 'Delete or merge the VM\'s snapshots (in Morpheus or with virsh), then run the backup again.',
      exitCode: ExitCode.platformFailed,
    });
  }
  if (/qcow2 v2|compat.*0\.10|Cannot store dirty bitmaps/i.test(stderr)) {
    return new UserError(`A disk of VM ${vm} is a qcow2 v2 image, which cannot hold the bitmaps of a checkpoint (${said}).`, {
      hint: 'Convert the image to qcow2 v3 while the VM is off: qemu-img amend -f qcow2 -o compat=1.1 <image>.',
      exitCode: ExitCode.platformFailed,
    });
  }
  if (/Permission denied|apparmor/i.test(stderr)) {
    return new UserError(`QEMU on ${host} may not create the backup's socket or scratch files for ${vm} (${said}).`, {
      hint: 'Allow QEMU to write the appliance\'s scratch directory on the host (AppArmor: add it to the libvirt-qemu abstraction), or choose another scratch directory.',
      exitCode: ExitCode.platformFailed,
    });
  }
  return undefined;
}

/** Free bytes from `df -B1 --output=avail <dir>`. */
export function parseDfAvail(out: string): number | undefined {
  const line = out.trim().split('\n').pop()?.trim();
  return line && /^\d+$/.test(line) ? Number(line) : undefined;
}
