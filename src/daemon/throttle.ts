/**
 * A token bucket for a job's bandwidth limit, passed to the engine as `throttle`: every disk
 * task of the session calls it with the bytes it is about to read, and waits when the session
 * is ahead of its rate. Burst: one second's worth. The clock is injectable for tests.
 */
export interface TokenBucketClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: TokenBucketClock = {now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms))};

export function tokenBucket(bytesPerSecond: number, clock: TokenBucketClock = realClock): (bytes: number) => Promise<void> {
  const capacity = bytesPerSecond;
  let tokens = capacity;
  let last = clock.now();
  // Waiters are served in order, so one large read cannot starve the others forever.
  let chain: Promise<void> = Promise.resolve();
  return (bytes: number) => {
    const take = async () => {
      const t = clock.now();
      tokens = Math.min(capacity, tokens + ((t - last) / 1000) * bytesPerSecond);
      last = t;
      tokens -= bytes;
      if (tokens < 0) await clock.sleep((-tokens / bytesPerSecond) * 1000);
    };
    chain = chain.then(take, take);
    return chain;
  };
}
