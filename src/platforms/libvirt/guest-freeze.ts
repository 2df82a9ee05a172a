/**
 * Guest filesystem freeze around the instant a backup starts (docs/reference/libvirt-backup.md §4): freeze with
 * a timeout, run the step, always thaw. No agent (or one that does not answer) means the
 * backup is crash-consistent, with a 'no-guest-agent' warning; it does not fail.
 */
import type {Logger} from '../types.js';
import type {LibvirtHost} from './host.js';

const FREEZE_TIMEOUT_MS = 30_000;

export async function withGuestFrozen<T>(
  host: LibvirtHost,
  uuid: string,
  vm: string,
  enabled: boolean,
  log: Logger,
  step: () => Promise<T>,
): Promise<T> {
  if (!enabled) return step();
  let frozen = false;
  try {
    const r = await host.virsh(['domfsfreeze', uuid], {allowFailure: true, timeoutMs: FREEZE_TIMEOUT_MS});
    frozen = r.exitCode === 0;
    if (!frozen) {
      log({
        severity: 'warning',
        code: 'no-guest-agent',
        message: `the guest agent of ${vm} did not freeze the filesystems (${r.stderr.trim().split('\n').pop() ?? ''}); the backup is crash-consistent`,
        vm,
      });
    }
  } catch (err) {
    // A freeze that hangs past its timeout may still have frozen some filesystems: thaw anyway.
    frozen = true;
    log({severity: 'warning', code: 'no-guest-agent', message: `freezing ${vm} failed: ${(err as Error).message}; the backup is crash-consistent`, vm});
  }
  try {
    return await step();
  } finally {
    if (frozen) {
      const t = await host.virsh(['domfsthaw', uuid], {allowFailure: true, timeoutMs: FREEZE_TIMEOUT_MS}).catch((e: Error) => ({exitCode: -1, stderr: e.message}));
      if (t.exitCode !== 0) log({severity: 'warning', code: 'guest-thaw-failed', message: `thawing ${vm} failed: ${t.stderr.trim()}`, vm});
    }
  }
}
