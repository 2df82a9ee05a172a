/**
 * Start-up reconciliation: what a daemon that died left behind.
 * - Sessions still "running" in the history are closed as failed, with the reason, and their
 *   unfinished VMs are marked failed ("the daemon stopped while ...").
 * - Every connection's platform cleans up what the appliance itself created and did not finish
 *   (backup jobs, checkpoints not recorded by a committed restore point, exports, transfers).
 *   libvirt gets the trusted checkpoints from the committed restore points (resources.ts).
 * Each action is logged. Partial restore points in repositories are GC's business.
 */
import {message} from '../engine/backup-vm.js';
import type {ConfigStore} from '../config/store.js';
import type {History} from './history.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';
import {sessionTotals} from './figures.js';

/** Closes the sessions a dead daemon left "running". Fast: runs before the API listens. */
export async function closeInterruptedSessions(deps: {history: History; log: DaemonLog; keep?: ReadonlySet<string>}): Promise<string[]> {
  const closedSessions: string[] = [];
  const now = new Date().toISOString();
  for (const summary of deps.history.list().filter((x) => x.state === 'running' && !deps.keep?.has(x.id))) {
    const s = (await deps.history.get(summary.id))!;
    const reason = 'The daemon stopped while this session was running (crash, kill or power loss); it was closed at the next start.';
    for (const v of s.vms) {
      if (v.state === 'pending' || v.state === 'waiting' || v.state === 'running') {
        v.state = 'failed';
        v.reason = reason;
      }
    }
    s.state = 'failed';
    s.reason = reason;
    s.endedAt = now;
    s.log.push({time: now, severity: 'error', code: 'daemon-restarted', message: reason});
    s.totals = sessionTotals(s.vms, s.startedAt, now);
    await deps.history.save(s);
    closedSessions.push(s.id);
    deps.log('warn', `Closed session ${s.id} of job ${s.jobName}: it was running when the daemon stopped`, {session: s.id});
  }
  return closedSessions;
}

/**
 * Removes the appliance's leftovers on every connection. May be slow (an unreachable engine),
 * so it runs after the API listens; sessions wait for it (SessionManager.holdUntil).
 */
export async function cleanupConnections(deps: {store: ConfigStore; resources: Resources; log: DaemonLog}): Promise<string[]> {
  const cleaned: string[] = [];
  for (const c of deps.store.list('connections')) {
    // A VM deleted on the host while the cleanup lists domains fails one pass: try again.
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await deps.resources.platform(c.id).cleanupLeftovers((e) => deps.log(e.severity === 'info' ? 'info' : 'warn', `cleanup ${c.name}: ${e.message}`, {code: e.code, vm: e.vm}));
        cleaned.push(c.id);
        deps.log('info', `Cleaned up leftovers on connection ${c.name}`);
        break;
      } catch (err) {
        deps.log('warn', `Cleanup of leftovers on connection ${c.name} failed${attempt < 3 ? ', trying again' : ''}: ${message(err)}`, {connection: c.id});
        if (attempt < 3) await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }
  return cleaned;
}
