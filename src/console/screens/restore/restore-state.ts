/**
 * The restore wizard as a pure reducer: VM (also VMs that no longer exist) → restore point →
 * where to (the original place, a new VM, chosen disks to an existing VM or to image files, or
 * started from the backup now: instant recovery) → summary → live progress → result. `request`
 * builds what POST /restores receives, `instantRequest` what POST /instant-recoveries receives.
 */
import type {InstantRequest, RestorePointInfo, RestoreRequest} from '../../api.js';

/** 'browse' opens the file browser instead of a step of its own. */
export type TargetKind = 'original' | 'new' | 'existing-vm' | 'files' | 'instant' | 'browse';
export const RESTORE_STEPS = ['vm', 'point', 'target', 'details', 'summary', 'progress'] as const;
export type RestoreStep = (typeof RESTORE_STEPS)[number];

export interface RestoreState {
  step: RestoreStep;
  repository?: string;
  vmId?: string;
  point?: RestorePointInfo;
  target?: TargetKind;
  details: Record<string, string>;
  /** Disk keys chosen for disk restores (all when undefined). */
  disks?: string[];
  operation?: string;
  left: boolean;
}

export type RestoreAction =
  | {type: 'repository'; id: string}
  | {type: 'vm'; id: string}
  | {type: 'point'; point: RestorePointInfo}
  | {type: 'target'; target: TargetKind}
  | {type: 'details'; values: Record<string, string>}
  | {type: 'confirm'}
  | {type: 'started'; id: string}
  | {type: 'back'};

export const initRestore = (repository?: string): RestoreState => ({step: 'vm', repository, details: {}, left: false});

export function restoreReducer(s: RestoreState, a: RestoreAction): RestoreState {
  switch (a.type) {
    case 'repository':
      return {...initRestore(a.id)};
    case 'vm':
      return {...s, vmId: a.id, step: 'point'};
    case 'point':
      return {...s, point: a.point, step: 'target'};
    case 'target':
      // The original place needs nothing more.
      return {...s, target: a.target, step: a.target === 'original' ? 'summary' : 'details', details: {}};
    case 'details': {
      const {disks, ...rest} = a.values;
      const list = disks === undefined ? undefined : disks.split(',').filter(Boolean);
      return {...s, details: rest, disks: list, step: 'summary'};
    }
    case 'confirm':
      return s.step === 'summary' ? {...s, step: 'progress'} : s;
    case 'started':
      return {...s, operation: a.id};
    case 'back': {
      if (s.step === 'progress') return {...s, left: true};
      const order: RestoreStep[] = ['vm', 'point', 'target', 'details', 'summary'];
      let i = order.indexOf(s.step) - 1;
      if (s.step === 'summary' && s.target === 'original') i = order.indexOf('target');
      return i < 0 ? {...s, left: true} : {...s, step: order[i]!};
    }
  }
}

/** VMs that have restore points, newest point first, with whether they still exist. */
export function vmsOf(points: readonly RestorePointInfo[]): {id: string; name: string; latest: string; count: number; exists: boolean}[] {
  const by = new Map<string, {id: string; name: string; latest: string; count: number; exists: boolean}>();
  for (const p of points) {
    const cur = by.get(p.vmId) ?? {id: p.vmId, name: p.vmName, latest: p.time, count: 0, exists: p.vmExists !== false};
    cur.count++;
    if (p.time > cur.latest) cur.latest = p.time;
    by.set(p.vmId, cur);
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** What starts the instant VM: the details form's name, connection (an oVirt point's libvirt hosts), host, storage and network. */
export function instantRequest(s: RestoreState): InstantRequest | undefined {
  if (!s.point || !s.repository || s.target !== 'instant') return undefined;
  const d = s.details;
  const opt = (x: string | undefined) => (x?.trim() ? x.trim() : undefined);
  const name = opt(d.name);
  const host = opt(d.host);
  const storage = opt(d.storage);
  const connection = opt(d.connection);
  return {repository: s.repository, restorePointId: s.point.id, network: d.network !== 'no', ...(name ? {name} : {}), ...(connection ? {connection} : {}), ...(host ? {host} : {}), ...(storage ? {storage} : {})};
}

export function request(s: RestoreState): RestoreRequest | undefined {
  if (!s.point || !s.repository || !s.target || s.target === 'instant') return undefined;
  const d = s.details;
  const opt = (x: string | undefined) => (x?.trim() ? x.trim() : undefined);
  const target: RestoreRequest['target'] =
    s.target === 'original'
      ? {kind: 'original'}
      : s.target === 'new'
        ? {kind: 'new', name: d.name?.trim() ?? '', host: opt(d.host), cluster: opt(d.cluster), storageDomain: opt(d.storageDomain)}
        : s.target === 'existing-vm'
          ? {kind: 'existing-vm', vmId: d.vmId?.trim() ?? ''}
          : {kind: 'files', directory: d.directory?.trim() ?? '', format: d.format === 'raw' ? 'raw' : 'qcow2'};
  return {restorePointId: s.point.id, repository: s.repository, target, ...(s.disks ? {disks: s.disks} : {})};
}
