/**
 * The audit log: one JSON line per change requested through the control API (every method but
 * GET), refused ones included: when, who (the peer's uid and user name from SO_PEERCRED, and the
 * role they had), what (method and path, never a body: bodies hold passwords), and the outcome.
 * A 0600 file in the state directory; at 8 MiB it moves to audit.log.1 (one generation kept).
 */
import {open, readFile, rename, stat} from 'node:fs/promises';
import {join} from 'node:path';
import type {AuditEntry} from '../api/contract.js';

const MAX_BYTES = 8 << 20;

export class AuditLog {
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.path = join(stateDir, 'audit.log');
  }

  /** Appends an entry (serialized; a failure to write is reported, never thrown at the caller). */
  record(entry: AuditEntry, onError: (err: unknown) => void): Promise<void> {
    const next = this.queue.then(async () => {
      const size = await stat(this.path).then((s) => s.size, () => 0);
      if (size > MAX_BYTES) await rename(this.path, `${this.path}.1`);
      const fh = await open(this.path, 'a', 0o600);
      try {
        await fh.appendFile(`${JSON.stringify(entry)}\n`);
      } finally {
        await fh.close();
      }
    });
    this.queue = next.catch(onError);
    return this.queue as Promise<void>;
  }

  /** The newest `limit` entries, oldest first. */
  async newest(limit: number): Promise<AuditEntry[]> {
    await this.queue;
    const text = await readFile(this.path, 'utf8').catch(() => '');
    const lines = text.split('\n').filter(Boolean).slice(-limit);
    const out: AuditEntry[] = [];
    for (const l of lines) {
      try {
        out.push(JSON.parse(l) as AuditEntry);
      } catch {
        /* a line cut by a crash */
      }
    }
    return out;
  }
}

