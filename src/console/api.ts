/**
 * What the console needs from the daemon: the control API, as an interface. The app gets the
 * real DaemonClient through `consoleApi(client)`; tests give it an in-memory fake. The console
 * never reads files or talks to hypervisors itself.
 *
 * Endpoints the daemon may not offer yet would be called with `request` on the paths listed in
 * ASSUMED_ENDPOINTS (none today); a 404 from one is shown inline as "not offered by this daemon"
 * (an older daemon).
 */
import type {ConnectionTestResult, DaemonClient, SessionSummary, StatusReply} from '../api/client.js';
import type {SessionRecord} from '../api/session-model.js';
import type {Collection} from '../config/store.js';
import type {InventoryVm} from '../platforms/types.js';
import type {ApplianceSshKeyReply, FileSessionInfo, GuestEntry, HostKeyScanReply, InstantRecoveryInfo, RestorePlanReply, RetentionLockReply} from '../api/contract.js';
import {ExitCode, isUserError, UserError, type ExitCodeValue} from '../util/errors.js';
import {terminalSafe, terminalSafeDeep} from '../util/format.js';
import type {DaemonEvent, RestorePointInfo as DaemonRestorePointInfo, DemoLabResult, AuditEntry} from '../api/contract.js';

export type {ConnectionTestResult, SessionSummary, StatusReply, DaemonEvent, SessionRecord, Collection, InventoryVm, AuditEntry, ApplianceSshKeyReply, HostKeyScanReply, RestorePlanReply, RetentionLockReply, InstantRecoveryInfo, FileSessionInfo, GuestEntry};

/** What POST /instant-recoveries receives. */
export interface InstantRequest {
  repository: string;
  restorePointId: string;
  /** The libvirt connection to start it on (an oVirt point: required; a libvirt point: where it came from). */
  connection?: string;
  name?: string;
  host?: string;
  storage?: string;
  network: boolean;
}

/** A restore point as the daemon lists it; `vmExists` when the console knows whether the VM is still there. */
export type RestorePointInfo = DaemonRestorePointInfo & {vmExists?: boolean};

export interface RestoreRequest {
  restorePointId: string;
  repository: string;
  target:
    | {kind: 'original'; removeReplaced?: boolean}
    | {kind: 'new'; connection?: string; name: string; host?: string; cluster?: string; storageDomain?: string}
    | {kind: 'existing-vm'; vmId: string}
    | {kind: 'files'; directory: string; format?: 'qcow2' | 'raw'};
  /** Disk keys; every disk when omitted. */
  disks?: string[];
}

export interface OperationReply {
  /** Session or operation id; its progress arrives as events with this sessionId. */
  id: string;
  state?: string;
}

export interface ConsoleApi {
  status(): Promise<StatusReply>;
  list<T = Record<string, unknown>>(c: Collection): Promise<T[]>;
  get<T = Record<string, unknown>>(c: Collection, id: string): Promise<T>;
  create<T = Record<string, unknown>>(c: Collection, body: unknown): Promise<T>;
  update<T = Record<string, unknown>>(c: Collection, id: string, body: unknown): Promise<T>;
  remove(c: Collection, id: string): Promise<void>;
  testConnection(idOrConfig: string | Record<string, unknown>): Promise<ConnectionTestResult>;
  inventory(connection: string, refresh?: boolean): Promise<{at: string; vms: InventoryVm[]}>;
  startJob(id: string): Promise<SessionSummary>;
  stopJob(id: string): Promise<SessionSummary>;
  retryFailed(id: string): Promise<SessionSummary>;
  sessions(opts?: {job?: string; limit?: number}): Promise<SessionSummary[]>;
  session(id: string): Promise<SessionRecord>;
  verify(repository: string): Promise<{ok: boolean; vms: string[]; problems: number}>;
  gc(repository: string): Promise<{ok: boolean}>;
  email(): Promise<Record<string, unknown> | null>;
  setEmail(body: unknown): Promise<Record<string, unknown> | null>;
  events(onEvent: (e: DaemonEvent) => void, signal?: AbortSignal): Promise<void>;
  /** Appliance settings (GET /settings): the low-space threshold the dashboard warns at. */
  settings(): Promise<{lowSpacePercent?: number; [k: string]: unknown}>;
  restorePoints(repository: string): Promise<RestorePointInfo[]>;
  /** Protects a restore point from retention, or lifts that (PUT …/restore-points/:point/protected). */
  protectRestorePoint(repository: string, id: string, value: boolean): Promise<{id: string; protected: boolean}>;
  /** The repository's retention lock and what holds it (GET /repositories/:id/lock). */
  retentionLock(repository: string): Promise<RetentionLockReply>;
  /** Raises the retention lock to `days` (PUT /repositories/:id/lock); it is never lowered. */
  setRetentionLock(repository: string, days: number): Promise<RetentionLockReply>;
  /** Forgets one restore point (DELETE /repositories/:id/restore-points/:point); GC frees its space later. */
  forgetRestorePoint(repository: string, id: string): Promise<{id: string; damaged: boolean}>;
  /** What the restore would do (POST /restores/plan): shown before the administrator confirms. */
  planRestore(req: RestoreRequest): Promise<RestorePlanReply>;
  startRestore(req: RestoreRequest): Promise<OperationReply>;
  /** Stops a running restore (POST /restores/:id/stop); what it created is removed. */
  stopRestore(id: string): Promise<{stopped: boolean}>;
  /** The VMs running from a backup (GET /instant-recoveries). */
  instantRecoveries(): Promise<InstantRecoveryInfo[]>;
  /** Starts a VM from a restore point (POST /instant-recoveries); resolves once it runs. */
  startInstant(req: InstantRequest): Promise<{id: string; name: string; host: string; startedInMs: number}>;
  /** Moves an instant VM to storage while it runs (in the background; instantRecoveries shows how far). */
  finishInstant(id: string, storage?: string): Promise<{id: string; phase: 'migrating'}>;
  /** Stops and discards an instant VM. */
  stopInstant(id: string): Promise<{id: string; stopped: true}>;
  /** Opens a file browser on a restore point (POST /files); resolves once libguestfs runs. */
  openFiles(req: {repository: string; restorePointId: string}): Promise<FileSessionInfo>;
  /** A directory of an open file browser (GET /files/:id?path=). */
  listFiles(id: string, path: string): Promise<{path: string; entries: GuestEntry[]}>;
  /** Copies paths to a directory on the appliance (POST /files/:id/get); never over existing files. */
  getFiles(id: string, paths: string[], to: string): Promise<{copied: {path: string; to: string; type: string}[]; skipped: string[]}>;
  /** Ends a file browser (DELETE /files/:id). */
  closeFiles(id: string): Promise<{closed: boolean}>;
  prune(repository: string): Promise<{ok: boolean; removed?: number}>;
  /** Sends a test message with the saved settings; a failure rejects with the daemon's message and hint. */
  testEmail(to?: string): Promise<{ok: boolean; message?: string}>;
  /** Posts a test report to a saved webhook; a failure rejects with the daemon's message and hint. */
  testWebhook(id: string): Promise<{ok: boolean; message: string}>;
  fetchCa(url: string): Promise<{pem: string; fingerprint: string}>;
  scanHostKey(host: string, port?: number): Promise<HostKeyScanReply>;
  /** The appliance's own SSH key and the line that lets it log in to a KVM host (GET /appliance/ssh-key). */
  applianceSshKey(): Promise<ApplianceSshKeyReply>;
  logs(lines?: number): Promise<{lines: string[]}>;
  /** Sets up the demo lab (POST /demo-lab): libvirt VMs, the oVirt simulator, a repository, both connections. */
  demoLab(): Promise<DemoLabResult>;
  /** Who the daemon sees on this connection (SO_PEERCRED) and the role it gives them (GET /whoami). */
  whoami(): Promise<{uid: number; user: string; role: string}>;
  /** The newest audit log entries, oldest first (GET /audit). */
  audit(limit?: number): Promise<{entries: AuditEntry[]}>;
}

/** The endpoints the console calls that src/daemon/api.ts does not define: none any more. */
export const ASSUMED_ENDPOINTS = [] as const satisfies readonly string[];

/** The real client as a ConsoleApi. */
export function consoleApi(client: DaemonClient): ConsoleApi {
  return terminalSafeApi(rawConsoleApi(client));
}

/**
 * Every reply and event as the screens get it: strings from outside (VM names from hypervisors,
 * repository contents, log lines) with their control characters made visible, so that nothing
 * the daemon relays can drive the administrator's terminal (docs/security.md). Errors too.
 */
export function terminalSafeApi(api: ConsoleApi): ConsoleApi {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(api) as [string, (...a: unknown[]) => Promise<unknown>][]) {
    out[name] =
      name === 'events'
        ? (onEvent: (e: DaemonEvent) => void, signal?: AbortSignal) => api.events((e) => onEvent(terminalSafeDeep(e)), signal).catch(safeError)
        : (...args: unknown[]) => fn(...args).then(terminalSafeDeep, safeError);
  }
  return out as unknown as ConsoleApi;
}

function safeError(err: unknown): never {
  if (isUserError(err)) {
    err.message = terminalSafe(err.message);
    if (err.hint) (err as {hint?: string}).hint = terminalSafe(err.hint);
  }
  throw err;
}

function rawConsoleApi(client: DaemonClient): ConsoleApi {
  return {
    status: () => client.status(),
    list: (c) => client.list(c),
    get: (c, id) => client.get(c, id),
    create: (c, body) => client.create(c, body),
    update: (c, id, body) => client.update(c, id, body),
    remove: (c, id) => client.remove(c, id),
    testConnection: (x) => client.testConnection(x),
    inventory: (c, refresh) => client.inventory(c, refresh),
    startJob: (id) => client.startJob(id),
    stopJob: (id) => client.stopJob(id),
    retryFailed: (id) => client.retryFailed(id),
    sessions: (o) => client.sessions(o),
    session: (id) => client.session(id),
    verify: (r) => client.verify(r),
    gc: (r) => client.gc(r),
    email: () => client.email(),
    setEmail: (b) => client.setEmail(b),
    events: (fn, signal) => client.events(fn, signal),
    settings: () => client.settings(),
    restorePoints: (r) => client.restorePoints(r),
    forgetRestorePoint: (r, id) => client.forgetRestorePoint(r, id),
    retentionLock: (r) => client.retentionLock(r),
    setRetentionLock: (r, days) => client.setRetentionLock(r, days),
    planRestore: (req) => client.planRestore(req),
    startRestore: (req) => client.startRestore(req),
    prune: (r) => client.prune(r),
    instantRecoveries: () => client.instantRecoveries(),
    startInstant: (req) => client.startInstant(req),
    finishInstant: (id, storage) => client.finishInstant(id, storage ? {storage} : {}),
    stopInstant: (id) => client.stopInstant(id),
    openFiles: (req) => client.openFiles(req),
    listFiles: (id, path) => client.listFiles(id, path),
    getFiles: (id, paths, to) => client.getFiles(id, paths, to),
    closeFiles: (id) => client.closeFiles(id),
    testEmail: async (to) => {
      // The daemon answers a failed send as data; the console's action shows errors with their hint.
      const r = await client.testEmail(undefined, to || undefined);
      if (!r.ok) {
        throw new UserError(r.error?.message ?? r.message ?? 'The test message was not sent.', {hint: r.error?.hint, exitCode: (r.error?.exitCode ?? ExitCode.internal) as ExitCodeValue});
      }
      return {ok: true, message: `Test message sent to ${(r.accepted ?? []).join(', ')}.`};
    },
    testWebhook: async (id) => {
      const r = await client.testWebhook(id);
      if (!r.ok) throw new UserError(r.error?.message ?? 'The test report was not delivered.', {hint: r.error?.hint, exitCode: (r.error?.exitCode ?? ExitCode.internal) as ExitCodeValue});
      return {ok: true, message: `Delivered: the receiver answered HTTP ${r.status ?? '?'}${r.answer ? ` (${r.answer})` : ''}.`};
    },
    fetchCa: (url) => client.fetchCa(url),
    scanHostKey: (host, port) => client.scanHostKey(host, port),
    applianceSshKey: () => client.applianceSshKey(),
    protectRestorePoint: (repo, id, value) => client.protectRestorePoint(repo, id, value),
    stopRestore: (id) => client.stopRestore(id),
    logs: (lines = 200) => client.logs(lines),
    demoLab: () => client.demoLab(),
    whoami: () => client.whoami(),
    audit: (limit = 200) => client.audit(limit),
  };
}

/** An error in plain words for an inline message: what is wrong, and what to do. */
export function explain(err: unknown): {message: string; hint?: string} {
  if (isUserError(err)) {
    // The daemon answers an unknown route with 404 and internal/usage codes: say it plainly.
    if (isNotOffered(err))
      return {message: 'This daemon does not offer that yet.', hint: 'Update vmbackupd, or use the vmbackup CLI for this task.'};
    return {message: err.message, hint: err.hint};
  }
  return {message: err instanceof Error ? err.message : String(err)};
}

/** True when the daemon has no such endpoint (an older daemon, or one still being finished). */
export function isNotOffered(err: unknown): boolean {
  return isUserError(err) && /^No such API path|is not allowed on \/|answered 404/.test(err.message);
}
