/**
 * Runs `fn(0) … fn(count - 1)` with at most `limit` calls in flight, each worker taking the next
 * index when its call ends. Rejects with the first failure (calls already running finish on their
 * own), like Promise.all.
 */
export async function parallelFor(count: number, limit: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({length: Math.min(limit, count)}, worker));
}
