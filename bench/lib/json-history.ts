/**
 * The JSON session history of vmbackup before session 5 (git 5b486e0:src/daemon/history.ts), kept
 * only so that bench/history.ts can measure it beside the SQLite history that replaced it.
 *
 * Session history: every session the daemon ran, newest last, under the state directory:
 * sessions.json holds the sessions without their logs (durable lowdb document, 0600), and each
 * session's log is its own file sessions/<id>.json, so saving one session never rewrites the
 * logs of a thousand others. Capped at the configured count (oldest finished sessions go first,
 * with their log files). Written when a session starts, after each VM and at the end; progress
 * is not persisted.
 */
import {mkdir, readdir, rm} from 'node:fs/promises';
import {join} from 'node:path';
import type {Low} from 'lowdb';
import {DurableJsonFile} from '../../src/config/durable-json-file.js';
import {openDocument} from '../../src/config/store.js';
import {ID_PATTERN} from '../../src/config/fields.js';
import type {LogLine, SessionRecord} from '../../src/api/session-model.js';

export const HISTORY_FILE = 'sessions.json';
export const LOG_DIR = 'sessions';

export type SessionSummary = Omit<SessionRecord, 'log'>;

interface HistoryData {
  version: 2;
  sessions: SessionSummary[];
}

export class JsonHistory {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    private readonly db: Low<HistoryData>,
    private readonly dir: string,
    private readonly cap: () => number,
  ) {}

  static async open(stateDir: string, cap: () => number): Promise<JsonHistory> {
    const db = await openDocument<HistoryData>(join(stateDir, HISTORY_FILE), {version: 2, sessions: []});
    const dir = join(stateDir, LOG_DIR);
    await mkdir(dir, {recursive: true, mode: 0o750});
    // Temp files of a write cut short by a crash.
    for (const f of await readdir(dir)) if (f.endsWith('.tmp')) await rm(join(dir, f), {force: true});
    return new JsonHistory(db, dir, cap);
  }

  /** Every session, oldest first, without logs. */
  list(): SessionSummary[] {
    return this.db.data.sessions;
  }

  /** One session with its log. */
  async get(id: string): Promise<SessionRecord | undefined> {
    const s = this.db.data.sessions.find((x) => x.id === id);
    if (!s) return undefined;
    const log = (await this.logFile(id).read()) ?? [];
    return {...structuredClone(s), log};
  }

  private logFile(id: string): DurableJsonFile<LogLine[]> {
    // Session ids are made by the daemon; check anyway, since the id names a file.
    if (!ID_PATTERN.test(id)) throw new Error(`bad session id ${id}`);
    return new DurableJsonFile<LogLine[]>(join(this.dir, `${id}.json`));
  }

  /** Adds or replaces `record` (summary and log) durably; writes are serialized. */
  save(record: SessionRecord): Promise<void> {
    const {log, ...summary} = structuredClone(record);
    const run = async () => {
      await this.logFile(record.id).write(log);
      const list = this.db.data.sessions;
      const at = list.findIndex((s) => s.id === record.id);
      if (at >= 0) list[at] = summary;
      else list.push(summary);
      const dropped: string[] = [];
      const extra = list.length - this.cap();
      for (let i = 0; i < list.length && dropped.length < extra; ) {
        if (list[i]!.state !== 'running') dropped.push(list.splice(i, 1)[0]!.id);
        else i++;
      }
      await this.db.write();
      // The summaries are gone first: a crash here leaves only unreferenced log files.
      for (const id of dropped) await rm(join(this.dir, `${id}.json`), {force: true});
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }
}
