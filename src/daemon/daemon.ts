/**
 * vmbackupd's composition root, and nothing else: it opens the state (configuration, session
 * history, needs-full marks), builds the parts — resources, sessions, restores, maintenance, the
 * scheduler, the configuration and status services — wires them together, runs start-up
 * reconciliation, and serves the control API, which sees only the narrow ApiServices interface
 * (services.ts), never this class.
 */
import {join} from 'node:path';
import type {ApplianceSshKeyReply} from '../api/contract.js';
import {secretValues} from '../config/secrets.js';
import {APPLIANCE_WORKER, ConfigStore} from '../config/store.js';
import {systemClock, type Clock} from '../notify/clock.js';
import {MailQueue} from '../notify/mail-queue.js';
import {WebhookQueue} from '../notify/webhooks.js';
import {renderMetrics} from '../api/metrics.js';
import {ApiServer} from './api.js';
import {ensureApplianceKey} from './appliance-key.js';
import {ConfigurationService} from './configuration.js';
import {DailySummary, dailyCron} from './daily-summary.js';
import {createDemoLab} from './demo-lab.js';
import {EventHub} from './event-hub.js';
import {History} from './history.js';
import {createLog, journalLine, type DaemonLog, type Level} from './log.js';
import {Maintenance} from './maintenance.js';
import {MetricsEndpoint} from './metrics.js';
import {cleanupConnections, closeInterruptedSessions} from './reconcile.js';
import {Resources} from './resources.js';
import {Restores} from './restores.js';
import {InstantRecoveries} from './instant.js';
import {FileBrowsers} from './file-browser.js';
import {Scheduler, type ScheduledEntry} from './scheduler.js';
import type {ApiServices} from './services.js';
import {SessionManager} from './sessions.js';
import {LOG_RING_LINES, StatusService} from './status.js';
import {VERSION} from './version.js';
import {VmLocks} from './vm-locks.js';
import {ResourceScheduler} from './workers.js';

export {VERSION};

export interface DaemonOptions {
  stateDir: string;
  socketPath: string;
  clock?: Clock;
  logFormat?: 'json' | 'plain';
  /** Where log lines go (default stdout). */
  write?: (line: string) => void;
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
  instant!: InstantRecoveries;
  files!: FileBrowsers;
  maintenance!: Maintenance;
  scheduler!: Scheduler;
  mail?: MailQueue;
  webhooks?: WebhookQueue;
  dailySummary!: DailySummary;
  configuration!: ConfigurationService;
  status!: StatusService;
  api!: ApiServer;
  metrics!: MetricsEndpoint;
  /** The newest log lines, oldest first (already scrubbed by the log); trimmed in batches. */
  private readonly recentLog: string[] = [];
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
    // Plain lines carry their time where nothing else adds one: in the fallback log file
    // (/var/log/vmbackupd.log without systemd) and in the console's log view; journald stamps its own.
    const plain = (o.logFormat ?? 'plain') === 'plain';
    const write = (line: string, level: Level) => {
      const stamped = plain ? `${new Date().toISOString()} ${line}` : line;
      this.recentLog.push(stamped);
      if (this.recentLog.length >= 2 * LOG_RING_LINES) this.recentLog.splice(0, this.recentLog.length - LOG_RING_LINES);
      out(journal ? journalLine(level, line) : stamped);
    };
    this.log = createLog({format: o.logFormat ?? 'plain', write, secrets: () => this.secrets()});
    this.store = await ConfigStore.open(o.stateDir);
    // The key KVM host connections log in with (made once; its public half is shown in the console).
    this.sshKey = await ensureApplianceKey(o.stateDir);
    this.history = await History.open(o.stateDir, () => this.store.data.settings.historySessions);
    this.resources = new Resources(this.store, this.log);
    this.workers = new ResourceScheduler(this.store.list('workers'));
    this.mail = new MailQueue({spoolDir: join(o.stateDir, 'mail-spool'), settings: () => this.store.data.email, log: (line) => this.log('info', `mail: ${line}`)});
    this.webhooks = new WebhookQueue({
      spoolDir: join(o.stateDir, 'webhook-spool'),
      webhook: (id) => this.store.data.webhooks.find((w) => w.id === id),
      appVersion: VERSION,
      log: (line) => this.log('info', line),
    });
    this.dailySummary = await DailySummary.open(o.stateDir, {mail: this.mail, email: () => this.store.data.email, log: this.log});
    this.maintenance = await Maintenance.open({
      store: this.store,
      resources: this.resources,
      hub: this.hub,
      log: this.log,
      mail: this.mail,
      webhooks: this.webhooks,
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
          this.status.forget(job.repository);
        },
        needsFull: (vmId) => this.maintenance.needsFull(vmId),
        vmHealed: (vmId) => this.maintenance.healed(vmId),
      },
      // instant is made below; a session verifies only after its backups, long after start-up.
      verify: (o) => this.instant.verify(o),
    });
    this.restores = new Restores({store: this.store, resources: this.resources, history: this.history, hub: this.hub, locks: this.locks, log: this.log});
    // VMBACKUP_FILE_BROWSER_IDLE_SECONDS: how long an unused file browser stays open (default 10 min).
    const idle = Number(process.env.VMBACKUP_FILE_BROWSER_IDLE_SECONDS);
    this.files = new FileBrowsers({resources: this.resources, log: this.log, ...(idle > 0 ? {idleMs: idle * 1000} : {})});
    this.instant = new InstantRecoveries({stateDir: o.stateDir, resources: this.resources, restores: this.restores, history: this.history, hub: this.hub, log: this.log});
    this.scheduler = new Scheduler(this.clock, () => this.scheduledEntries(), this.log);
    this.configuration = new ConfigurationService({
      store: this.store, resources: this.resources, hub: this.hub, history: this.history, sessions: this.sessions,
      clock: this.clock, mail: this.mail, webhooks: this.webhooks, dailySummary: this.dailySummary, scheduler: this.scheduler,
    });
    this.status = new StatusService({
      store: this.store, resources: this.resources, hub: this.hub, history: this.history, sessions: this.sessions,
      maintenance: this.maintenance, workers: this.workers, clock: this.clock, mail: this.mail, webhooks: this.webhooks,
      stateDir: o.stateDir, socketPath: o.socketPath, startedAt: this.startedAt,
      recentLog: this.recentLog, secrets: () => this.secrets(),
    });
    this.store.onChange((data) => {
      this.workers.setWorkers(data.workers);
      this.scheduler.refresh();
      void this.metrics?.apply();
    });
    this.log('info', `vmbackupd ${VERSION} starting`, {stateDir: o.stateDir, socket: o.socketPath, pid: process.pid});
    // Instant VMs keep running across a restart: their sessions stay open (resumeAll serves them again).
    const closed = await closeInterruptedSessions({history: this.history, log: this.log, keep: new Set(await this.instant.recordedSessions())});
    if (closed.length) this.log('warn', `Reconciliation closed ${closed.length} interrupted session(s)`);
    // Their reports go out like any other session's (the mail queue is durable; it sends once started).
    for (const id of closed) {
      const s = await this.history.get(id);
      if (s) await this.maintenance.reportInterrupted(s).catch((err: unknown) => this.log('warn', `The report of interrupted session ${id} was not queued: ${err instanceof Error ? err.message : String(err)}`));
    }
    this.metrics = new MetricsEndpoint({
      stateDir: o.stateDir,
      settings: () => this.store.data.settings.metrics,
      log: this.log,
      render: async () => {
        const status = await this.status.status();
        const sessions = this.status.sessionList(undefined, 500);
        return renderMetrics(this.store.list('jobs'), sessions, status.repositories, status.sessions.filter((x) => x.state === 'running').length);
      },
    });
    await this.metrics.apply();
    this.api = new ApiServer(this.services());
    await this.api.listen(o.socketPath);
    this.cleanup = cleanupConnections({store: this.store, resources: this.resources, log: this.log});
    this.sessions.holdUntil(this.cleanup);
    void this.instant.resumeAll().catch((err: unknown) => this.log('warn', `Instant recoveries were not resumed: ${err instanceof Error ? err.message : String(err)}`));
    this.scheduler.refresh();
    if (this.store.data.email) void this.mail.start().catch(() => {});
    // What an earlier run left in the webhook spool goes out now.
    void this.webhooks.start().catch(() => {});
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
    if (summary.enabled) out.push({key: 'daily-summary', schedule: {kind: 'cron', expression: dailyCron(summary.time)}, run: async () => void (await this.configuration.sendDailySummary())});
    return out;
  }

  /** What the control API may reach: the services, not the wiring. */
  private services(): ApiServices {
    return {
      stateDir: this.opts.stateDir,
      log: this.log,
      events: this.hub,
      configuration: this.configuration,
      users: this.store,
      status: this.status,
      sessions: this.sessions,
      restores: this.restores,
      instant: this.instant,
      files: this.files,
      maintenance: this.maintenance,
      resources: this.resources,
      sshKey: this.sshKey,
      demoLab: (input) => createDemoLab({store: this.store, configuration: this.configuration, resources: this.resources, log: this.log}, input),
    };
  }

  private secrets(): string[] {
    if (!this.store) return [];
    const out = this.store.list('connections').flatMap((c) => secretValues('connections', c));
    out.push(...secretValues('email', this.store.data.email));
    out.push(...this.store.list('webhooks').flatMap((w) => secretValues('webhooks', w)));
    out.push(...this.store.list('repositories').flatMap((r) => secretValues('repositories', r)));
    return out;
  }

  /** SIGTERM: stop accepting, stop sessions cleanly (restore points and platform jobs aborted), close. */
  async stop(reason = 'The daemon is stopping (SIGTERM).'): Promise<void> {
    this.log('info', 'Stopping: no new requests; stopping running sessions');
    this.scheduler.stop();
    const closing = this.api.close();
    await this.sessions.shutdown(reason);
    await this.instant.shutdown();
    await this.files.shutdown();
    await closing;
    await this.mail?.stop().catch(() => {});
    await this.webhooks?.stop().catch(() => {});
    await this.metrics.close();
    await this.resources.close();
    this.history.close();
    this.log('info', 'Stopped');
  }
}

export {APPLIANCE_WORKER};
