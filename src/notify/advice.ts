/**
 * "What to do" for each issue code that a session can report.
 *
 * The engine and the platform adapters attach a stable `code` to every warning and error
 * (model.ts Issue); the report looks the code up here to print a short title and one line of
 * advice. Unknown codes get a sensible default, so a new code never breaks a report; add a line
 * here when you add a code elsewhere.
 */

export interface Advice {
  /** A short name for the kind of issue, used as a group heading in the report. */
  title: string;
  /** One line: what the administrator should do. */
  action: string;
}

const ADVICE: Record<string, Advice> = {
  'raw-disk-full-scan': {
    title: 'RAW disk read in full',
    action: 'Convert the disk to qcow2 so that the next backups can be incremental (changed blocks only).',
  },
  'cbt-disabled': {
    title: 'Changed block tracking is off',
    action: 'Enable incremental backup on the disk (oVirt: "Enable Incremental Backup"; libvirt: qcow2 with a dirty bitmap); until then every run reads the whole disk.',
  },
  'incremental-fallback-full': {
    title: 'Incremental not possible, full backup taken',
    action: 'Nothing to do if this happens once; if it repeats, check the VM\'s checkpoints and the host logs.',
  },
  'incremental-not-possible': {
    title: 'Incremental not possible on this cluster, full backup taken',
    action: 'Raise the oVirt cluster compatibility level to 4.5 or later, or leave the disks the warning names out of the job; below 4.5 every disk must be qcow2 with incremental backup enabled and in the previous backup.',
  },
  'incremental-disabled': {
    title: 'Incremental backup disabled on an oVirt disk',
    action: 'Enable it in the engine (Disk → Edit → Enable Incremental Backup) so that the next backups read only changed blocks.',
  },
  'checkpoint-lost': {
    title: 'Checkpoint lost, full read taken',
    action: 'Nothing to do: the next incremental works again from the new checkpoint.',
  },
  'no-guest-agent': {
    title: 'No guest agent: crash-consistent backup',
    action: 'Install and start qemu-guest-agent in the guest so that file systems are frozen during the snapshot.',
  },
  'guest-freeze-failed': {
    title: 'File systems could not be frozen',
    action: 'Check qemu-guest-agent in the guest (its log and fsfreeze hooks); the backup is crash-consistent.',
  },
  'unreachable-host': {
    title: 'Host or engine unreachable',
    action: 'Check that the host or engine is up and reachable from the appliance (network, firewall, DNS), then retry the job.',
  },
  'auth-failed': {
    title: 'Authentication failed',
    action: 'Update the user name, password or SSH key for this platform in the appliance settings, then retry the job.',
  },
  'certificate-untrusted': {
    title: 'Certificate or host key not trusted',
    action: 'Verify the fingerprint with the platform administrator and accept it in the platform settings.',
  },
  'vm-not-found': {
    title: 'VM not found',
    action: 'The VM was deleted or renamed: remove it from the job or select it again.',
  },
  'vm-busy': {
    title: 'VM busy with another operation',
    action: 'Wait for the other operation (snapshot, migration, another backup) to finish; the next retry usually succeeds.',
  },
  'snapshot-failed': {
    title: 'Snapshot failed',
    action: 'Check free space on the VM\'s storage domain or pool and the host logs, then retry the job.',
  },
  'snapshot-not-removed': {
    title: 'Snapshot left behind',
    action: 'Remove the leftover backup snapshot or checkpoint on the platform; it grows while it exists.',
  },
  'disk-read-error': {
    title: 'Disk read failed',
    action: 'Check the host storage and the transfer network, then retry; the restore points already committed are intact.',
  },
  'repository-low-space': {
    title: 'Repository low on space',
    action: 'Free space: shorten retention and run prune and garbage collection, or add a larger disk.',
  },
  'repository-full': {
    title: 'Repository full',
    action: 'Free space (prune, then garbage collection) or add a disk, then retry; committed restore points are unaffected.',
  },
  'damaged-chunks-healed': {
    title: 'Damaged chunks repaired',
    action: 'Nothing to do now: the damaged data was rewritten from the source. If it repeats, check the repository disk (SMART, dmesg).',
  },
  'damaged-chunks': {
    title: 'Damaged chunks found',
    action: 'Run a verify of the repository and check the disk (SMART, dmesg); affected restore points are listed by verify.',
  },
  'retention-not-applied': {
    title: 'Retention not applied',
    action: 'Run prune for this job by hand and check the job log; old restore points are kept until it succeeds.',
  },
  'verify-failed': {
    title: 'Restore point did not boot',
    action: 'Look at the screenshot in the report; restore the VM or its files from this point to check it, and take a new backup once the VM boots again. Older points may still boot.',
  },
  'verify-warning': {
    title: 'Boot check incomplete',
    action: 'The boot loader ran but the guest agent did not answer in time: look at the screenshot, raise the boot check wait, or check qemu-guest-agent in the guest.',
  },
  'verify-error': {
    title: 'Boot check could not run',
    action: 'Check the libvirt host the boot check runs on (reachable, free space in the VM storage directory) and the daemon log; the backup itself is fine.',
  },
  'verify-skipped': {
    title: 'Boot check skipped',
    action: "Name a libvirt (Morpheus) connection for the job's boot check: restore points are verified by starting them on a libvirt host.",
  },
  'cancelled': {
    title: 'Cancelled',
    action: 'The session was stopped by an administrator or a shutdown; the next scheduled run continues normally.',
  },
};

const DEFAULT_ACTION = 'See the session log on the appliance for details; retry the job, and if it fails again, check the platform\'s own logs.';

/** The advice for `code`; for an unknown code the title is `fallbackTitle` (usually the message). */
export function adviceFor(code: string, fallbackTitle?: string): Advice {
  return ADVICE[code] ?? {title: fallbackTitle ?? code, action: DEFAULT_ACTION};
}

/** True when `code` has its own entry (used by tests to check that every code has advice). */
export function hasAdvice(code: string): boolean {
  return Object.hasOwn(ADVICE, code);
}

export const KNOWN_ISSUE_CODES: readonly string[] = Object.keys(ADVICE);
