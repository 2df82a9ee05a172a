/**
 * The resource scheduler: hands each VM's work to a worker with free slots, preferring a worker
 * placed on the VM's host, then one in its cluster, then any (the appliance's own worker is
 * always among "any"); queues the rest in arrival order until slots free up.
 *
 * A VM's work is one task per disk; a VM asks for up to one slot per disk and gets at least one,
 * and runs that many disk tasks at once. Slots are shared fairly: requests that arrive together
 * are gathered (one turn of the event loop) and, while several wait, each gets its share of a
 * worker's free slots rather than all of them — a VM also spends time opening and committing
 * its backup, when extra slots would sit idle while other VMs wait (bench/daemon.ts). A grant of
 * a worker placed on the VM's host or cluster has a worker process on the VM's host read the
 * disks (sessions.ts hostWorkers → engine/placement.ts); the appliance's worker reads them here.
 */
import type {Placement, WorkerConfig} from '../config/schema.js';

export interface WorkRequest {
  connection: string;
  host?: string;
  cluster?: string;
  /** Slots wanted (the VM's disk count); at least one is granted. */
  want: number;
}

export interface Grant {
  worker: string;
  slots: number;
  release(): void;
}

interface Waiter {
  req: WorkRequest;
  resolve: (g: Grant) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
}

/** 0 = same host, 1 = same cluster, 2 = any; undefined = cannot serve. */
export function affinity(p: Placement, req: WorkRequest): number | undefined {
  if (p.kind === 'appliance') return 2;
  if (p.connection !== req.connection) return 2;
  if (p.kind === 'host') return p.host === req.host ? 0 : 2;
  return p.cluster === req.cluster ? 1 : 2;
}

export class ResourceScheduler {
  private workers: WorkerConfig[] = [];
  private readonly used = new Map<string, number>();
  private readonly queue: Waiter[] = [];
  private pumpScheduled = false;

  constructor(workers: WorkerConfig[]) {
    this.setWorkers(workers);
  }

  setWorkers(workers: WorkerConfig[]): void {
    this.workers = workers.map((w) => ({...w}));
    this.pump();
  }

  status(): {id: string; name: string; slots: number; used: number}[] {
    return this.workers.map((w) => ({id: w.id, name: w.name, slots: w.slots, used: this.used.get(w.id) ?? 0}));
  }

  get waiting(): number {
    return this.queue.length;
  }

  acquire(req: WorkRequest, signal?: AbortSignal): Promise<Grant> {
    return new Promise<Grant>((resolve, reject) => {
      const w: Waiter = {req, resolve, reject, signal};
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason);
          }
        },
        {once: true},
      );
      this.queue.push(w);
      this.schedulePump();
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pick(req: WorkRequest): WorkerConfig | undefined {
    let best: WorkerConfig | undefined;
    let bestScore = Infinity;
    for (const w of this.workers) {
      const free = w.slots - (this.used.get(w.id) ?? 0);
      const a = affinity(w.placement, req);
      if (free <= 0 || a === undefined) continue;
      // Closest placement first; among equals, the one with most free slots.
      const score = a * 1000 - free;
      if (score < bestScore) {
        best = w;
        bestScore = score;
      }
    }
    return best;
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const waiter = this.queue[i]!;
      const w = this.pick(waiter.req);
      if (!w) {
        i++;
        continue;
      }
      const waiting = this.queue.length - i;
      this.queue.splice(i, 1);
      const free = w.slots - (this.used.get(w.id) ?? 0);
      const share = Math.max(1, Math.floor(free / waiting));
      const slots = Math.max(1, Math.min(free, waiter.req.want, share));
      this.used.set(w.id, (this.used.get(w.id) ?? 0) + slots);
      let released = false;
      waiter.resolve({
        worker: w.id,
        slots,
        release: () => {
          if (released) return;
          released = true;
          this.used.set(w.id, Math.max(0, (this.used.get(w.id) ?? 0) - slots));
          this.pump();
        },
      });
    }
  }
}
