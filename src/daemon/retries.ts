/**
 * A job's retries (`retries: {count, waitMinutes}`): the session's VMs run, then, after the wait,
 * those that failed run again, up to `count` more times; the session's attempt number follows.
 * Backup sessions (sessions.ts) and copy sessions (copy-session.ts) both retry this way.
 */
import type {LogLine, SessionRecord} from '../api/session-model.js';

export async function retryFailed<T extends {id: string}>(
  record: SessionRecord,
  retries: {count: number; waitMinutes: number},
  todo: readonly T[],
  /** One round over these VMs; each VM's row says afterwards whether it failed. */
  round: (vms: readonly T[]) => Promise<void>,
  o: {
    signal: AbortSignal;
    log: (line: Omit<LogLine, 'time'>) => void;
    /** Before the wait: the record changed (its log says a retry comes). */
    waiting: () => unknown;
    sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  },
): Promise<void> {
  let left = todo;
  for (let attempt = 1; ; attempt++) {
    record.attempt = attempt;
    await round(left);
    const failed = left.filter((v) => record.vms.find((r) => r.id === v.id)?.state === 'failed');
    if (failed.length === 0 || attempt > retries.count || o.signal.aborted) break;
    o.log({severity: 'info', code: 'retry-wait', message: `${failed.length} VM(s) failed; retry ${attempt} of ${retries.count} in ${retries.waitMinutes} minute(s).`});
    await o.waiting();
    await o.sleep(retries.waitMinutes * 60_000, o.signal);
    if (o.signal.aborted) break;
    left = failed;
  }
}
