/** Restore (placeholder). */
import type {Logger, RestoreSource, RestoreTarget, VmRestore} from '../types.js';
import type {LibvirtPlatform} from './platform.js';

export async function openLibvirtRestore(_p: LibvirtPlatform, _s: RestoreSource, _t: RestoreTarget, _o: {disks?: string[]; log: Logger}): Promise<VmRestore> {
  throw new Error('not yet');
}
