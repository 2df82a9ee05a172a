/**
 * The mail spool: one JSON file per queued message in a directory, so that reports survive a
 * crash, a reboot or a mail server that is down for a day.
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
import type {OutgoingMail} from './transport.js';

export interface SpooledMail {
  version: 1;
  id: string;
  /** When it was queued (ISO). */
  createdAt: string;
  mail: OutgoingMail;
  attempts: number;
  /** Epoch milliseconds of the next try. */
  nextAttemptAt: number;
  lastAttemptAt?: string;
  lastError?: string;
}

const SUFFIX = '.json';
/** Orders ids queued in the same millisecond by this process. */
let sequence = 0;

export class Spool {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    for (const sub of ['', 'failed', 'corrupt']) {
      try {
        await mkdir(join(this.dir, sub), {recursive: true, mode: 0o700});
      } catch (err) {
        throw explainIoError(err, this.dir, 'creating the mail spool');
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

  async write(entry: SpooledMail): Promise<void> {
    const final = join(this.dir, entry.id + SUFFIX);
    const temp = join(this.dir, `.${entry.id}.${process.pid}.tmp`);
    try {
      const fh = await open(temp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(entry));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, final);
      await this.syncDir();
    } catch (err) {
      await rm(temp, {force: true}).catch(() => {});
      throw explainIoError(err, final, 'writing a message to the mail spool');
    }
  }

  /** Every queued message, oldest first; unreadable files are moved to corrupt/. */
  async list(): Promise<SpooledMail[]> {
    const out: SpooledMail[] = [];
    for (const name of (await readdir(this.dir)).filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.')).sort()) {
      const path = join(this.dir, name);
      try {
        const entry = JSON.parse(await readFile(path, 'utf8')) as SpooledMail;
        if (entry.version !== 1 || !Array.isArray(entry.mail?.to) || typeof entry.mail.subject !== 'string') throw new Error('not a spooled message');
        out.push(entry);
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
  async fail(entry: SpooledMail): Promise<void> {
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
