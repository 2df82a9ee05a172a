/**
 * vmbackupd's composition root: opens the state (configuration, session history, needs-full
 * marks), builds the live resources, the session runner, the scheduler and the control API, and
 * runs start-up reconciliation. The control API calls the methods here; they hold the little
 * glue that spans several parts (e.g. a new repository is created on disk before it is saved).
 */
import {ensureApplianceKey} from './appliance-key.js';
import type {ApplianceSshKeyReply} from '../api/contract.js';
import {Restores} from './restores.js';
import {rm, statfs, writeFile} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import {ConfigError, parseConfig} from '../config/parse.js';
import {connectionSchema, emailSettingsSchema, repositorySchema, settingsSchema} from '../config/schema.js';
import {describeSchedule, nextRuns} from '../config/schedule.js';
import {keepSecrets, redact, secretValues} from '../config/secrets.js';
import {APPLIANCE_WORKER, ConfigStore, type Collection, type CollectionTypes} from '../config/store.js';
import {message} from '../engine/backup-vm.js';
import {systemClock, type Clock} from '../notify/clock.js';
import {MailQueue} from '../notify/mail-queue.js';
import {smtpSettingsSchema} from '../notify/settings.js';
import {sendTestMessage} from '../notify/test-message.js';
import {ExitCode, explainIoError, isUserError, UserError} from '../util/errors.js';
import {ApiServer} from './api.js';
import {EventHub} from './event-hub.js';
import {History} from './history.js';
import {DailySummary, dailyCron, parseDailySummaryChange, summaryInput} from './daily-summary.js';
import {createLog, journalLine, type DaemonLog, type Level} from './log.js';
import {Maintenance} from './maintenance.js';
import {cleanupConnections, closeInterruptedSessions} from './reconcile.js';
import {Resources} from './resources.js';
import {Scheduler, type ScheduledEntry} from './scheduler.js';
import type {SessionRecord} from '../api/session-model.js';
import {SessionManager} from './sessions.js';
import {VmLocks} from './vm-locks.js';
import {ResourceScheduler} from './workers.js';
import type {TestEmailReply} from '../api/contract.js';

export const VERSION = '0.1.0';

/** Log lines kept in memory for GET /logs (the journal keeps the rest). */
export const LOG_RING_LINES = 2000;

export interface DaemonOptions {
  stateDir: string;
  socketPath: string;
  clock?: Clock;
  logFormat?: 'json' | 'plain';
  /** Where log lines go (default stdout). */
  write?: (line: string) => void;
}

interface RepoStatsCache {
  at: number;
  restorePoints: number;
  storedBytes: number;
  dedupRatio: number;
  compressionRatio: number;
  error?: string;
}

export class Daemon {
  readonly hub = new EventHub();
  readonly locks = new VmLocks();
  readonly startedAt = new Date().toISOString();
  readonly clock: Clock;
  log!: DaemonLog;
  store!: ConfigStore;
  history!: History;
  resources!: Resources;
  workers!: ResourceScheduler;
  sessions!: SessionManager;
  restores!: Restores;
  maintenance!: Maintenance;
  scheduler!: Scheduler;
  mail?: MailQueue;
  dailySummary!: DailySummary;
  api!: ApiServer;
  /** The newest log lines, oldest first (already scrubbed by the log); trimmed in batches. */
  private readonly recentLog: string[] = [];
  private readonly repoStats = new Map<string, RepoStatsCache>();
  /** Start-up cleanup of leftovers on every connection (sessions wait for it). */
  cleanup: Promise<string[]> = Promise.resolve([]);

  /** The appliance's own SSH key (appliance-key.ts). */
  sshKey!: ApplianceSshKeyReply;

  private constructor(readonly opts: DaemonOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(opts);
    await d.init();
    return d;
  }

  private async init(): Promise<void> {
    const o = this.opts;
    const out = o.write ?? ((line: string) => void process.stdout.write(line + '\n'));
    // stdout connected to journald (systemd sets JOURNAL_STREAM): lines carry their priority.
    const journal = o.write === undefined && !!process.env.JOURNAL_STREAM;
    const write = (line: string, level: Level) => {
      this.recentLog.push(line);
      if (this.recentLog.length >= 2 * LOG_RING_LINES) this.recentLog.splice(0, this.recentLog.length - LOG_RING_LINES);
      out(journal ? journalLine(level, line) : line);
    };
    this.log = createLog({format: o.logFormat ?? 'plain', write, secrets: () => this.secrets()});
    this.store = await ConfigStore.open(o.stateDir);
    // The key KVM host connections log in with (made once; its public half is shown in the console).
    this.sshKey = await ensureApplianceKey(o.stateDir);
    this.history = await History.open(o.stateDir, () => this.store.data.settings.historySessions);
    this.resources = new Resources(this.store, this.log);
    this.workers = new ResourceScheduler(this.store.list('workers'));
    this.mail = new MailQueue({spoolDir: join(o.stateDir, 'mail-spool'), settings: () => this.store.data.email, log: (line) => this.log('info', `mail: ${line}`)});
    this.dailySummary = await DailySummary.open(o.stateDir, {mail: this.mail, email: () => this.store.data.email, log: this.log});
    this.maintenance = await Maintenance.open({
      store: this.store,
      resources: this.resources,
      hub: this.hub,
      log: this.log,
      mail: this.mail,
      appVersion: VERSION,
      jobOfSession: (id) => this.history.list().find((s) => s.id === id)?.jobId,
    });
    this.sessions = new SessionManager({
      store: this.store,
      resources: this.resources,
      history: this.history,
      hub: this.hub,
      locks: this.locks,
      workers: this.workers,
      clock: this.clock,
      log: this.log,
      hooks: {
        afterSession: async (record, job) => {
          await this.maintenance.afterSession(record, job);
          this.repoStats.delete(job.repository);
        },
        needsFull: (vmId) => this.maintenance.needsFull(vmId),
        vmHealed: (vmId) => this.maintenance.healed(vmId),
      },
    });
    this.restores = new Restores({store: this.store, resources: this.resources, history: this.history, hub: this.hub, locks: this.locks, log: this.log});
    this.scheduler = new Scheduler(this.clock, () => this.scheduledEntries(), this.log);
    this.store.onChange((data) => {
      this.workers.setWorkers(data.workers);
      this.scheduler.refresh();
    });
    this.log('info', `vmbackupd ${VERSION} starting`, {stateDir: o.stateDir, socket: o.socketPath, pid: process.pid});
    const closed = await closeInterruptedSessions({history: this.history, log: this.log});
    if (closed.length) this.log('warn', `Reconciliation closed ${closed.length} interrupted session(s)`);
    // Their reports go out like any other session's (the mail queue is durable; it sends once started).
    for (const id of closed) {
      const s = await this.history.get(id);
      if (s) await this.maintenance.reportInterrupted(s).catch((err: unknown) => this.log('warn', `The report of interrupted session ${id} was not queued: ${err instanceof Error ? err.message : String(err)}`));
    }
    this.api = new ApiServer(this);
    await this.api.listen(o.socketPath);
    this.cleanup = cleanupConnections({store: this.store, resources: this.resources, log: this.log});
    this.sessions.holdUntil(this.cleanup);
    this.scheduler.refresh();
    if (this.store.data.email) void this.mail.start().catch(() => {});
    this.log('info', `Listening on ${o.socketPath}`);
  }

  private scheduledEntries(): ScheduledEntry[] {
    const out: ScheduledEntry[] = [];
    for (const j of this.store.list('jobs')) {
      if (!j.enabled || j.schedule.kind === 'none') continue;
      out.push({
        key: `job:${j.id}`,
        schedule: j.schedule,
        run: () => {
          if (this.sessions.runningForJob(j.id)) {
            this.log('warn', `Job ${j.name} is still running at its scheduled time; this run is skipped.`);
            return;
          }
          this.sessions.start(j.id, 'schedule');
        },
      });
    }
    const [h, m] = this.store.data.settings.gcAt.split(':');
    for (const r of this.store.list('repositories')) {
      out.push({key: `gc:${r.id}`, schedule: {kind: 'cron', expression: `${Number(m)} ${Number(h)} * * *`}, run: () => this.maintenance.gc(r.id)});
      if (r.healthCheck.kind !== 'none') out.push({key: `verify:${r.id}`, schedule: r.healthCheck, run: async () => void (await this.maintenance.healthCheck(r.id))});
    }
    const summary = this.dailySummary.settings;
    if (summary.enabled) out.push({key: 'daily-summary', schedule: {kind: 'cron', expression: dailyCron(summary.time)}, run: async () => void (await this.sendDailySummary())});
    return out;
  }

  private secrets(): string[] {
    if (!this.store) return [];
    const out = this.store.list('connections').flatMap((c) => secretValues('connections', c));
    out.push(...secretValues('email', this.store.data.email));
    return out;
  }

  // ---- configuration objects -----------------------------------------------------------------

  list(c: Collection): unknown[] {
    return this.store.list(c).map((o) => this.present(c, o));
  }

  getOne(c: Collection, id: string): unknown {
    return this.present(c, this.store.get(c, id));
  }

  private present(c: Collection, o: CollectionTypes[Collection]): unknown {
    const shown = redact(c, o) as Record<string, unknown>;
    if (c === 'jobs') {
      const job = o as CollectionTypes['jobs'];
      const last = this.history.list().filter((s) => s.jobId === job.id).at(-1);
      shown.info = {
        scheduleText: describeSchedule(job.schedule),
        nextRuns: job.enabled ? nextRuns(job.schedule, new Date(this.clock.now()), 3).map((d) => d.toISOString()) : [],
        running: this.sessions.runningForJob(job.id)?.id,
        lastSession: last ? {id: last.id, state: last.state, startedAt: last.startedAt, endedAt: last.endedAt} : undefined,
      };
    }
    return shown;
  }

  async create(c: Collection, input: unknown): Promise<unknown> {
    if (c === 'repositories') {
      // Validate first, so a bad path never creates a directory; then make the repository.
      const withId = input !== null && typeof input === 'object' && !('id' in input) ? {...input, id: 'x'} : input;
      const cfg = parseConfig(repositorySchema, withId, 'repositories');
      if (this.store.list('repositories').some((r) => r.path === cfg.path)) {
        return this.store.create(c, input); // the store names the duplicate path
      }
      await Resources.openOrCreate(cfg);
    }
    const created = await this.store.create(c, input);
    if (c === 'connections') await this.resources.writeKnownHosts(created as CollectionTypes['connections']);
    this.hub.emit({type: 'config', collection: c});
    return this.present(c, created);
  }

  async update(c: Collection, id: string, input: unknown): Promise<unknown> {
    if (c === 'repositories') {
      const cfg = parseConfig(repositorySchema, input !== null && typeof input === 'object' ? {...input, id} : input, 'repositories');
      if (cfg.path !== this.store.get('repositories', id).path) await Resources.openOrCreate(cfg);
    }
    const updated = await this.store.update(c, id, input);
    if (c === 'connections') await this.resources.writeKnownHosts(updated as CollectionTypes['connections']);
    this.hub.emit({type: 'config', collection: c});
    return this.present(c, updated);
  }

  async remove(c: Collection, id: string): Promise<void> {
    if (c === 'jobs' && this.sessions.runningForJob(id)) {
      throw new UserError('The job is running.', {hint: 'Stop it first (vmbackup job stop), then remove it.', exitCode: ExitCode.locked});
    }
    await this.store.remove(c, id);
    this.hub.emit({type: 'config', collection: c});
  }

  /** Console users with their roles: root and the installer's console account (admins), then those recorded. */
  users(): {name: string; role: string; builtin?: boolean; sshKey?: string}[] {
    return [
      {name: 'root', role: 'admin', builtin: true},
      {name: 'console', role: 'admin', builtin: true},
      ...this.store.data.users.map((u) => ({...u})),
    ];
  }

  email(): unknown {
    return this.store.data.email ? redact('email', this.store.data.email) : null;
  }

  async setEmail(input: unknown): Promise<unknown> {
    const saved = await this.store.setEmail(input);
    if (saved) void this.mail?.start().catch(() => {});
    return saved ? redact('email', saved) : null;
  }

  /**
   * Tries a connection: reachable, authenticated, and how many VMs its inventory lists. Errors
   * come back as data (with the UserError's message and hint), since "it failed" is the answer.
   */
  async testConnection(input: unknown, id?: string): Promise<unknown> {
    let cfg: CollectionTypes['connections'];
    if (id) cfg = this.store.get('connections', id);
    else {
      const stored = input !== null && typeof input === 'object' && 'id' in input ? this.store.list('connections').find((c) => c.id === (input as {id: unknown}).id) : undefined;
      const merged = keepSecrets('connections', input !== null && typeof input === 'object' && !('id' in input) ? {...input, id: 'test'} : input, stored);
      cfg = parseConfig(connectionSchema, merged, 'connections');
      await this.resources.writeKnownHosts(cfg);
    }
    const platform = id ? this.resources.platform(id) : this.resources.build(cfg);
    try {
      const vms = id ? (await this.resources.inventory(id, true)).vms : await platform.inventory();
      return {ok: true, reachable: true, authenticated: true, vms: vms.length};
    } catch (err) {
      const code = isUserError(err) ? err.exitCode : ExitCode.internal;
      return {
        ok: false,
        reachable: code !== ExitCode.unreachable && code !== ExitCode.untrusted,
        authenticated: code === ExitCode.unreachable || code === ExitCode.untrusted || code === ExitCode.authFailed ? false : undefined,
        error: {message: message(err), hint: isUserError(err) ? err.hint : undefined, exitCode: code},
      };
    } finally {
      if (!id) await platform.close().catch(() => {});
    }
  }

  /** Tries a repository: it opens, its directory takes a write, and how much room is left. */
  async testRepository(id: string): Promise<unknown> {
    const cfg = this.store.get('repositories', id);
    try {
      const repo = await this.resources.repository(id);
      const probe = join(cfg.path, `.vmbackup-write-test-${process.pid}`);
      await writeFile(probe, 'ok', {mode: 0o600});
      await rm(probe, {force: true});
      const fs = await statfs(cfg.path);
      return {ok: true, writable: true, restorePoints: (await repo.listRestorePoints()).length, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize};
    } catch (err) {
      const e = explainIoError(err, cfg.path, 'testing the repository');
      return {ok: false, error: {message: message(e), hint: isUserError(e) ? e.hint : undefined, exitCode: isUserError(e) ? e.exitCode : ExitCode.internal}};
    }
  }

  /**
   * Sends a test message now. The body may hold email settings to try before saving them (secrets
   * kept from the saved ones), and/or `to` (an address or a list) to send to instead of the
   * global recipients; without settings the saved ones are used. Success is {ok: true, accepted};
   * a failure is data ({ok: false, message, error}), since "it failed, because…" is the answer
   * the administrator waits for.
   */
  async testEmail(input: unknown): Promise<TestEmailReply> {
    if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
      throw new UserError('The body must be a JSON object: {"to": "name@example.com"} and/or email settings.', {exitCode: ExitCode.invalidInput});
    }
    const {to: rawTo, ...rest} = (input ?? {}) as Record<string, unknown>;
    const to = rawTo === undefined ? undefined : parseRecipients(rawTo);
    const settings = Object.keys(rest).length === 0 ? this.store.data.email : parseConfig(emailSettingsSchema, keepSecrets('email', rest, this.store.data.email), 'email');
    if (!settings) throw new UserError('Email is not set up.', {hint: 'Save the email settings first (PUT /email), then test them.', exitCode: ExitCode.invalidInput});
    try {
      const r = await sendTestMessage(settings, {to, hostname: hostname(), appVersion: VERSION});
      return {ok: true, accepted: r.accepted};
    } catch (err) {
      const error = {message: message(err), hint: isUserError(err) ? err.hint : undefined, exitCode: isUserError(err) ? err.exitCode : ExitCode.internal};
      return {ok: false, message: error.message, error};
    }
  }

  /** The newest `lines` log lines, oldest first, with today's secrets scrubbed again. */
  logs(lines: number): {lines: string[]} {
    const n = Math.min(Math.max(1, Math.floor(lines)), LOG_RING_LINES);
    // A line logged before a secret was saved was not scrubbed for it when written.
    const secrets = this.secrets().filter((x) => x.length >= 3);
    return {lines: this.recentLog.slice(-n).map((l) => secrets.reduce((acc, x) => acc.split(x).join('••••'), l))};
  }

  // ---- appliance settings and the daily summary ------------------------------------------------

  settings(): Record<string, unknown> {
    return {...this.store.data.settings, dailySummary: this.dailySummary.settings};
  }

  /**
   * A partial change of the appliance settings; `dailySummary` (partial too) is kept in its own
   * file. Both parts are validated before either is saved, so a bad field changes nothing.
   */
  async setSettings(input: unknown): Promise<Record<string, unknown>> {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw new ConfigError([{field: 'settings', message: 'must be an object of the settings to change'}]);
    }
    const {dailySummary, ...rest} = input as Record<string, unknown>;
    const summary = dailySummary === undefined ? undefined : parseDailySummaryChange(dailySummary, this.dailySummary.settings);
    parseConfig(settingsSchema, {...this.store.data.settings, ...rest}, 'settings');
    if (Object.keys(rest).length) await this.store.setSettings(rest);
    if (summary) {
      await this.dailySummary.save(summary);
      this.scheduler.refresh();
    }
    return this.settings();
  }

  /** Queues the daily summary now (the scheduler calls this at the set time; so can the API). */
  async sendDailySummary(): Promise<{queued: boolean; id?: string; to: string[]; reason?: string}> {
    const repositories = [];
    // A repository whose disk cannot be read shows 0 of 0 bytes, which the summary marks low.
    for (const r of this.store.list('repositories')) repositories.push({name: r.name, freeBytes: 0, totalBytes: 0, ...(await diskSpace(r.path))});
    const running = this.sessions.list().map(({log: _log, ...rest}) => rest);
    const input = summaryInput({
      jobs: this.store.list('jobs'),
      sessions: [...this.history.list(), ...running],
      nextRun: (id) => this.scheduler.nextRun(`job:${id}`),
      repositories,
      hostname: hostname(),
      now: new Date(this.clock.now()),
    });
    return this.dailySummary.send(input);
  }

  // ---- sessions and status -------------------------------------------------------------------

  sessionList(job: string | undefined, limit: number): Omit<SessionRecord, 'log'>[] {
    const running = new Map(this.sessions.list().map(({log: _log, ...rest}) => [rest.id, rest]));
    return this.history
      .list()
      .map((s) => running.get(s.id) ?? s)
      .filter((s) => !job || s.jobId === job)
      .slice(-limit)
      .reverse();
  }

  async status(): Promise<unknown> {
    const repositories = [];
    for (const r of this.store.list('repositories')) {
      const space = await diskSpace(r.path);
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
        needsFullVms: Object.keys(this.maintenance.fullMarks()).length,
        lastHealthCheck: this.maintenance.lastHealthCheck(r.id),
      });
    }
    const stateSpace = await diskSpace(this.opts.stateDir);
    return {
      daemon: {
        version: VERSION, pid: process.pid, startedAt: this.startedAt, stateDir: this.opts.stateDir, socket: this.opts.socketPath, rssBytes: process.memoryUsage.rss(),
        stateFreeBytes: stateSpace?.freeBytes, stateTotalBytes: stateSpace?.totalBytes,
      },
      sessions: this.sessions.list().map(({log: _log, ...rest}) => rest),
      workers: this.workers.status(),
      waitingForWorkers: this.workers.waiting,
      repositories,
      mail: this.mail?.status(),
    };
  }

  /**
   * Repository statistics read every chunk's size, too slow for a status request: they are
   * computed in the background and served from this cache (refreshed after sessions, at most
   * once a minute otherwise).
   */
  private cachedStats(id: string): RepoStatsCache | undefined {
    const c = this.repoStats.get(id);
    if (!c || this.clock.now() - c.at > 60_000) {
      if (!c || c.at >= 0) {
        const marker: RepoStatsCache = c ? {...c, at: -1} : {at: -1, restorePoints: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1};
        this.repoStats.set(id, marker);
        void this.resources
          .repository(id)
          .then((repo) => repo.stats())
          .then(
            (s) => this.repoStats.set(id, {at: this.clock.now(), restorePoints: s.restorePoints, storedBytes: s.storedBytes, dedupRatio: s.dedupRatio, compressionRatio: s.compressionRatio}),
            (err: unknown) => this.repoStats.set(id, {at: this.clock.now(), restorePoints: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, error: message(err)}),
          )
          // Tell clients the figures are in, so a dashboard that asked too early shows them.
          .then(() => this.hub.emit({type: 'maintenance', repository: id, action: 'stats', state: 'finished'}));
      }
    }
    return c && c.at >= 0 ? c : undefined;
  }

  /** SIGTERM: stop accepting, stop sessions cleanly (restore points and platform jobs aborted), close. */
  async stop(reason = 'The daemon is stopping (SIGTERM).'): Promise<void> {
    this.log('info', 'Stopping: no new requests; stopping running sessions');
    this.scheduler.stop();
    const closing = this.api.close();
    await this.sessions.shutdown(reason);
    await closing;
    await this.mail?.stop().catch(() => {});
    await this.resources.close();
    this.log('info', 'Stopped');
  }
}

export {APPLIANCE_WORKER};

/** Free and total bytes of the file system holding `path`; undefined when it cannot be read. */
async function diskSpace(path: string): Promise<{freeBytes: number; totalBytes: number} | undefined> {
  const fs = await statfs(path).catch(() => undefined);
  return fs ? {freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize} : undefined;
}

/** `to` of a test message: one address or a list, checked like the global recipients. */
function parseRecipients(raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((a) => a.trim()).filter(Boolean) : raw;
  const r = smtpSettingsSchema.shape.recipients.safeParse(list);
  if (r.success && r.data.length > 0) return r.data;
  const issue = r.success ? undefined : r.error.issues[0];
  const at = issue?.path.find((p) => typeof p === 'number');
  throw new ConfigError([
    {field: at === undefined || typeof raw === 'string' ? 'to' : `to[${at}]`, message: issue ? issue.message.replace(/^[a-z][a-zA-Z ]*: /, '') : 'give at least one email address'},
  ]);
}
