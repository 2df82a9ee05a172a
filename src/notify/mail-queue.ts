/**
 * Delivery that never fails a session: the daemon enqueues a report and moves on; a sender
 * loop delivers it in the background, retrying with capped exponential backoff while the mail
 * server is unreachable, and across restarts (the spool is on disk, see spool.ts).
 *
 * Contract:
 * - enqueue() never throws and returns as soon as the message is on disk. If the spool cannot
 *   be written (disk full), the message is kept in memory and the problem shows in status().
 * - Messages go out oldest first. A failure that concerns the server (connection, TLS, login)
 *   pauses the whole queue until the backoff expires; one that concerns a single message (a
 *   refused recipient) only delays that message.
 * - Settings are read at each attempt, so a corrected password applies to messages already
 *   queued; nothing secret is stored with them.
 * - A message older than maxAgeMs is given up and moved to the spool's failed/ folder.
 * - status() is what the console shows: pending count, last error (in plain words, with a
 *   hint), when the last attempt was made and when the next will be.
 */
import {explainMailError} from './mail-errors.js';
import type {EmailSettings} from './settings.js';
import {Spool, type SpooledMail} from './spool.js';
import {sendMail, type OutgoingMail, type SendResult} from './transport.js';
import {systemClock, type Clock, type Timer} from './clock.js';
import {UserError} from '../util/errors.js';

export interface MailQueueOptions {
  spoolDir: string;
  /** The current email settings, read at every attempt; undefined when email is not set up. */
  settings: () => EmailSettings | undefined | Promise<EmailSettings | undefined>;
  clock?: Clock;
  /** First retry delay; doubles with each failure up to maxDelayMs. Default 30 s. */
  initialDelayMs?: number;
  /** Longest delay between two attempts. Default 1 hour. */
  maxDelayMs?: number;
  /** Give a message up after this long in the queue. Default 7 days. */
  maxAgeMs?: number;
  /** The delivery function; default: nodemailer through sendMail(). */
  send?: (settings: EmailSettings, mail: OutgoingMail) => Promise<SendResult>;
  /** Where to write one line per delivery event (no addresses' contents, no secrets). */
  log?: (line: string) => void;
}

export interface MailQueueStatus {
  /** Messages waiting to be sent. */
  pending: number;
  /** Messages given up on (in failed/), since the spool was created. */
  failed: number;
  lastError?: {message: string; hint?: string; at: string};
  lastAttemptAt?: string;
  lastSuccessAt?: string;
  /** When the next attempt is planned, if any message is waiting. */
  nextAttemptAt?: string;
}

interface Entry {
  data: SpooledMail;
  /** False when the spool could not be written: the message lives only in memory. */
  durable: boolean;
}

const DEFAULTS = {initialDelayMs: 30_000, maxDelayMs: 3_600_000, maxAgeMs: 7 * 24 * 3_600_000};

/** nodemailer codes for failures of one message rather than of the server or the connection. */
const MESSAGE_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

export class MailQueue {
  private readonly spool: Spool;
  private readonly clock: Clock;
  private readonly opts: Required<Pick<MailQueueOptions, 'initialDelayMs' | 'maxDelayMs' | 'maxAgeMs'>>;
  private readonly send: NonNullable<MailQueueOptions['send']>;
  private readonly entries = new Map<string, Entry>();
  private started: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  /** The whole queue waits until then after a server-wide failure. */
  private pausedUntil = 0;
  private serverFailures = 0;
  private failedCount = 0;
  private lastError: MailQueueStatus['lastError'];
  private lastAttemptAt: number | undefined;
  private lastSuccessAt: number | undefined;

  constructor(private readonly options: MailQueueOptions) {
    this.spool = new Spool(options.spoolDir);
    this.clock = options.clock ?? systemClock;
    this.opts = {
      initialDelayMs: options.initialDelayMs ?? DEFAULTS.initialDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
      maxAgeMs: options.maxAgeMs ?? DEFAULTS.maxAgeMs,
    };
    this.send = options.send ?? sendMail;
  }

  /**
   * Opens the spool and starts sending what an earlier process left in it (at once: a restart
   * is a good moment to try). Called implicitly by enqueue(); safe to call more than once.
   */
  start(): Promise<void> {
    this.started ??= (async () => {
      try {
        await this.spool.init();
        for (const data of await this.spool.list()) {
          data.nextAttemptAt = Math.min(data.nextAttemptAt, this.clock.now());
          this.entries.set(data.id, {data, durable: true});
        }
        this.failedCount = await this.spool.failedCount();
      } catch (err) {
        this.recordError(err, 'The mail spool could not be opened');
      }
      this.kick();
    })();
    return this.started;
  }

  /** Queues a message and returns its id at once; delivery happens in the background. */
  async enqueue(mail: OutgoingMail): Promise<string> {
    await this.start();
    const now = this.clock.now();
    const data: SpooledMail = {version: 1, id: this.spool.newId(now), createdAt: new Date(now).toISOString(), mail, attempts: 0, nextAttemptAt: now};
    let durable = true;
    try {
      await this.spool.write(data);
    } catch (err) {
      durable = false;
      this.recordError(err, 'A report could not be written to the mail spool; it is kept in memory until sent');
    }
    this.entries.set(data.id, {data, durable});
    this.log(`queued ${data.id} for ${mail.to.length} recipient(s)`);
    this.kick();
    return data.id;
  }

  status(): MailQueueStatus {
    const next = this.nextDueAt();
    return {
      pending: this.entries.size,
      failed: this.failedCount,
      lastError: this.lastError,
      lastAttemptAt: iso(this.lastAttemptAt),
      lastSuccessAt: iso(this.lastSuccessAt),
      nextAttemptAt: next === undefined ? undefined : iso(Math.max(next, this.clock.now())),
    };
  }

  /** Tries every message that is due now and resolves when that pass (and any it set off) is over. */
  async flush(): Promise<void> {
    await this.start();
    this.kick();
    while (this.running) await this.running;
  }

  /** "Retry now" in the console: forgets the backoff and tries every message at once. */
  async retryNow(): Promise<void> {
    this.pausedUntil = 0;
    for (const e of this.entries.values()) e.data.nextAttemptAt = Math.min(e.data.nextAttemptAt, this.clock.now());
    await this.flush();
  }

  /** Stops the sender loop after the message in flight; what is queued stays in the spool. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    })()
      .catch((err) => this.recordError(err, 'The mail queue stopped unexpectedly'))
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  /** One pass over the due messages, oldest first. */
  private async pass(): Promise<void> {
    const now = this.clock.now();
    if (now < this.pausedUntil) return;
    const due = [...this.entries.values()].filter((e) => e.data.nextAttemptAt <= now).sort((a, b) => (a.data.id < b.data.id ? -1 : 1));
    for (const entry of due) {
      if (this.stopped) return;
      const serverDown = await this.attempt(entry);
      if (serverDown) return;
    }
  }

  /** Sends one message; returns true when the failure means the server is not usable now. */
  private async attempt(entry: Entry): Promise<boolean> {
    const data = entry.data;
    const now = this.clock.now();
    this.lastAttemptAt = now;
    data.attempts++;
    data.lastAttemptAt = new Date(now).toISOString();
    let serverWide = true;
    const read = await this.readSettings();
    const settings = read.settings;
    let error = read.error;
    if (!error && !settings) {
      error = new UserError('Email is not set up, so reports cannot be sent.', {hint: 'Configure the mail server in the email settings; queued reports are sent then.'});
    }
    if (settings && !error) {
      try {
        const result = await this.send(settings, data.mail);
        await this.delivered(entry);
        this.serverFailures = 0;
        this.lastSuccessAt = this.clock.now();
        if (result.rejected.length > 0) {
          this.recordError(
            new UserError(`The mail server refused these recipients: ${result.rejected.join(', ')}; the others received the report.`, {
              hint: 'Check those addresses, and that the server relays to their domain for this appliance.',
            }),
          );
        } else if (this.entries.size === 0) {
          // Cleared only once nothing is waiting: a message stuck on its own error stays visible.
          this.lastError = undefined;
        }
        this.log(`sent ${data.id}: ${result.response}`);
        return false;
      } catch (err) {
        error = explainMailError(err, settings);
        serverWide = !MESSAGE_ERRORS.has((err as {code?: string}).code ?? '');
      }
    }

    if (!error) throw new Error('unreachable: an attempt ended without a result');
    this.recordError(error);
    data.lastError = error.message;
    const after = this.clock.now();
    if (after - Date.parse(data.createdAt) >= this.opts.maxAgeMs) {
      data.lastError = `Given up after ${data.attempts} attempts: ${error.message}`;
      await this.giveUp(entry);
      return false;
    }
    const failures = serverWide ? ++this.serverFailures : data.attempts;
    const delay = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * 2 ** Math.min(30, failures - 1));
    data.nextAttemptAt = after + delay;
    if (serverWide) this.pausedUntil = after + delay;
    await this.persist(entry);
    this.log(`not sent ${data.id} (attempt ${data.attempts}, next in ${Math.round(delay / 1000)} s): ${error.message}`);
    return serverWide;
  }

  /** The settings, or the reason they cannot be had (the config store failed): never throws. */
  private async readSettings(): Promise<{settings?: EmailSettings; error?: UserError}> {
    try {
      return {settings: await this.options.settings()};
    } catch (err) {
      const error =
        err instanceof UserError
          ? err
          : new UserError(`The email settings could not be read: ${err instanceof Error ? err.message : String(err)}`, {
              hint: 'Check the email settings in the configuration.',
            });
      return {error};
    }
  }

  private async delivered(entry: Entry): Promise<void> {
    this.entries.delete(entry.data.id);
    if (entry.durable) {
      await this.spool.remove(entry.data.id).catch((err) => this.recordError(err, 'A sent report could not be removed from the spool'));
    }
  }

  private async giveUp(entry: Entry): Promise<void> {
    this.entries.delete(entry.data.id);
    this.failedCount++;
    this.log(`gave up ${entry.data.id}: ${entry.data.lastError}`);
    if (entry.durable) await this.spool.fail(entry.data).catch((err) => this.recordError(err, 'A report could not be moved to failed/'));
  }

  private async persist(entry: Entry): Promise<void> {
    if (!entry.durable) return;
    // Keeping attempts and the next attempt time on disk makes the backoff survive a restart;
    // if this write fails the message is still in the spool with its old state, which is harmless.
    await this.spool.write(entry.data).catch(() => {});
  }

  private nextDueAt(): number | undefined {
    if (this.entries.size === 0) return undefined;
    const earliest = Math.min(...[...this.entries.values()].map((e) => e.data.nextAttemptAt));
    return Math.max(earliest, this.pausedUntil);
  }

  private schedule(): void {
    if (this.stopped) return;
    const next = this.nextDueAt();
    if (next === undefined) {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = undefined;
      return;
    }
    if (this.timer && this.timerAt === next) return;
    this.timer?.cancel();
    this.timerAt = next;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.kick();
    }, next - this.clock.now());
  }

  private recordError(err: unknown, context?: string): void {
    const at = new Date(this.clock.now()).toISOString();
    if (err instanceof UserError) {
      this.lastError = {message: context ? `${context}: ${err.message}` : err.message, hint: err.hint, at};
    } else {
      this.lastError = {message: `${context ?? 'Mail delivery failed'}: ${err instanceof Error ? err.message : String(err)}`, at};
    }
  }

  private log(line: string): void {
    this.options.log?.(`mail: ${line}`);
  }
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
