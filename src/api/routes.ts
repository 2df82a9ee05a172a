/**
 * The control API's routes, in one place: each has a name, a method, a path (":x" is a
 * parameter, ":collection" one of the five configuration collections) and the least role that
 * may call it (GETs are an operator's, changes an admin's, unless said otherwise here; a few
 * routes check more inside, e.g. a restore over the original VM is an admin's). The daemon
 * (src/daemon/api.ts) serves exactly these routes and the client (client.ts) builds every
 * request from them, so a path is written once. Bodies and replies: contract.ts and the client's
 * method types. Errors are {error: {message, hint, field?, exitCode}}.
 */
import type {Role} from '../config/schema.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteSpec {
  method: Method;
  path: string;
  role: Role;
  /** What it does, for the route list (docs and --help). */
  summary: string;
}

const r = (method: Method, path: string, summary: string, role?: Role): RouteSpec => ({method, path, role: role ?? (method === 'GET' ? 'operator' : 'admin'), summary});

export const ROUTES = {
  status: r('GET', '/status', 'daemon, running sessions, workers, repositories (used/free/dedup)'),
  list: r('GET', '/:collection', 'the objects of a collection (secrets redacted "••••")'),
  create: r('POST', '/:collection', 'creates one'),
  get: r('GET', '/:collection/:id', 'one object'),
  update: r('PUT', '/:collection/:id', 'replaces one'),
  remove: r('DELETE', '/:collection/:id', 'removes one'),
  testConnection: r('POST', '/connections/:id/test', 'reachable / authenticated / inventory count (or the error and hint)', 'operator'),
  testNewConnection: r('POST', '/connections/test', 'the same for an unsaved connection in the body'),
  fetchCa: r('POST', '/connections/ovirt-ca', '{url} → the engine CA {pem, fingerprint, subject, validTo}, to confirm (not trusted)'),
  scanHostKey: r('POST', '/connections/ssh-hostkey', '{host, port?} → the host keys {keys: [{type, fingerprint, key}]}, to confirm'),
  inventory: r('GET', '/inventory', '?connection=ID[&refresh=1] → {at, vms}'),
  testRepository: r('POST', '/repositories/:id/test', 'opens, takes a write, free space', 'operator'),
  verify: r('POST', '/repositories/:id/verify', 'a health check now', 'operator'),
  gc: r('POST', '/repositories/:id/gc', 'garbage collection now', 'operator'),
  prune: r('POST', '/repositories/:id/prune', "each job's retention on its VMs there → {ok, removed, kept, vms, unassigned}"),
  restorePoints: r('GET', '/repositories/:id/restore-points', 'the restore points, with whether each VM still exists'),
  forgetRestorePoint: r('DELETE', '/repositories/:id/restore-points/:point', '[?force=1] forgets one → {id, damaged}; GC frees its chunks'),
  protectRestorePoint: r('PUT', '/repositories/:id/restore-points/:point/protected', '{protected} → {id, protected}'),
  retentionLock: r('GET', '/repositories/:id/lock', 'the retention lock → {lock: {days, setAt} | null, storageEnforced, note}'),
  setRetentionLock: r('PUT', '/repositories/:id/lock', '{days} → raises the retention lock (never lowers it): {lock, storageEnforced, note}'),
  planRestore: r('POST', '/restores/plan', '{restorePointId, repository, target, disks?, connection?} → what it would do {target, creates, replaces, notes}', 'operator'),
  startRestore: r('POST', '/restores', 'the same body → {id}; progress as engine events with sessionId = id', 'operator'),
  stopRestore: r('POST', '/restores/:id/stop', 'stops a running restore (what it made is removed)', 'operator'),
  instantRecoveries: r('GET', '/instant-recoveries', 'the VMs running from a backup, with their phase and progress'),
  startInstant: r('POST', '/instant-recoveries', '{repository, restorePointId, connection?, name?, host?, storage?, network?, disks?} → {id, name, host, startedInMs} once the VM runs', 'operator'),
  finishInstant: r('POST', '/instant-recoveries/:id/finish', '{storage?} → moves the running VM to storage (in the background) and makes it persistent', 'operator'),
  stopInstant: r('POST', '/instant-recoveries/:id/stop', 'stops and discards the instant VM (its writes are lost)', 'operator'),
  openFiles: r('POST', '/files', '{repository, restorePointId, disks?, filesystem?} → a file browser {id, layout, …} once libguestfs runs', 'operator'),
  listFiles: r('GET', '/files/:id', '?path=/etc → {path, entries}'),
  // An administrator's: the guest chooses names and contents, written as root where `to` says
  // (/etc/cron.d would make the guest root on the appliance); operators browse.
  getFiles: r('POST', '/files/:id/get', '{paths, to} → {copied, skipped}: copies to a directory on the appliance, never over existing files', 'admin'),
  closeFiles: r('DELETE', '/files/:id', 'ends the file browser (also after 10 idle minutes)', 'operator'),
  startJob: r('POST', '/jobs/:id/start', 'starts a session now → the session', 'operator'),
  retryFailed: r('POST', '/jobs/:id/retry-failed', "runs the last session's failed VMs again", 'operator'),
  stopJob: r('POST', '/jobs/:id/stop', "stops the job's running session", 'operator'),
  sessions: r('GET', '/sessions', '[?job=ID&limit=N] sessions, newest first'),
  session: r('GET', '/sessions/:id', 'one session with its log'),
  stopSession: r('POST', '/sessions/:id/stop', 'stops a running session', 'operator'),
  email: r('GET', '/email', 'the email settings (secrets redacted)'),
  setEmail: r('PUT', '/email', 'saves them'),
  removeEmail: r('DELETE', '/email', 'removes them'),
  testWebhook: r('POST', '/webhooks/:id/test', 'posts a test report to a saved webhook now → {ok, status?, answer?, error?}', 'operator'),
  testEmail: r('POST', '/email/test', '{to?, ...settings?} sends a test message now → {ok, message, accepted?, error?}', 'operator'),
  sendDailySummary: r('POST', '/email/daily-summary', 'queues the daily summary now → {queued, to, reason?}', 'operator'),
  settings: r('GET', '/settings', 'appliance settings, with dailySummary {enabled, time}'),
  setSettings: r('PUT', '/settings', 'a partial change of them'),
  logs: r('GET', '/logs', "[?lines=N] the daemon's newest log lines (200, at most 2000), secrets replaced by \"••••\""),
  applianceSshKey: r('GET', '/appliance/ssh-key', "the appliance's own SSH key and the line for a host's authorized_keys"),
  demoLab: r('POST', '/demo-lab', 'sets up the demo lab (VMs, oVirt simulator, repository, both connections; idempotent)'),
  whoami: r('GET', '/whoami', 'who the daemon sees on this connection and their role'),
  audit: r('GET', '/audit', '[?limit=N] the newest audit log entries'),
  users: r('GET', '/users', 'console users and their roles'),
  putUser: r('PUT', '/users/:name', '{role, sshKey?} adds or changes one'),
  removeUser: r('DELETE', '/users/:name', 'removes one'),
  events: r('GET', '/events', 'server-sent events (one DaemonEvent per "data:" line)'),
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof ROUTES;

/** The configuration collections behind ":collection". */
export const COLLECTIONS = ['repositories', 'connections', 'workers', 'jobs', 'webhooks'] as const;

/**
 * The path of a route with its parameters filled in (URL-encoded) and a query string of the
 * defined values in `query`.
 */
export function routePath(name: RouteName, params: Record<string, string> = {}, query: Record<string, string | number | boolean | undefined> = {}): string {
  const path = ROUTES[name].path.replace(/:([a-z]+)/g, (_m, p: string) => {
    const v = params[p];
    if (v === undefined) throw new Error(`route ${name} needs its parameter ${p}`);
    return encodeURIComponent(v);
  });
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== false) q.set(k, v === true ? '1' : String(v));
  return q.size ? `${path}?${q}` : path;
}
