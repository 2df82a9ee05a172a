/**
 * Which VMs a job backs up, from the connection's inventory: VMs picked by id, every VM of the
 * chosen clusters or hosts, every VM with a chosen tag; minus the exclusions. A picked VM that
 * is gone from the inventory is reported, not silently dropped. Pure.
 */
import type {VmSource} from '../config/schema.js';
import type {InventoryVm} from '../platforms/types.js';

export interface SelectedVm {
  id: string;
  name: string;
  host?: string;
  cluster?: string;
  /** Disk keys to back up; all when undefined. */
  disks?: string[];
  diskCount: number;
}

export interface Selection {
  vms: SelectedVm[];
  /** VMs picked by id that the inventory no longer has. */
  missing: {id: string; name?: string}[];
}

export function selectVms(source: VmSource, inventory: InventoryVm[]): Selection {
  const excluded = new Set(source.exclude);
  const byId = new Map(inventory.map((v) => [v.id, v]));
  const out = new Map<string, SelectedVm>();
  const add = (vm: InventoryVm, disks?: string[]) => {
    if (excluded.has(vm.id) || out.has(vm.id)) return;
    out.set(vm.id, {id: vm.id, name: vm.name, host: vm.host, cluster: vm.cluster, disks, diskCount: disks?.length ?? vm.disks.length});
  };
  const missing: Selection['missing'] = [];
  for (const pick of source.vms) {
    const vm = byId.get(pick.id);
    if (vm) add(vm, pick.disks && pick.disks.length > 0 ? pick.disks : undefined);
    else if (!excluded.has(pick.id)) missing.push({id: pick.id, name: pick.name});
  }
  for (const vm of inventory) {
    if (vm.cluster && source.clusters.includes(vm.cluster)) add(vm);
    if (vm.host && source.hosts.includes(vm.host)) add(vm);
    if (vm.tags?.some((t) => source.tags.includes(t))) add(vm);
  }
  return {vms: [...out.values()], missing};
}
