/**
 * Leases: which process on which machine holds something (a lock, a writer, a scratch
 * directory on a KVM host), and whether it still runs. A pid alone is not enough (pids are
 * reused), so a lease carries the process's start time from /proc; a lease of another machine
 * is taken as alive, since its liveness cannot be checked from here.
 */
import {readFileSync} from 'node:fs';
import {hostname} from 'node:os';

export interface ProcessLease {
  pid: number;
  /** Start time of the process in clock ticks since boot; '' when unknown. */
  pidStart: string;
  host: string;
}

/** The start time of a process (field 22 of /proc/<pid>/stat), or undefined when it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 2 (comm) may hold spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export const SELF_LEASE: ProcessLease = {pid: process.pid, pidStart: processStart(process.pid) ?? '', host: hostname()};

export function leaseAlive(l: ProcessLease): boolean {
  if (l.host !== SELF_LEASE.host) return true;
  try {
    process.kill(l.pid, 0);
  } catch (err) {
    if ((err as {code?: unknown}).code === 'ESRCH') return false;
  }
  // It exists (kill 0 did not say ESRCH); a different start time means the pid was reused.
  const start = processStart(l.pid);
  return start === undefined || l.pidStart === '' || start === l.pidStart;
}

/** A lease from text (JSON with pid, pidStart, host), or undefined when it is not one. */
export function parseLease(text: string): ProcessLease | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0 || typeof o.host !== 'string') return undefined;
    return {pid: o.pid, pidStart: typeof o.pidStart === 'string' ? o.pidStart : '', host: o.host};
  } catch {
    return undefined;
  }
}
