/**
 * Polling of engine entities whose phase changes asynchronously (backups, transfers, disks,
 * checkpoint removal). The SDK polls every second (docs/reference/ovirt-backup-api.md §4.3, §5.4); tests pass
 * a shorter interval.
 */
import {ExitCode, UserError} from '../../util/errors.js';

export interface PollOptions {
  intervalMs: number;
  timeoutMs: number;
}

/** Calls `check` until it returns a value other than undefined, or times out with a UserError. */
export async function pollUntil<T>(what: string, poll: PollOptions, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + poll.timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new UserError(`Timed out after ${Math.round(poll.timeoutMs / 1000)} s waiting for ${what}.`, {
        hint: 'The engine is slow or the operation is stuck; see the engine\'s events and tasks, then run again.',
        exitCode: ExitCode.platformFailed,
      });
    }
    await new Promise((r) => setTimeout(r, poll.intervalMs));
  }
}
