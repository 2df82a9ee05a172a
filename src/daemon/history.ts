/**
 * Session history: every session the daemon ran, newest last, in one SQLite database under the
 * state directory (history.sqlite, 0600; node:sqlite, built into the pinned Node). A session's
 * summary is one row, its log lines rows of their own, so an update writes that session's row and
 * its new log lines: its cost does not grow with the history (the JSON document it replaced
 * rewrote and fsynced every session on every update: 148 MiB and 4.7 s per write at 200 VMs per
 * session). Capped at the configured count (the oldest finished sessions go, with their logs).
 * Written when a session starts, after each VM and at the end; progress is not persisted.
 *
 * Durability: WAL with synchronous=FULL, so a save() that returned survives a power cut; a crash
 * mid-save leaves the previous state (each save is one transaction).
 *
 * Migration: a state directory from before (sessions.json and sessions/<id>.json) is imported on
 * the first start, in one transaction, and the old files are renamed to *.migrated (kept for the
 * administrator; nothing reads them any more).
 */
import {closeSync, existsSync, openSync, chmodSync} from 'node:fs';
import {readdir, readFile, rename, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {DatabaseSync, type StatementSync} from 'node:sqlite';
import {ID_PATTERN} from '../config/fields.js';
import type {LogLine, SessionRecord} from '../api/session-model.js';

export const HISTORY_DB = 'history.sqlite';
/** The files of the JSON history this replaced (imported once, then renamed to *.migrated). */
export const LEGACY_FILE = 'sessions.json';
export const LEGACY_LOG_DIR = 'sessions';

export type SessionSummary = Omit<SessionRecord, 'log'>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL,
  summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
  session TEXT NOT NULL,
  n INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (session, n)
) WITHOUT ROWID;
`;

export class History {
  /** Every session, oldest first, without logs (the summaries live in memory too: list() is hot). */
  private readonly sessions: SessionSummary[] = [];
  private readonly index = new Map<string, number>();
  /** Log lines stored per session, for the sessions saved since the start. */
  private readonly logCount = new Map<string, number>();
  private readonly st: {
    upsert: StatementSync;
    logCount: StatementSync;
    logAppend: StatementSync;
    logClear: StatementSync;
    logRead: StatementSync;
    oldestFinished: StatementSync;
    remove: StatementSync;
  };

  private constructor(
    private readonly db: DatabaseSync,
    private readonly cap: () => number,
  ) {
    this.st = {
      upsert: db.prepare('INSERT INTO sessions (id, state, summary) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, summary = excluded.summary'),
      logCount: db.prepare('SELECT count(*) AS n FROM log WHERE session = ?'),
      logAppend: db.prepare('INSERT INTO log (session, n, line) VALUES (?, ?, ?)'),
      logClear: db.prepare('DELETE FROM log WHERE session = ?'),
      logRead: db.prepare('SELECT line FROM log WHERE session = ? ORDER BY n'),
      oldestFinished: db.prepare("SELECT id FROM sessions WHERE state != 'running' ORDER BY seq LIMIT ?"),
      remove: db.prepare('DELETE FROM sessions WHERE id = ?'),
    };
    for (const row of db.prepare('SELECT summary FROM sessions ORDER BY seq').all()) this.remember(JSON.parse(String(row.summary)) as SessionSummary);
  }

  static async open(stateDir: string, cap: () => number): Promise<History> {
    const file = join(stateDir, HISTORY_DB);
    // 0600 from the first byte (SQLite gives its -wal and -shm files the database file's mode).
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
    const db = new DatabaseSync(file);
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
      db.exec(SCHEMA);
      await migrateLegacy(db, stateDir);
      return new History(db, cap);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private remember(s: SessionSummary): void {
    const at = this.index.get(s.id);
    if (at !== undefined) this.sessions[at] = s;
    else {
      this.index.set(s.id, this.sessions.length);
      this.sessions.push(s);
    }
  }

  /** Every session, oldest first, without logs. */
  list(): SessionSummary[] {
    return this.sessions;
  }

  /** One session with its log. */
  async get(id: string): Promise<SessionRecord | undefined> {
    const at = this.index.get(id);
    if (at === undefined) return undefined;
    const log = this.st.logRead.all(id).map((r) => JSON.parse(String(r.line)) as LogLine);
    return {...structuredClone(this.sessions[at]!), log};
  }

  /**
   * Adds or replaces `record` (summary and log) durably, in one transaction: the summary row, the
   * log lines not stored yet (a log only grows; one that shrank is stored again), and the removal
   * of the oldest finished sessions beyond the cap.
   */
  async save(record: SessionRecord): Promise<void> {
    // Session ids are made by the daemon; check anyway, since the id keys the history.
    if (!ID_PATTERN.test(record.id)) throw new Error(`bad session id ${record.id}`);
    const {log, ...summary} = structuredClone(record);
    const db = this.db;
    const dropped: string[] = [];
    db.exec('BEGIN IMMEDIATE');
    try {
      this.st.upsert.run(summary.id, summary.state, JSON.stringify(summary));
      let stored = this.logCount.get(summary.id) ?? Number((this.st.logCount.get(summary.id) as {n: number}).n);
      if (log.length < stored) {
        this.st.logClear.run(summary.id);
        stored = 0;
      }
      for (let n = stored; n < log.length; n++) this.st.logAppend.run(summary.id, n, JSON.stringify(log[n]));
      const known = this.index.has(summary.id) ? this.sessions.length : this.sessions.length + 1;
      const extra = known - this.cap();
      if (extra > 0) {
        for (const row of this.st.oldestFinished.all(extra)) {
          const id = String(row.id);
          if (id === summary.id) continue;
          this.st.remove.run(id);
          this.st.logClear.run(id);
          dropped.push(id);
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    this.logCount.set(summary.id, log.length);
    this.remember(summary);
    if (dropped.length > 0) {
      const gone = new Set(dropped);
      const kept = this.sessions.filter((s) => !gone.has(s.id));
      this.sessions.length = 0;
      this.index.clear();
      for (const s of kept) this.remember(s);
      for (const id of dropped) this.logCount.delete(id);
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

/** Imports sessions.json and sessions/<id>.json once, then sets them aside as *.migrated. */
async function migrateLegacy(db: DatabaseSync, stateDir: string): Promise<void> {
  const file = join(stateDir, LEGACY_FILE);
  if (!existsSync(file)) return;
  const data = JSON.parse(await readFile(file, 'utf8')) as {sessions?: SessionSummary[]};
  const sessions = Array.isArray(data.sessions) ? data.sessions : [];
  const logDir = join(stateDir, LEGACY_LOG_DIR);
  const logs = new Map<string, LogLine[]>();
  for (const s of sessions) {
    if (typeof s?.id !== 'string' || !ID_PATTERN.test(s.id)) continue;
    const text = await readFile(join(logDir, `${s.id}.json`), 'utf8').catch(() => undefined);
    try {
      logs.set(s.id, text ? (JSON.parse(text) as LogLine[]) : []);
    } catch {
      logs.set(s.id, []); // a log file damaged by the old format's crash: the summary still counts
    }
  }
  db.exec('BEGIN IMMEDIATE');
  try {
    const has = db.prepare('SELECT 1 FROM sessions WHERE id = ?');
    const insert = db.prepare('INSERT INTO sessions (id, state, summary) VALUES (?, ?, ?)');
    const line = db.prepare('INSERT INTO log (session, n, line) VALUES (?, ?, ?)');
    for (const s of sessions) {
      if (!logs.has(s.id) || has.get(s.id)) continue;
      insert.run(s.id, s.state, JSON.stringify(s));
      logs.get(s.id)!.forEach((l, n) => line.run(s.id, n, JSON.stringify(l)));
    }
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
  // Only after the import committed: a crash before this line imports again (rows already there are skipped).
  await rename(file, `${file}.migrated`);
  if (existsSync(logDir)) await rename(logDir, `${logDir}.migrated`);
  for (const f of await readdir(stateDir)) if (f.startsWith(`${LEGACY_FILE}.`) && f.endsWith('.tmp')) await rm(join(stateDir, f), {force: true});
}
