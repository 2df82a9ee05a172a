/**
 * Delivery that never fails a session, for any kind of message (mail, webhooks): the daemon
 * enqueues and moves on; a sender loop delivers in the background, retrying with capped
 * exponential backoff while the receiver is unreachable, and across restarts (the spool is on
 * disk, see spool.ts).
 *
 * Contract:
 * - enqueue() never throws and returns as soon as the message is on disk. If the spool cannot
 *   be written (disk full), the message is kept in memory and the problem shows in status().
 * - Messages go out oldest first. Every message has a target (the mail server; one webhook): a
 *   failure that concerns the target (connection, TLS, login, a 5xx) pauses that target's
 *   messages until the backoff expires, and only those; one that concerns a single message (a
 *   refused recipient, a payload the receiver rejects) only delays that message.
 * - What the delivery needs beyond the message (settings, URLs, passwords) is read by `deliver`
 *   at each attempt, so a corrected setting applies to messages already queued; nothing secret
 *   is stored with them.
 * - A message older than maxAgeMs is given up and moved to the spool's failed/ folder.
 * - status() is what the console shows: pending count, last error (in plain words, with a
 *   hint), when the last attempt was made and when the next will be, overall and per target.
 */
import {UserError} from '../util/errors.js';
import {systemClock, type Clock, type Timer} from './clock.js';
import {Spool, type Spooled} from './spool.js';

/** What one attempt came to. */
export type DeliveryOutcome =
  | {ok: true; /** One line for the log, e.g. the server's answer. */ detail: string; /** Delivered, with something to tell (refused recipients). */ warning?: UserError}
  | {ok: false; error: UserError; /** 'target': the receiver is not usable now; 'message': only this message failed. */ scope: 'target' | 'message'};

export interface DeliveryQueueOptions<P> {
  spoolDir: string;
  /** The payload's field name in the spool files ('mail', 'webhook'), and the log prefix. */
  kind: string;
  /** Whether something read from the spool is a payload of this queue. */
  valid: (payload: unknown) => payload is P;
  /** The receiver a payload goes to: failures of one target never hold back another's messages. */
  target: (payload: P) => string;
  /** One attempt; a throw counts as a target-wide failure. */
  deliver: (payload: P) => Promise<DeliveryOutcome>;
  /** For the "queued" log line, e.g. "for 2 recipient(s)". */
  describe: (payload: P) => string;
  /** Names the spool in error messages, e.g. "the mail spool". */
  spoolName: string;
  clock?: Clock;
  /** First retry delay; doubles with each failure up to maxDelayMs. Default 30 s. */
  initialDelayMs?: number;
  /** Longest delay between two attempts. Default 1 hour. */
  maxDelayMs?: number;
  /** Give a message up after this long in the queue. Default 7 days. */
  maxAgeMs?: number;
  /** Where to write one line per delivery event (no message contents, no secrets). */
  log?: (line: string) => void;
}

export interface QueueError {
  message: string;
  hint?: string;
  at: string;
}

export interface DeliveryQueueStatus {
  /** Messages waiting to be sent. */
  pending: number;
  /** Messages given up on (in failed/), since the spool was created. */
  failed: number;
  lastError?: QueueError;
  lastAttemptAt?: string;
  lastSuccessAt?: string;
  /** When the next attempt is planned, if any message is waiting. */
  nextAttemptAt?: string;
  /** The same per target (mail: one; webhooks: one per webhook id), for targets seen since start. */
  targets: Record<string, {pending: number; lastError?: QueueError; lastSuccessAt?: string}>;
}

interface Entry<P> {
  data: Spooled<P>;
  /** False when the spool could not be written: the message lives only in memory. */
  durable: boolean;
}

interface TargetState {
  /** The target's messages wait until then after a target-wide failure. */
  pausedUntil: number;
  failures: number;
  lastError?: QueueError;
  lastSuccessAt?: number;
}

const DEFAULTS = {initialDelayMs: 30_000, maxDelayMs: 3_600_000, maxAgeMs: 7 * 24 * 3_600_000};

export class DeliveryQueue<P> {
  private readonly spool: Spool<P>;
  protected readonly clock: Clock;
  private readonly opts: Required<Pick<DeliveryQueueOptions<P>, 'initialDelayMs' | 'maxDelayMs' | 'maxAgeMs'>>;
  private readonly entries = new Map<string, Entry<P>>();
  private readonly targets = new Map<string, TargetState>();
  private started: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private failedCount = 0;
  private lastError: QueueError | undefined;
  private lastAttemptAt: number | undefined;
  private lastSuccessAt: number | undefined;

  constructor(private readonly options: DeliveryQueueOptions<P>) {
    this.spool = new Spool<P>(options.spoolDir, options.kind, options.valid, options.spoolName);
    this.clock = options.clock ?? systemClock;
    this.opts = {
      initialDelayMs: options.initialDelayMs ?? DEFAULTS.initialDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
      maxAgeMs: options.maxAgeMs ?? DEFAULTS.maxAgeMs,
    };
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
        this.recordError(undefined, err, `${capitalize(this.options.spoolName)} could not be opened`);
      }
      this.kick();
    })();
    return this.started;
  }

  /** Queues a message and returns its id at once; delivery happens in the background. */
  async enqueue(payload: P): Promise<string> {
    await this.start();
    const now = this.clock.now();
    const data: Spooled<P> = {version: 1, id: this.spool.newId(now), createdAt: new Date(now).toISOString(), payload, attempts: 0, nextAttemptAt: now};
    let durable = true;
    try {
      await this.spool.write(data);
    } catch (err) {
      durable = false;
      this.recordError(undefined, err, `A report could not be written to ${this.options.spoolName}; it is kept in memory until sent`);
    }
    this.entries.set(data.id, {data, durable});
    this.log(`queued ${data.id} ${this.options.describe(payload)}`);
    this.kick();
    return data.id;
  }

  status(): DeliveryQueueStatus {
    const next = this.nextDueAt();
    const targets: DeliveryQueueStatus['targets'] = {};
    for (const [name, t] of this.targets) targets[name] = {pending: 0, lastError: t.lastError, lastSuccessAt: iso(t.lastSuccessAt)};
    for (const e of this.entries.values()) {
      const name = this.options.target(e.data.payload);
      (targets[name] ??= {pending: 0}).pending++;
    }
    return {
      pending: this.entries.size,
      failed: this.failedCount,
      lastError: this.lastError,
      lastAttemptAt: iso(this.lastAttemptAt),
      lastSuccessAt: iso(this.lastSuccessAt),
      nextAttemptAt: next === undefined ? undefined : iso(Math.max(next, this.clock.now())),
      targets,
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
    for (const t of this.targets.values()) t.pausedUntil = 0;
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
      .catch((err) => this.recordError(undefined, err, `The ${this.options.kind} queue stopped unexpectedly`))
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  private target(name: string): TargetState {
    let t = this.targets.get(name);
    if (!t) this.targets.set(name, (t = {pausedUntil: 0, failures: 0}));
    return t;
  }

  /** One pass over the due messages, oldest first; a paused target's messages wait. */
  private async pass(): Promise<void> {
    const now = this.clock.now();
    const due = [...this.entries.values()].filter((e) => e.data.nextAttemptAt <= now).sort((a, b) => (a.data.id < b.data.id ? -1 : 1));
    for (const entry of due) {
      if (this.stopped) return;
      if (!this.entries.has(entry.data.id)) continue;
      if (this.clock.now() < this.target(this.options.target(entry.data.payload)).pausedUntil) continue;
      await this.attempt(entry);
    }
  }

  private async attempt(entry: Entry<P>): Promise<void> {
    const data = entry.data;
    const targetName = this.options.target(data.payload);
    const target = this.target(targetName);
    const now = this.clock.now();
    this.lastAttemptAt = now;
    data.attempts++;
    data.lastAttemptAt = new Date(now).toISOString();
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.options.deliver(data.payload);
    } catch (err) {
      outcome = {ok: false, scope: 'target', error: err instanceof UserError ? err : new UserError(`Delivery failed: ${err instanceof Error ? err.message : String(err)}`)};
    }
    if (outcome.ok) {
      await this.delivered(entry);
      target.failures = 0;
      target.pausedUntil = 0;
      this.lastSuccessAt = target.lastSuccessAt = this.clock.now();
      if (outcome.warning) {
        this.recordError(targetName, outcome.warning);
      } else if (![...this.entries.values()].some((e) => this.options.target(e.data.payload) === targetName)) {
        // Cleared only once nothing is waiting: a message stuck on its own error stays visible.
        target.lastError = undefined;
        if (this.entries.size === 0) this.lastError = undefined;
      }
      this.log(`sent ${data.id}: ${outcome.detail}`);
      return;
    }
    const {error, scope} = outcome;
    this.recordError(targetName, error);
    data.lastError = error.message;
    const after = this.clock.now();
    if (after - Date.parse(data.createdAt) >= this.opts.maxAgeMs) {
      data.lastError = `Given up after ${data.attempts} attempts: ${error.message}`;
      await this.giveUp(entry);
      return;
    }
    const failures = scope === 'target' ? ++target.failures : data.attempts;
    const delay = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * 2 ** Math.min(30, failures - 1));
    data.nextAttemptAt = after + delay;
    if (scope === 'target') target.pausedUntil = after + delay;
    await this.persist(entry);
    this.log(`not sent ${data.id} (attempt ${data.attempts}, next in ${Math.round(delay / 1000)} s): ${error.message}`);
  }

  private async delivered(entry: Entry<P>): Promise<void> {
    this.entries.delete(entry.data.id);
    if (entry.durable) {
      await this.spool.remove(entry.data.id).catch((err) => this.recordError(undefined, err, `A sent report could not be removed from ${this.options.spoolName}`));
    }
  }

  private async giveUp(entry: Entry<P>): Promise<void> {
    this.entries.delete(entry.data.id);
    this.failedCount++;
    this.log(`gave up ${entry.data.id}: ${entry.data.lastError}`);
    if (entry.durable) await this.spool.fail(entry.data).catch((err) => this.recordError(undefined, err, 'A report could not be moved to failed/'));
  }

  private async persist(entry: Entry<P>): Promise<void> {
    if (!entry.durable) return;
    // Keeping attempts and the next attempt time on disk makes the backoff survive a restart;
    // if this write fails the message is still in the spool with its old state, which is harmless.
    await this.spool.write(entry.data).catch(() => {});
  }

  private nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      const at = Math.max(e.data.nextAttemptAt, this.targets.get(this.options.target(e.data.payload))?.pausedUntil ?? 0);
      if (next === undefined || at < next) next = at;
    }
    return next;
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

  /** Records an error overall and, when it concerns one target, for that target. */
  private recordError(target: string | undefined, err: unknown, context?: string): void {
    const at = new Date(this.clock.now()).toISOString();
    let e: QueueError;
    if (err instanceof UserError) {
      e = {message: context ? `${context}: ${err.message}` : err.message, hint: err.hint, at};
    } else {
      e = {message: `${context ?? 'Delivery failed'}: ${err instanceof Error ? err.message : String(err)}`, at};
    }
    this.lastError = e;
    if (target !== undefined) this.target(target).lastError = e;
  }

  private log(line: string): void {
    this.options.log?.(`${this.options.kind}: ${line}`);
  }
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
