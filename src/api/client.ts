/**
 * The typed client of the control API, for the CLI and the console: HTTP over the daemon's
 * unix socket (undici Agent with socketPath). API errors come back as UserErrors with the
 * daemon's message, hint and exit code; a daemon that is not running, or a socket the user may
 * not open, becomes a UserError that says so and what to do.
 */
import {Agent, request} from 'undici';
import type {SettingsConfig} from '../config/schema.js';
import type {Collection} from '../config/store.js';
import type {InventoryVm} from '../platforms/types.js';
import {errnoCode, ExitCode, UserError, type ExitCodeValue} from '../util/errors.js';
import {DEFAULT_SOCKET} from './contract.js';
import {ROUTES, routePath, type RouteName} from './routes.js';
import type {DailySummarySettings} from '../notify/settings.js';
import type {SessionRecord} from './session-model.js';
import type {ApplianceSshKeyReply, AuditEntry, FileSessionInfo, GuestEntry, InstantRecoveryInfo, DaemonEvent, DemoLabResult, HostKeyScanReply, PruneReply, RestorePlanReply, RestorePointInfo, RetentionLockReply, TestEmailReply, TestWebhookReply} from './contract.js';

export type SessionSummary = Omit<SessionRecord, 'log'>;

export interface ConnectionTestResult {
  ok: boolean;
  reachable: boolean;
  authenticated?: boolean;
  vms?: number;
  error?: {message: string; hint?: string; exitCode: number};
}

export class DaemonClient {
  readonly socketPath: string;
  private readonly agent: Agent;

  constructor(opts: {socketPath?: string} = {}) {
    this.socketPath = opts.socketPath ?? process.env.VMBACKUP_SOCKET ?? DEFAULT_SOCKET;
    this.agent = new Agent({connect: {socketPath: this.socketPath}});
  }

  /**
   * Calls the route `name` of the route table (routes.ts) with its path parameters, query and
   * body: the one way requests are built, so no client writes a path of its own.
   */
  call<T>(name: RouteName, opts: {params?: Record<string, string>; query?: Record<string, string | number | boolean | undefined>; body?: unknown} = {}): Promise<T> {
    return this.request<T>(ROUTES[name].method, routePath(name, opts.params, opts.query), opts.body);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(`http://vmbackupd${path}`, {
        method: method as 'GET',
        dispatcher: this.agent,
        headers: body === undefined ? {} : {'content-type': 'application/json'},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw this.connectError(err);
    }
    const text = await res.body.text();
    const data: unknown = text ? JSON.parse(text) : undefined;
    if (res.statusCode >= 400) {
      const e = (data as {error?: {message: string; hint?: string; exitCode: number; field?: string}} | undefined)?.error;
      const err = new UserError(e?.message ?? `vmbackupd answered ${res.statusCode}.`, {hint: e?.hint, exitCode: (e?.exitCode ?? ExitCode.internal) as ExitCodeValue});
      if (e?.field) (err as UserError & {field?: string}).field = e.field;
      throw err;
    }
    return data as T;
  }

  private connectError(err: unknown): unknown {
    const code = errnoCode(err) ?? errnoCode((err as {cause?: unknown}).cause);
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      return new UserError(`vmbackupd is not running (nothing listens on ${this.socketPath}).`, {
        hint: 'Start it with systemctl start vmbackupd (or appliance/install-daemon.sh), or set VMBACKUP_SOCKET to its socket.',
        exitCode: ExitCode.unreachable,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new UserError(`You may not open the control socket ${this.socketPath}.`, {
        hint: 'Run as root or as a member of the vmbackup group (usermod -aG vmbackup USER, then log in again).',
        exitCode: ExitCode.authFailed,
      });
    }
    return err;
  }

  status(): Promise<StatusReply> {
    return this.call('status');
  }
  list<T = Record<string, unknown>>(c: Collection): Promise<T[]> {
    return this.call('list', {params: {collection: c}});
  }
  get<T = Record<string, unknown>>(c: Collection, id: string): Promise<T> {
    return this.call('get', {params: {collection: c, id}});
  }
  create<T = Record<string, unknown>>(c: Collection, body: unknown): Promise<T> {
    return this.call('create', {params: {collection: c}, body});
  }
  update<T = Record<string, unknown>>(c: Collection, id: string, body: unknown): Promise<T> {
    return this.call('update', {params: {collection: c, id}, body});
  }
  remove(c: Collection, id: string): Promise<void> {
    return this.call('remove', {params: {collection: c, id}});
  }
  testConnection(idOrConfig: string | Record<string, unknown>): Promise<ConnectionTestResult> {
    return typeof idOrConfig === 'string' ? this.call('testConnection', {params: {id: idOrConfig}}) : this.call('testNewConnection', {body: idOrConfig});
  }
  inventory(connection: string, refresh = false): Promise<{at: string; vms: InventoryVm[]}> {
    return this.call('inventory', {query: {connection, refresh}});
  }
  startJob(id: string): Promise<SessionSummary> {
    return this.call('startJob', {params: {id}});
  }
  stopJob(id: string): Promise<SessionSummary> {
    return this.call('stopJob', {params: {id}});
  }
  retryFailed(id: string): Promise<SessionSummary> {
    return this.call('retryFailed', {params: {id}});
  }
  sessions(opts: {job?: string; limit?: number} = {}): Promise<SessionSummary[]> {
    return this.call('sessions', {query: {job: opts.job || undefined, limit: opts.limit || undefined}});
  }
  session(id: string): Promise<SessionRecord> {
    return this.call('session', {params: {id}});
  }
  testRepository(id: string): Promise<{ok: boolean; writable?: boolean; restorePoints?: number; freeBytes?: number; totalBytes?: number; error?: {message: string; hint?: string; exitCode: number}}> {
    return this.call('testRepository', {params: {id}});
  }
  /**
   * Sends a test message: with the saved settings, or `settings` (tried before saving); to the
   * global recipients, or to `to`. Failures come back as data ({ok: false, message, error}).
   */
  /** Posts a test report to a saved webhook now → the receiver's answer, or why not. */
  testWebhook(id: string): Promise<TestWebhookReply> {
    return this.call('testWebhook', {params: {id}});
  }
  testEmail(settings?: Record<string, unknown>, to?: string | string[]): Promise<TestEmailReply> {
    return this.call('testEmail', {body: {...settings, ...(to === undefined ? {} : {to})}});
  }
  /** Queues the daily summary now, whatever its schedule. */
  sendDailySummary(): Promise<{queued: boolean; id?: string; to: string[]; reason?: string}> {
    return this.call('sendDailySummary');
  }
  /** Applies each job's retention to its VMs in the repository (space is freed by gc). */
  prune(repository: string): Promise<PruneReply> {
    return this.call('prune', {params: {id: repository}});
  }
  /** The daemon's newest log lines (default 200, at most 2000), secrets replaced by "••••". */
  logs(lines?: number): Promise<{lines: string[]}> {
    return this.call('logs', {query: {lines}});
  }
  verify(repository: string): Promise<{ok: boolean; vms: string[]; problems: number}> {
    return this.call('verify', {params: {id: repository}});
  }
  gc(repository: string): Promise<{ok: boolean}> {
    return this.call('gc', {params: {id: repository}});
  }
  settings(): Promise<SettingsReply> {
    return this.call('settings');
  }
  /** A partial change; `dailySummary` may be partial too ({enabled: true} keeps the time). */
  setSettings(body: Record<string, unknown>): Promise<SettingsReply> {
    return this.call('setSettings', {body});
  }
  email(): Promise<Record<string, unknown> | null> {
    return this.call('email');
  }
  setEmail(body: unknown): Promise<Record<string, unknown> | null> {
    return this.call('setEmail', {body});
  }
  restorePoints<T = RestorePointInfo>(repository: string): Promise<T[]> {
    return this.call('restorePoints', {params: {id: repository}});
  }
  /** Forgets one restore point; GC frees its space later. A protected one only with `force`. */
  retentionLock(repository: string): Promise<RetentionLockReply> {
    return this.call('retentionLock', {params: {id: repository}});
  }
  setRetentionLock(repository: string, days: number): Promise<RetentionLockReply> {
    return this.call('setRetentionLock', {params: {id: repository}, body: {days}});
  }
  forgetRestorePoint(repository: string, point: string, force = false): Promise<{id: string; damaged: boolean}> {
    return this.call('forgetRestorePoint', {params: {id: repository, point}, query: {force}});
  }
  protectRestorePoint(repository: string, point: string, value: boolean): Promise<{id: string; protected: boolean}> {
    return this.call('protectRestorePoint', {params: {id: repository, point}, body: {protected: value}});
  }
  planRestore(req: unknown): Promise<RestorePlanReply> {
    return this.call('planRestore', {body: req});
  }
  startRestore(req: unknown): Promise<{id: string; state?: string}> {
    return this.call('startRestore', {body: req});
  }
  stopRestore(id: string): Promise<{stopped: boolean}> {
    return this.call('stopRestore', {params: {id}});
  }
  async instantRecoveries(): Promise<InstantRecoveryInfo[]> {
    return (await this.call<{instant: InstantRecoveryInfo[]}>('instantRecoveries')).instant;
  }
  startInstant(req: unknown): Promise<{id: string; name: string; host: string; startedInMs: number}> {
    return this.call('startInstant', {body: req});
  }
  finishInstant(id: string, body: {storage?: string} = {}): Promise<{id: string; phase: 'migrating'}> {
    return this.call('finishInstant', {params: {id}, body});
  }
  stopInstant(id: string): Promise<{id: string; stopped: true}> {
    return this.call('stopInstant', {params: {id}});
  }
  openFiles(req: {repository: string; restorePointId: string; disks?: string[]; filesystem?: string}): Promise<FileSessionInfo> {
    return this.call('openFiles', {body: req});
  }
  listFiles(id: string, path: string): Promise<{path: string; entries: GuestEntry[]}> {
    return this.call('listFiles', {params: {id}, query: {path}});
  }
  getFiles(id: string, paths: string[], to: string): Promise<{copied: {path: string; to: string; type: string}[]; skipped: string[]}> {
    return this.call('getFiles', {params: {id}, body: {paths, to}});
  }
  closeFiles(id: string): Promise<{closed: boolean}> {
    return this.call('closeFiles', {params: {id}});
  }
  fetchCa(url: string): Promise<{pem: string; fingerprint: string; subject?: string; validTo?: string}> {
    return this.call('fetchCa', {body: {url}});
  }
  scanHostKey(host: string, port?: number): Promise<HostKeyScanReply> {
    return this.call('scanHostKey', {body: {host, port}});
  }
  applianceSshKey(): Promise<ApplianceSshKeyReply> {
    return this.call('applianceSshKey');
  }
  demoLab(body: Record<string, unknown> = {}): Promise<DemoLabResult> {
    return this.call('demoLab', {body});
  }
  whoami(): Promise<{uid: number; user: string; role: string}> {
    return this.call('whoami');
  }
  audit(limit?: number): Promise<{entries: AuditEntry[]}> {
    return this.call('audit', {query: {limit}});
  }
  users<T = {name: string; role: string; builtin?: boolean; sshKey?: string}>(): Promise<T[]> {
    return this.call('users');
  }
  putUser(name: string, body: unknown): Promise<unknown> {
    return this.call('putUser', {params: {name}, body});
  }
  removeUser(name: string): Promise<void> {
    return this.call('removeUser', {params: {name}});
  }

  /** Calls `onEvent` for every server-sent event until `signal` aborts or the daemon closes. */
  async events(onEvent: (e: DaemonEvent) => void, signal?: AbortSignal): Promise<void> {
    let res;
    try {
      res = await request(`http://vmbackupd${routePath('events')}`, {dispatcher: this.agent, signal});
    } catch (err) {
      if (signal?.aborted) return;
      throw this.connectError(err);
    }
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += chunk.toString();
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) onEvent(JSON.parse(data) as DaemonEvent);
        }
      }
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

export interface StatusReply {
  daemon: {version: string; pid: number; startedAt: string; stateDir: string; socket: string; rssBytes: number; stateFreeBytes?: number; stateTotalBytes?: number};
  sessions: SessionSummary[];
  workers: {id: string; name: string; slots: number; used: number}[];
  waitingForWorkers: number;
  repositories: {
    id: string;
    name: string;
    path: string;
    freeBytes?: number;
    totalBytes?: number;
    usedBytes?: number;
    restorePoints?: number;
    dedupRatio?: number;
    compressionRatio?: number;
    error?: string;
    needsFullVms: number;
    /** A passphrase is configured: the repository is encrypted (format 3). */
    encrypted?: boolean;
    /** The last health check (verify) of the repository: when, and whether it found damage. */
    lastHealthCheck?: {at: string; ok: boolean; problems: number};
  }[];
  mail?: unknown;
  /** The webhook queue: pending, failed, last error, and per webhook id (targets). */
  webhooks?: unknown;
}

/** GET /settings: the appliance settings and the daily summary's. */
export type SettingsReply = SettingsConfig & {dailySummary: DailySummarySettings};

export type {PruneReply, TestEmailReply, TestWebhookReply};
