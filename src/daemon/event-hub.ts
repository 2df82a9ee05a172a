/**
 * Live events for the control API's GET /events (server-sent events): engine progress events
 * tagged with their session, and session/job state changes. Subscribers that fall behind are
 * not waited for: a slow console must never slow a backup.
 */
import type {DaemonEvent} from '../api/contract.js';

export class EventHub {
  private readonly subs = new Set<(e: DaemonEvent) => void>();

  subscribe(fn: (e: DaemonEvent) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  emit(e: DaemonEvent): void {
    for (const fn of this.subs) {
      try {
        fn(e);
      } catch {
        // A broken subscriber must not break the session that emits.
      }
    }
  }

  get subscribers(): number {
    return this.subs.size;
  }
}
