/** The image-files restore target the way the engine opens it (plan, then carry out). */
import {openFilesRestore, planFilesRestore} from '../../src/platforms/targets/files.js';
import type {Logger, RestoreSource, VmRestore} from '../../src/platforms/types.js';

export function filesRestore(source: RestoreSource, target: {directory: string; format: 'qcow2' | 'raw'}, opts: {disks?: string[]; log: Logger}): Promise<VmRestore> {
  return Promise.resolve().then(() => openFilesRestore(planFilesRestore(source, target, opts.disks), {log: opts.log}));
}
