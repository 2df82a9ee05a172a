/**
 * The VM step of the job wizard as a pure reducer: the inventory grouped by cluster, then tags;
 * Space picks a cluster, a VM or a tag; `x` excludes a VM that a cluster or tag brings in; `d`
 * opens a VM's disks to choose some; `/` searches by name. The warnings for disks that cannot be
 * tracked (RAW, ...) are computed from what the selection brings in, so they show at selection time.
 */
import type {InventoryVm} from '../../../platforms/types.js';

export interface Selection {
  vms: {id: string; name?: string; disks?: string[]}[];
  clusters: string[];
  hosts: string[];
  tags: string[];
  exclude: string[];
}

export type Row =
  | {kind: 'cluster'; name: string}
  | {kind: 'vm'; vm: InventoryVm}
  | {kind: 'disk'; vm: InventoryVm; key: string}
  | {kind: 'tag'; name: string};

export interface PickerState {
  vms: InventoryVm[];
  sel: Selection;
  focus: number;
  query: string;
  searching: boolean;
  /** The VM whose disks are shown for choosing. */
  open?: string;
  /**
   * What a key outside the search asks of the screen around the picker: Enter = next step,
   * q/? = the shell's quit/help, c = the next connection. Decided here, in key order, so that
   * "/q" in a burst searches for "q".
   */
  intent?: {kind: 'done' | 'defaults' | 'refresh' | 'quit' | 'help' | 'connection'; seq: number};
}

export type PickerAction =
  | {type: 'key'; input: string; key: {upArrow?: boolean; downArrow?: boolean; return?: boolean; tab?: boolean; backspace?: boolean; delete?: boolean; ctrl?: boolean; meta?: boolean}}
  | {type: 'load'; vms: InventoryVm[]};

export const emptySelection = (): Selection => ({vms: [], clusters: [], hosts: [], tags: [], exclude: []});

export function initPicker(sel: Selection = emptySelection(), vms: InventoryVm[] = []): PickerState {
  return {vms, sel, focus: 0, query: '', searching: false};
}

export function rows(s: PickerState): Row[] {
  const q = s.query.toLowerCase();
  const match = (v: InventoryVm) => !q || v.name.toLowerCase().includes(q);
  const out: Row[] = [];
  const clusters = [...new Set(s.vms.map((v) => v.cluster ?? '(no cluster)'))].sort();
  for (const c of clusters) {
    const members = s.vms.filter((v) => (v.cluster ?? '(no cluster)') === c && match(v));
    if (members.length === 0) continue;
    if (!q) out.push({kind: 'cluster', name: c});
    for (const vm of members.sort((a, b) => a.name.localeCompare(b.name))) {
      out.push({kind: 'vm', vm});
      if (s.open === vm.id) for (const d of vm.disks) out.push({kind: 'disk', vm, key: d.key});
    }
  }
  if (!q) for (const t of [...new Set(s.vms.flatMap((v) => v.tags ?? []))].sort()) out.push({kind: 'tag', name: t});
  return out;
}

const toggle = (list: string[], x: string) => (list.includes(x) ? list.filter((y) => y !== x) : [...list, x]);

/** Whether the selection brings this VM in, and how. */
export function pickedBy(sel: Selection, vm: InventoryVm): 'vm' | 'cluster' | 'host' | 'tag' | undefined {
  if (sel.exclude.includes(vm.id)) return undefined;
  if (sel.vms.some((p) => p.id === vm.id)) return 'vm';
  if (vm.cluster && sel.clusters.includes(vm.cluster)) return 'cluster';
  if (vm.host && sel.hosts.includes(vm.host)) return 'host';
  if ((vm.tags ?? []).some((t) => sel.tags.includes(t))) return 'tag';
  return undefined;
}

/** Disk keys chosen for a VM (undefined: every disk). */
export const disksOf = (sel: Selection, vmId: string) => sel.vms.find((p) => p.id === vmId)?.disks;

export function pickerReducer(s: PickerState, a: PickerAction): PickerState {
  if (a.type === 'load') return {...s, vms: a.vms, focus: 0};
  // A run of typed characters arrives as one input: apply it one character at a time.
  if ([...a.input].length > 1) return [...a.input].reduce((st, ch) => pickerReducer(st, {type: 'key', input: ch, key: {}}), s);
  const k = a.key;
  const list = rows(s);
  const clamp = (f: number) => Math.max(0, Math.min(f, list.length - 1));
  const intent = (kind: NonNullable<PickerState['intent']>['kind']): PickerState => ({...s, intent: {kind, seq: (s.intent?.seq ?? 0) + 1}});
  if (s.searching) {
    if (k.return) return {...s, searching: false, focus: 0};
    if (k.backspace || k.delete) return {...s, query: [...s.query].slice(0, -1).join(''), focus: 0};
    if (k.upArrow || k.downArrow) return {...s, searching: false, focus: clamp(s.focus + (k.upArrow ? -1 : 1))};
    if (a.input && !/[\x00-\x1f]/.test(a.input)) return {...s, query: s.query + a.input, focus: 0};
    return s;
  }
  if (k.upArrow) return {...s, focus: clamp(s.focus - 1)};
  if (k.downArrow) return {...s, focus: clamp(s.focus + 1)};
  if (a.input === '/') return {...s, searching: true, query: ''};
  if (k.return) return intent('done');
  // Tab: the defaults for every later step, straight to the summary (edit from there).
  if (k.tab) return intent('defaults');
  if (!k.ctrl && !k.meta && (a.input === 'q' || a.input === '?' || a.input === 'c')) return intent(a.input === 'q' ? 'quit' : a.input === '?' ? 'help' : 'connection');
  if (!k.ctrl && !k.meta && a.input === 'r') return intent('refresh');
  const row = list[s.focus];
  if (!row) return s;
  if (a.input === ' ') {
    const sel = {...s.sel};
    if (row.kind === 'cluster') sel.clusters = toggle(sel.clusters, row.name);
    else if (row.kind === 'tag') sel.tags = toggle(sel.tags, row.name);
    else if (row.kind === 'vm') {
      if (sel.exclude.includes(row.vm.id)) sel.exclude = sel.exclude.filter((x) => x !== row.vm.id);
      else if (sel.vms.some((p) => p.id === row.vm.id)) sel.vms = sel.vms.filter((p) => p.id !== row.vm.id);
      else sel.vms = [...sel.vms, {id: row.vm.id, name: row.vm.name}];
    } else if (row.kind === 'disk') {
      const all = row.vm.disks.map((d) => d.key);
      const cur = disksOf(sel, row.vm.id) ?? all;
      const next = toggle(cur, row.key);
      const disks = next.length === all.length ? undefined : all.filter((x) => next.includes(x));
      const others = sel.vms.filter((p) => p.id !== row.vm.id);
      sel.vms = [...others, {id: row.vm.id, name: row.vm.name, ...(disks ? {disks} : {})}];
    }
    return {...s, sel};
  }
  if (a.input === 'x' && row.kind === 'vm') return {...s, sel: {...s.sel, exclude: toggle(s.sel.exclude, row.vm.id)}};
  if (a.input === 'd' && (row.kind === 'vm' || row.kind === 'disk')) {
    const id = row.vm.id;
    return {...s, open: s.open === id ? undefined : id};
  }
  return s;
}

/** The VMs the selection brings in now, from the inventory. */
export function selectedVms(s: PickerState): InventoryVm[] {
  return s.vms.filter((v) => pickedBy(s.sel, v));
}

/** One warning per chosen disk whose changes cannot be tracked: every backup reads it in full. */
export function trackingWarnings(s: PickerState): string[] {
  const out: string[] = [];
  for (const vm of selectedVms(s)) {
    const chosen = disksOf(s.sel, vm.id);
    for (const d of vm.disks)
      if (!d.trackable && (!chosen || chosen.includes(d.key))) out.push(`${vm.name}: ${d.name} (${d.format}) – ${d.trackingNote ?? 'changes cannot be tracked; every backup reads it in full'}`);
  }
  return out;
}

export const selectionEmpty = (sel: Selection) => sel.vms.length + sel.clusters.length + sel.hosts.length + sel.tags.length === 0;
