import type {Repository} from '../repository/index.js';
import type {Printer} from './output.js';

/** A warning per restore point whose manifest cannot be used: listings name them instead of hiding them. */
export async function warnDamagedPoints(out: Printer, repo: Repository): Promise<void> {
  for (const d of await repo.damagedRestorePoints()) out.warn(`restore point ${d.restorePoint} is left out: ${d.detail} Run "vmbackup repo verify" for details.`);
}
