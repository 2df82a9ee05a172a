/**
 * One operation per VM at a time across all jobs: a VM that two jobs back up waits for the
 * other job's operation to finish. Waiters are served in order; a waiter can give up (stop).
 */
export class VmLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly holders = new Map<string, string>();

  /** Who holds the VM now (a session id), if anyone. */
  holder(vmKey: string): string | undefined {
    return this.holders.get(vmKey);
  }

  /** Resolves with a release function once the VM is free; rejects if `signal` aborts first. */
  async acquire(vmKey: string, owner: string, signal?: AbortSignal): Promise<() => void> {
    const prev = this.tails.get(vmKey) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(vmKey, tail);
    const done = () => {
      if (this.holders.get(vmKey) === owner) this.holders.delete(vmKey);
      release();
      if (this.tails.get(vmKey) === tail) this.tails.delete(vmKey);
    };
    if (signal) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          // Pass our turn on when it comes, without ever holding the VM.
          prev.then(done, done);
          reject(signal.reason ?? new Error('aborted'));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, {once: true});
        prev.then(() => {
          signal.removeEventListener('abort', onAbort);
          if (!signal.aborted) resolve();
        });
      });
    } else {
      await prev;
    }
    this.holders.set(vmKey, owner);
    return done;
  }
}
