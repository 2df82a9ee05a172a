/**
 * Session history: every session the daemon ran, newest last, in sessions.json under the state
 * directory (durable lowdb document, 0600), capped at the configured count. Written when a
 * session starts, when a VM finishes and when the session ends; progress is not persisted.
 */
import {join} from 'node:path';
import type {Low} from 'lowdb';
import {openDocument} from '../config/store.js';
import type {SessionRecord} from './session-model.js';

export const HISTORY_FILE = 'sessions.json';

interface HistoryData {
  version: 1;
  sessions: SessionRecord[];
}

export class History {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    private readonly db: Low<HistoryData>,
    private readonly cap: () => number,
  ) {}

  static async open(stateDir: string, cap: () => number): Promise<History> {
    const db = await openDocument<HistoryData>(join(stateDir, HISTORY_FILE), {version: 1, sessions: []});
    return new History(db, cap);
  }

  list(): SessionRecord[] {
    return this.db.data.sessions;
  }

  get(id: string): SessionRecord | undefined {
    return this.db.data.sessions.find((s) => s.id === id);
  }

  /** Adds or replaces `record` and writes the file; writes are serialized. */
  save(record: SessionRecord): Promise<void> {
    const run = async () => {
      const list = this.db.data.sessions;
      const at = list.findIndex((s) => s.id === record.id);
      if (at >= 0) list[at] = structuredClone(record);
      else list.push(structuredClone(record));
      const extra = list.length - this.cap();
      // Drop the oldest finished sessions; never a running one.
      for (let i = 0, dropped = 0; i < list.length && dropped < extra; ) {
        if (list[i]!.state !== 'running') {
          list.splice(i, 1);
          dropped++;
        } else i++;
      }
      await this.db.write();
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }
}
