/**
 * A bounded set of tasks in flight, for the data movers (backup disk task, restore copy).
 * The first failure is kept; `add` waits while the pool is full; `settle` waits for every task
 * and rethrows the first failure. A producer checks `failed` (and its abort signal) before it
 * hands out more work, so a failure stops new work but never abandons work in flight.
 */
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: {error: unknown} | undefined;

  constructor(private readonly limit: number) {}

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Records a failure that did not come from a task (a cancelled session). */
  fail(error: unknown): void {
    this.failure ??= {error};
  }

  /** Starts a task, then waits until the pool has room for the next one. */
  async add(task: () => Promise<void>): Promise<void> {
    const p: Promise<void> = task().then(
      () => {
        this.running.delete(p);
      },
      (err: unknown) => {
        this.running.delete(p);
        this.fail(err);
      },
    );
    this.running.add(p);
    while (this.running.size >= this.limit) await Promise.race(this.running);
  }

  async settle(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
