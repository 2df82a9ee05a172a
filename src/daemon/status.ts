/**
 * What the appliance reports about itself through the control API: the status (daemon, running
 * sessions, workers, repositories with space and cached statistics, mail queue), the session
 * list, and the newest log lines. Built by the Daemon (daemon.ts).
 */
import type {StatusReply} from '../api/client.js';
import type {SessionRecord} from '../api/session-model.js';
import type {ConfigStore} from '../config/store.js';
import {message} from '../engine/backup-vm.js';
import type {Clock} from '../notify/clock.js';
import type {MailQueue} from '../notify/mail-queue.js';
import type {WebhookQueue} from '../notify/webhooks.js';
import {diskSpace} from './disk-space.js';
import type {EventHub} from './event-hub.js';
import type {History} from './history.js';
import type {Maintenance} from './maintenance.js';
import type {Resources} from './resources.js';
import type {SessionManager} from './sessions.js';
import {VERSION} from './version.js';
import type {ResourceScheduler} from './workers.js';

/** Log lines kept in memory for GET /logs (the journal keeps the rest). */
export const LOG_RING_LINES = 2000;

interface RepoStatsCache {
  at: number;
  restorePoints: number;
  storedBytes: number;
  dedupRatio: number;
  compressionRatio: number;
  error?: string;
}

export interface StatusDeps {
  store: ConfigStore;
  resources: Resources;
  hub: EventHub;
  history: History;
  sessions: Pick<SessionManager, 'list'>;
  maintenance: Pick<Maintenance, 'fullMarks' | 'lastHealthCheck'>;
  workers: Pick<ResourceScheduler, 'status' | 'waiting'>;
  clock: Clock;
  mail?: MailQueue;
  webhooks?: WebhookQueue;
  stateDir: string;
  socketPath: string;
  startedAt: string;
  /** The newest log lines, oldest first (already scrubbed by the log). */
  recentLog: readonly string[];
  /** The secrets saved now, scrubbed again from lines logged before they were saved. */
  secrets: () => string[];
}

export class StatusService {
  private readonly repoStats = new Map<string, RepoStatsCache>();

  constructor(private readonly d: StatusDeps) {}

  /** Drops a repository's cached statistics (a session changed them). */
  forget(repositoryId: string): void {
    this.repoStats.delete(repositoryId);
  }

  logs(lines: number): {lines: string[]} {
    const n = Math.min(Math.max(1, Math.floor(lines)), LOG_RING_LINES);
    // A line logged before a secret was saved was not scrubbed for it when written.
    const secrets = this.d.secrets().filter((x) => x.length >= 3);
    return {lines: this.d.recentLog.slice(-n).map((l) => secrets.reduce((acc, x) => acc.split(x).join('••••'), l))};
  }

  sessionList(job: string | undefined, limit: number): Omit<SessionRecord, 'log'>[] {
    const running = new Map(this.d.sessions.list().map(({log: _log, ...rest}) => [rest.id, rest]));
    return this.d.history
      .list()
      .map((s) => running.get(s.id) ?? s)
      .filter((s) => !job || s.jobId === job)
      .slice(-limit)
      .reverse();
  }

  async status(): Promise<StatusReply> {
    const repositories = [];
    for (const r of this.d.store.list('repositories')) {
      const space = await this.d.resources.space(r.id, {wait: false});
      const cached = this.cachedStats(r.id);
      repositories.push({
        id: r.id,
        name: r.name,
        path: r.path,
        freeBytes: space?.freeBytes,
        totalBytes: space?.totalBytes,
        usedBytes: cached?.storedBytes,
        restorePoints: cached?.restorePoints,
        dedupRatio: cached?.dedupRatio,
        compressionRatio: cached?.compressionRatio,
        statsAt: cached ? new Date(cached.at).toISOString() : undefined,
        error: cached?.error,
        needsFullVms: Object.keys(this.d.maintenance.fullMarks()).length,
        encrypted: r.passphrase !== undefined,
        lastHealthCheck: this.d.maintenance.lastHealthCheck(r.id),
      });
    }
    const stateSpace = await diskSpace(this.d.stateDir);
    return {
      daemon: {
        version: VERSION, pid: process.pid, startedAt: this.d.startedAt, stateDir: this.d.stateDir, socket: this.d.socketPath, rssBytes: process.memoryUsage.rss(),
        stateFreeBytes: stateSpace?.freeBytes, stateTotalBytes: stateSpace?.totalBytes,
      },
      sessions: this.d.sessions.list().map(({log: _log, ...rest}) => rest),
      workers: this.d.workers.status(),
      waitingForWorkers: this.d.workers.waiting,
      repositories,
      mail: this.d.mail?.status(),
      webhooks: this.d.webhooks?.status(),
    };
  }

  /**
   * Repository statistics read every chunk's size, too slow for a status request: they are
   * computed in the background and served from this cache (refreshed after sessions, at most
   * once a minute otherwise).
   */
  private cachedStats(id: string): RepoStatsCache | undefined {
    const c = this.repoStats.get(id);
    if (!c || this.d.clock.now() - c.at > 60_000) {
      if (!c || c.at >= 0) {
        const marker: RepoStatsCache = c ? {...c, at: -1} : {at: -1, restorePoints: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1};
        this.repoStats.set(id, marker);
        void this.d.resources
          .repository(id)
          .then((repo) => repo.stats())
          .then(
            (s) => this.repoStats.set(id, {at: this.d.clock.now(), restorePoints: s.restorePoints, storedBytes: s.storedBytes, dedupRatio: s.dedupRatio, compressionRatio: s.compressionRatio}),
            (err: unknown) => this.repoStats.set(id, {at: this.d.clock.now(), restorePoints: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, error: message(err)}),
          )
          // Tell clients the figures are in, so a dashboard that asked too early shows them.
          .then(() => this.d.hub.emit({type: 'maintenance', repository: id, action: 'stats', state: 'finished'}));
      }
    }
    return c && c.at >= 0 ? c : undefined;
  }

  /** SIGTERM: stop accepting, stop sessions cleanly (restore points and platform jobs aborted), close. */
}
