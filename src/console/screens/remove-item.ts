/** Removes one configured object through the daemon and, when that worked, runs `after` (back to the list, reload). */
import type {Collection, ConsoleApi} from '../api.js';
import type {useAction} from '../use-load.js';

export async function removeItem(action: ReturnType<typeof useAction>, api: ConsoleApi, c: Collection, id: string, done: string, after: () => void): Promise<void> {
  const r = await action.run('Removing', () => api.remove(c, id), () => done);
  if (r.ok) after();
}
