/**
 * Live progress of running sessions, folded from the daemon's events: per session, per VM, per
 * disk (done, size, rate), plus the log lines as they arrive. A pure reducer, so events that
 * arrive in a burst are applied in order and tests feed it plain objects.
 */
import type {DaemonEvent} from '../api.js';
import type {LogLine} from '../../api/session-model.js';

export interface DiskProgress {
  key: string;
  name: string;
  size: number;
  done: number;
  rate: number;
  finished: boolean;
}

export interface VmProgress {
  id: string;
  name: string;
  incremental?: boolean;
  status?: 'success' | 'warning' | 'failed';
  error?: string;
  disks: Record<string, DiskProgress>;
}

export interface SessionProgress {
  vms: Record<string, VmProgress>;
  log: LogLine[];
  /** The newest summary from a 'session' event. */
  state?: string;
}

export type ProgressState = Record<string, SessionProgress>;

const MAX_LOG = 500;

export function progressReducer(s: ProgressState, e: DaemonEvent): ProgressState {
  if (e.type === 'session') {
    const cur = s[e.session.id] ?? {vms: {}, log: []};
    return {...s, [e.session.id]: {...cur, state: e.session.state}};
  }
  if (e.type !== 'engine') return s;
  const cur: SessionProgress = s[e.sessionId] ?? {vms: {}, log: []};
  const ev = e.event;
  const vm = (id: string, name = id): VmProgress => cur.vms[id] ?? {id, name, disks: {}};
  const withVm = (v: VmProgress): ProgressState => ({...s, [e.sessionId]: {...cur, vms: {...cur.vms, [v.id]: v}}});
  switch (ev.type) {
    case 'vm-started': {
      const disks: Record<string, DiskProgress> = {};
      for (const d of ev.disks) disks[d.key] = {key: d.key, name: d.name, size: d.size, done: 0, rate: 0, finished: false};
      return withVm({id: ev.vmId, name: ev.vmName, incremental: ev.incremental, disks});
    }
    case 'disk-started': {
      const v = vm(ev.vmId);
      const d = v.disks[ev.disk] ?? {key: ev.disk, name: ev.disk, size: ev.size, done: 0, rate: 0, finished: false};
      return withVm({...v, disks: {...v.disks, [ev.disk]: {...d, size: ev.size}}});
    }
    case 'disk-progress': {
      const v = vm(ev.vmId);
      const d = v.disks[ev.disk] ?? {key: ev.disk, name: ev.disk, size: ev.size, done: 0, rate: 0, finished: false};
      return withVm({...v, disks: {...v.disks, [ev.disk]: {...d, size: ev.size, done: ev.doneBytes, rate: ev.rate}}});
    }
    case 'disk-finished': {
      const v = vm(ev.vmId);
      const d = v.disks[ev.disk] ?? {key: ev.disk, name: ev.disk, size: ev.figures.size, done: 0, rate: 0, finished: false};
      return withVm({...v, disks: {...v.disks, [ev.disk]: {...d, done: d.size, finished: true}}});
    }
    case 'vm-finished':
      return withVm({...vm(ev.vmId, ev.vmName), status: ev.status, error: ev.error});
    case 'log': {
      const l = ev.event;
      const line: LogLine = {time: ev.time, severity: l.severity ?? 'info', code: l.code ?? '', message: l.message ?? '', vm: l.vm, disk: l.disk};
      return {...s, [e.sessionId]: {...cur, log: [...cur.log, line].slice(-MAX_LOG)}};
    }
  }
}

/** Totals over a session's disks: done, size, rate (sum of running disks). */
export function sessionTotalsOf(p: SessionProgress | undefined): {done: number; size: number; rate: number} {
  let done = 0;
  let size = 0;
  let rate = 0;
  for (const v of Object.values(p?.vms ?? {}))
    for (const d of Object.values(v.disks)) {
      done += d.done;
      size += d.size;
      if (!d.finished) rate += d.rate;
    }
  return {done, size, rate};
}
