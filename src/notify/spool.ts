/**
 * A delivery spool: one JSON file per queued message in a directory, so that reports survive a
 * crash, a reboot or a mail server (or webhook receiver) that is down for a day. The mail queue
 * keeps its messages under the field `mail`, the webhook queue under `webhook`; the rest of an
 * entry (attempts, next attempt, last error) is the same for both.
 *
 * Durability: a file is written to a temporary name, fsynced, renamed into place and the
 * directory fsynced, so a reader sees either the whole message or nothing (never half a file).
 * Files are mode 0600 and the directory 0700: a message holds addresses and report contents.
 * No secret is ever written here: the SMTP password stays in the settings and is read at send
 * time. A file that cannot be parsed is moved to corrupt/ so that it never blocks the queue;
 * messages the queue gives up on are moved to failed/ for the administrator to look at.
 *
 * One process owns a spool directory at a time (the daemon); two queues on one directory
 * could send a message twice.
 */
import {randomUUID} from 'node:crypto';
import {chmod, mkdir, open, readdir, readFile, rename, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {explainIoError} from '../util/errors.js';

export interface Spooled<P> {
  version: 1;
  id: string;
  /** When it was queued (ISO). */
  createdAt: string;
  /** What is delivered; on disk under the spool's own field name (`mail`, `webhook`). */
  payload: P;
  attempts: number;
  /** Epoch milliseconds of the next try. */
  nextAttemptAt: number;
  lastAttemptAt?: string;
  lastError?: string;
}

const SUFFIX = '.json';
/** Orders ids queued in the same millisecond by this process. */
let sequence = 0;

export class Spool<P> {
  /**
   * `field`: the name of the payload's field in the files; `valid`: whether a parsed payload is
   * one (anything else is moved to corrupt/). `what` names the spool in error messages.
   */
  constructor(
    readonly dir: string,
    private readonly field: string,
    private readonly valid: (payload: unknown) => payload is P,
    private readonly what = 'the mail spool',
  ) {}

  async init(): Promise<void> {
    for (const sub of ['', 'failed', 'corrupt']) {
      try {
        await mkdir(join(this.dir, sub), {recursive: true, mode: 0o700});
      } catch (err) {
        throw explainIoError(err, this.dir, `creating ${this.what}`);
      }
    }
    // mkdir's mode does not apply to a directory that already exists (made by an installer, say).
    await chmod(this.dir, 0o700).catch(() => {});
    // Temporary files are from a write that crashed before its rename: never a committed message.
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) await rm(join(this.dir, name), {force: true});
    }
  }

  /** A new id; ids sort in queueing order. */
  newId(nowMs: number): string {
    sequence = (sequence + 1) % 1_000_000;
    return `${String(nowMs).padStart(15, '0')}-${String(sequence).padStart(6, '0')}-${randomUUID().slice(0, 8)}`;
  }

  async write(entry: Spooled<P>): Promise<void> {
    const final = join(this.dir, entry.id + SUFFIX);
    const temp = join(this.dir, `.${entry.id}.${process.pid}.tmp`);
    try {
      const fh = await open(temp, 'w', 0o600);
      try {
        const {payload, ...rest} = entry;
        await fh.writeFile(JSON.stringify({...rest, [this.field]: payload}));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, final);
      await this.syncDir();
    } catch (err) {
      await rm(temp, {force: true}).catch(() => {});
      throw explainIoError(err, final, `writing a message to ${this.what}`);
    }
  }

  /** Every queued message, oldest first; unreadable files are moved to corrupt/. */
  async list(): Promise<Spooled<P>[]> {
    const out: Spooled<P>[] = [];
    for (const name of (await readdir(this.dir)).filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.')).sort()) {
      const path = join(this.dir, name);
      try {
        const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
        const {[this.field]: payload, ...rest} = raw;
        if (rest['version'] !== 1 || typeof rest['id'] !== 'string' || typeof rest['createdAt'] !== 'string' || !this.valid(payload)) throw new Error('not a spooled message');
        out.push({...(rest as Omit<Spooled<P>, 'payload'>), payload});
      } catch (err) {
        if ((err as {code?: string}).code === 'ENOENT') continue;
        await rename(path, join(this.dir, 'corrupt', name)).catch(() => {});
      }
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.dir, id + SUFFIX), {force: true});
    await this.syncDir();
  }

  /** Moves a message the queue gave up on to failed/, keeping its last error in the file. */
  async fail(entry: Spooled<P>): Promise<void> {
    await this.write(entry);
    await rename(join(this.dir, entry.id + SUFFIX), join(this.dir, 'failed', entry.id + SUFFIX));
    await this.syncDir();
  }

  async failedCount(): Promise<number> {
    return (await readdir(join(this.dir, 'failed')).catch(() => [])).filter((n) => n.endsWith(SUFFIX)).length;
  }

  private async syncDir(): Promise<void> {
    // The rename is only durable once the directory entry is on disk.
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
