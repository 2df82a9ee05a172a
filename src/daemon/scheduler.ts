/**
 * Fires scheduled work: jobs on their schedules, daily GC, per-repository health checks.
 *
 * node-cron 4.6 decides which minutes match (config/schedule.ts nextRuns); the timing is ours,
 * on an injectable Clock, so a test moves time to 22:30 instead of waiting for it, and the same
 * code path runs in production. After each firing — or any configuration change — the entry is
 * re-armed from the clock's "now", so a missed run (daemon down) is not replayed in a burst.
 */
import {setLogger} from 'node-cron';
import type {Clock, Timer} from '../notify/clock.js';
import {nextRuns, type Schedule} from '../config/schedule.js';
import type {DaemonLog} from './log.js';

export interface ScheduledEntry {
  key: string;
  schedule: Schedule;
  run: () => void | Promise<void>;
}

export class Scheduler {
  private readonly timers = new Map<string, {timer: Timer; at: number}>();
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly entries: () => ScheduledEntry[],
    private readonly log: DaemonLog,
  ) {
    // node-cron writes coloured warnings to the console by default (docs/reference/ecosystem.md P10).
    setLogger({
      info: (m) => log('debug', `node-cron: ${m}`),
      warn: (m) => log('warn', `node-cron: ${m}`),
      error: (m) => log('error', `node-cron: ${String(m)}`),
      debug: () => {},
    });
  }

  /** (Re-)arms every entry; call after each configuration change. */
  refresh(): void {
    if (this.stopped) return;
    const wanted = new Map(this.entries().map((e) => [e.key, e]));
    for (const [key, t] of this.timers) {
      t.timer.cancel();
      this.timers.delete(key);
    }
    for (const e of wanted.values()) this.arm(e);
  }

  /** The next time each entry fires (ISO), for the API. */
  nextRun(key: string): string | undefined {
    const t = this.timers.get(key);
    return t ? new Date(t.at).toISOString() : undefined;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) t.timer.cancel();
    this.timers.clear();
  }

  private arm(e: ScheduledEntry): void {
    const now = this.clock.now();
    const [next] = nextRuns(e.schedule, new Date(now), 1);
    if (!next) return;
    const at = next.getTime();
    const timer = this.clock.setTimer(() => this.fire(e.key, at), at - now);
    this.timers.set(e.key, {timer, at});
  }

  private fire(key: string, at: number): void {
    if (this.stopped) return;
    const e = this.entries().find((x) => x.key === key);
    this.timers.delete(key);
    if (!e) return;
    // Long delays are clamped by setTimeout: a timer may fire early; then only re-arm.
    if (this.clock.now() + 1000 < at) {
      const timer = this.clock.setTimer(() => this.fire(key, at), at - this.clock.now());
      this.timers.set(key, {timer, at});
      return;
    }
    this.log('info', `Scheduled run: ${key}`);
    Promise.resolve()
      .then(e.run)
      .catch((err: unknown) => this.log('warn', `Scheduled run of ${key} failed: ${err instanceof Error ? err.message : String(err)}`));
    this.arm(e);
  }
}
