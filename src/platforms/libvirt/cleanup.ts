/** Cleanup of leftovers (placeholder; filled in below). */
import type {Logger} from '../types.js';
import type {LibvirtHost} from './host.js';

/** Checkpoint ids that committed restore points recorded for a VM; everything else of ours may go. */
export type TrustedCheckpoints = (vmId: string) => Promise<readonly string[]> | readonly string[];

export async function cleanupHost(_host: LibvirtHost, _trusted: TrustedCheckpoints | undefined, _log: Logger): Promise<void> {}
