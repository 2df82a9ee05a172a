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
import type {DailySummarySettings} from '../notify/settings.js';
import type {SessionRecord} from './session-model.js';
import type {TestEmailReply, DaemonEvent, PruneReply} from './contract.js';

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
    return this.request('GET', '/status');
  }
  list<T = Record<string, unknown>>(c: Collection): Promise<T[]> {
    return this.request('GET', `/${c}`);
  }
  get<T = Record<string, unknown>>(c: Collection, id: string): Promise<T> {
    return this.request('GET', `/${c}/${encodeURIComponent(id)}`);
  }
  create<T = Record<string, unknown>>(c: Collection, body: unknown): Promise<T> {
    return this.request('POST', `/${c}`, body);
  }
  update<T = Record<string, unknown>>(c: Collection, id: string, body: unknown): Promise<T> {
    return this.request('PUT', `/${c}/${encodeURIComponent(id)}`, body);
  }
  remove(c: Collection, id: string): Promise<void> {
    return this.request('DELETE', `/${c}/${encodeURIComponent(id)}`);
  }
  testConnection(idOrConfig: string | Record<string, unknown>): Promise<ConnectionTestResult> {
    return typeof idOrConfig === 'string'
      ? this.request('POST', `/connections/${encodeURIComponent(idOrConfig)}/test`)
      : this.request('POST', '/connections/test', idOrConfig);
  }
  inventory(connection: string, refresh = false): Promise<{at: string; vms: InventoryVm[]}> {
    return this.request('GET', `/inventory?connection=${encodeURIComponent(connection)}${refresh ? '&refresh=1' : ''}`);
  }
  startJob(id: string): Promise<SessionSummary> {
    return this.request('POST', `/jobs/${encodeURIComponent(id)}/start`);
  }
  stopJob(id: string): Promise<SessionSummary> {
    return this.request('POST', `/jobs/${encodeURIComponent(id)}/stop`);
  }
  retryFailed(id: string): Promise<SessionSummary> {
    return this.request('POST', `/jobs/${encodeURIComponent(id)}/retry-failed`);
  }
  sessions(opts: {job?: string; limit?: number} = {}): Promise<SessionSummary[]> {
    const q = new URLSearchParams();
    if (opts.job) q.set('job', opts.job);
    if (opts.limit) q.set('limit', String(opts.limit));
    return this.request('GET', `/sessions${q.size ? `?${q}` : ''}`);
  }
  session(id: string): Promise<SessionRecord> {
    return this.request('GET', `/sessions/${encodeURIComponent(id)}`);
  }
  testRepository(id: string): Promise<{ok: boolean; writable?: boolean; restorePoints?: number; freeBytes?: number; totalBytes?: number; error?: {message: string; hint?: string; exitCode: number}}> {
    return this.request('POST', `/repositories/${encodeURIComponent(id)}/test`);
  }
  /**
   * Sends a test message: with the saved settings, or `settings` (tried before saving); to the
   * global recipients, or to `to`. Failures come back as data ({ok: false, message, error}).
   */
  testEmail(settings?: Record<string, unknown>, to?: string | string[]): Promise<TestEmailReply> {
    return this.request('POST', '/email/test', {...settings, ...(to === undefined ? {} : {to})});
  }
  /** Queues the daily summary now, whatever its schedule. */
  sendDailySummary(): Promise<{queued: boolean; id?: string; to: string[]; reason?: string}> {
    return this.request('POST', '/email/daily-summary');
  }
  /** Applies each job's retention to its VMs in the repository (space is freed by gc). */
  prune(repository: string): Promise<PruneReply> {
    return this.request('POST', `/repositories/${encodeURIComponent(repository)}/prune`);
  }
  /** The daemon's newest log lines (default 200, at most 2000), secrets replaced by "••••". */
  logs(lines?: number): Promise<{lines: string[]}> {
    return this.request('GET', `/logs${lines === undefined ? '' : `?lines=${lines}`}`);
  }
  verify(repository: string): Promise<{ok: boolean; vms: string[]; problems: number}> {
    return this.request('POST', `/repositories/${encodeURIComponent(repository)}/verify`);
  }
  gc(repository: string): Promise<{ok: boolean}> {
    return this.request('POST', `/repositories/${encodeURIComponent(repository)}/gc`);
  }
  settings(): Promise<SettingsReply> {
    return this.request('GET', '/settings');
  }
  /** A partial change; `dailySummary` may be partial too ({enabled: true} keeps the time). */
  setSettings(body: Record<string, unknown>): Promise<SettingsReply> {
    return this.request('PUT', '/settings', body);
  }
  email(): Promise<Record<string, unknown> | null> {
    return this.request('GET', '/email');
  }
  setEmail(body: unknown): Promise<Record<string, unknown> | null> {
    return this.request('PUT', '/email', body);
  }

  /** Calls `onEvent` for every server-sent event until `signal` aborts or the daemon closes. */
  async events(onEvent: (e: DaemonEvent) => void, signal?: AbortSignal): Promise<void> {
    let res;
    try {
      res = await request('http://vmbackupd/events', {dispatcher: this.agent, signal});
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
    /** The last health check (verify) of the repository: when, and whether it found damage. */
    lastHealthCheck?: {at: string; ok: boolean; problems: number};
  }[];
  mail?: unknown;
}

/** GET /settings: the appliance settings and the daily summary's. */
export type SettingsReply = SettingsConfig & {dailySummary: DailySummarySettings};

export type {PruneReply, TestEmailReply};
