/**
 * The time source of the mail queue, injectable so that tests can move time forward instead of
 * waiting for a backoff to expire.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; the timer must not keep the process alive on its own. */
  setTimer(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    // setTimeout's limit is 2^31-1 ms; backoffs are far below, but clamp anyway.
    const t = setTimeout(fn, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    t.unref();
    return {cancel: () => clearTimeout(t)};
  },
};

/** A clock that only moves when told to: `advance(ms)` fires the timers that fall due. */
export class ManualClock implements Clock {
  private timers: {at: number; fn: () => void; live: boolean}[] = [];

  constructor(private current = Date.parse('2026-11-23T08:00:00Z')) {}

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const timer = {at: this.current + Math.max(0, ms), fn, live: true};
    this.timers.push(timer);
    return {cancel: () => (timer.live = false)};
  }

  advance(ms: number): void {
    this.current += ms;
    const due = this.timers.filter((t) => t.live && t.at <= this.current);
    this.timers = this.timers.filter((t) => t.live && t.at > this.current);
    for (const t of due) t.fn();
  }

  /** Milliseconds until the next live timer, or undefined if none is set. */
  nextTimerIn(): number | undefined {
    const live = this.timers.filter((t) => t.live);
    return live.length ? Math.min(...live.map((t) => t.at)) - this.current : undefined;
  }
}
