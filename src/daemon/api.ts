/**
 * The control API: HTTP + JSON on a unix socket (default /run/vmbackup/api.sock), for the CLI
 * and the console. The socket is 0660 (group vmbackup when that group exists) in a 0750
 * directory: never world-accessible, since whoever reaches it controls the appliance.
 *
 * The routes, their methods, paths and the least role for each are the route table in
 * src/api/routes.ts (one place for the server and the client); the shapes of bodies and
 * replies are in src/api/contract.ts and the client's method types. Errors are
 * {error: {message, hint, field?, exitCode}}.
 */
import {chmod, mkdir, readFile, rm, stat} from 'node:fs/promises';
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http';
import type {Socket} from 'node:net';
import {dirname} from 'node:path';
import {errnoCode, ExitCode, UserError} from '../util/errors.js';
import {fetchEngineCa} from '../platforms/ovirt/fetch-ca.js';
import {scanHostKey} from '../transports/ssh-host-key.js';
import {hostKeyScanReply} from '../api/contract.js';
import type {ApiServices} from './services.js';
import {errorBody, readJson, sendJson} from './http-util.js';
import {AuditLog} from './audit.js';
import {peerOf, type Peer} from './peer.js';
import type {ConsoleUserConfig, Role} from '../config/schema.js';
import type {Collection} from '../config/store.js';
import {COLLECTIONS, ROUTES, type RouteName} from '../api/routes.js';
import type {AuditEntry} from '../api/contract.js';

export {DEFAULT_SOCKET} from '../api/contract.js';
/** Connections the control socket holds at once; more are closed as they arrive. */
export const MAX_CONNECTIONS = 64;
/** Event streams (consoles watching progress) at once. */
export const MAX_EVENT_STREAMS = 32;
/** A connection that sends nothing for this long is closed (event streams excepted). */
export const IDLE_TIMEOUT_MS = Number(process.env['VMBACKUP_API_IDLE_MS'] ?? 15_000);

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<unknown>;
interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  /** The least role that may call it: GETs are the operator's, changes the admin's unless said. */
  role: Role;
}

/** Who made a request, and with which role (set before the handler runs). */
export interface Caller {
  peer: Peer;
  role: Role;
}

/** The installer's console account (appliance/install-daemon.sh): an administrator. */
export const INSTALL_CONSOLE_USER = 'console';

/** The role of a connecting user: root, the daemon's own user and `console` are admins. */
export function roleOf(peer: Peer, users: readonly ConsoleUserConfig[]): Role | undefined {
  if (peer.uid === 0 || peer.uid === process.getuid?.()) return 'admin';
  if (peer.user === INSTALL_CONSOLE_USER) return 'admin';
  return users.find((u) => u.name === peer.user)?.role;
}

export class ApiServer {
  private readonly server: Server;
  private readonly routes: Route[] = [];
  private readonly sse = new Set<ServerResponse>();

  constructor(private readonly d: ApiServices) {
    this.audit = new AuditLog(d.stateDir);
    this.server = createServer((req, res) => void this.handle(req, res));
    // Bounded resources whoever connects (docs/security.md): at most MAX_CONNECTIONS at once
    // (more are closed at once), and a connection that sends nothing for IDLE_TIMEOUT_MS is
    // closed; event streams are exempt from the idle timeout and send a heartbeat instead.
    // The idle clock runs only while no request is in flight: a connection test or a test mail
    // may take a while to answer, and that is not idleness.
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.keepAliveTimeout = 5_000;
    this.server.headersTimeout = IDLE_TIMEOUT_MS;
    this.server.requestTimeout = 120_000;
    this.server.on('connection', (socket: Socket) => {
      socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      req.socket.setTimeout(0);
      res.on('finish', () => req.socket.setTimeout(IDLE_TIMEOUT_MS));
    });
    this.define();
  }

  private readonly callers = new WeakMap<IncomingMessage, Caller>();
  readonly audit: AuditLog;

  /**
   * Serves the route `name` of the route table (src/api/routes.ts: method, path, least role);
   * a route on ":collection" is served for each collection, and its handler gets which.
   */
  private on(name: RouteName, handler: (...a: [...Parameters<Handler>, Collection]) => Promise<unknown>): void {
    const {method, path, role} = ROUTES[name];
    const collections: readonly (Collection | undefined)[] = path.includes(':collection') ? COLLECTIONS : [undefined];
    for (const c of collections) {
      const concrete = c ? path.replace(':collection', c) : path;
      const pattern = new RegExp('^' + concrete.replace(/:[a-z]+/g, '([^/]+)') + '$');
      this.routes.push({method, pattern, handler: (req, res, params, url) => handler(req, res, params, url, c!), role});
    }
  }

  /** The caller of a request being handled. */
  caller(req: IncomingMessage): Caller {
    const c = this.callers.get(req);
    if (!c) throw new Error('no caller recorded for this request');
    return c;
  }

  /** Throws unless the caller is an admin; `what` says what needs one. */
  private requireAdmin(req: IncomingMessage, what: string): void {
    const c = this.caller(req);
    if (c.role !== 'admin') throw forbidden(c, what);
  }

  private define(): void {
    const d = this.d;
    this.on('status', async () => d.status.status());
    this.on('inventory', async (_q, _r, _p, url) => {
      const id = url.searchParams.get('connection');
      if (!id) throw new UserError('Say which connection: GET /inventory?connection=ID.', {exitCode: ExitCode.usage});
      return d.resources.inventory(id, url.searchParams.get('refresh') === '1');
    });
    this.on('testNewConnection', async (req) => d.configuration.testConnection(await readJson(req)));
    this.on('testConnection', async (_q, _r, [id]) => d.configuration.testConnection(undefined, id));
    this.on(
      'startJob',
      async (_q, res, [id]) => {
        res.statusCode = 202;
        return d.sessions.start(id!, 'manual');
      },
    );
    this.on('retryFailed', async (_q, res, [id]) => {
      const failed = d.sessions.lastFailedVms(id!);
      if (failed.length === 0) throw new UserError('The last session of this job has no failed VM to retry.', {hint: 'Start the whole job instead.', exitCode: ExitCode.notFound});
      res.statusCode = 202;
      return d.sessions.start(id!, 'retry-failed', failed);
    });
    this.on('stopJob', async (_q, _r, [id]) => d.sessions.stop(id!));
    this.on('stopSession', async (_q, _r, [id]) => d.sessions.stop(id!));
    this.on('sessions', async (_q, _r, _p, url) => {
      const job = url.searchParams.get('job');
      const limit = Number(url.searchParams.get('limit') ?? 100);
      return d.status.sessionList(job ?? undefined, Number.isFinite(limit) && limit > 0 ? limit : 100);
    });
    this.on('session', async (_q, _r, [id]) => {
      const s = await d.sessions.get(id!);
      if (!s) throw new UserError(`No session with id ${id}.`, {hint: 'List sessions with vmbackup session list.', exitCode: ExitCode.notFound});
      return s;
    });
    this.on('testRepository', async (_q, _r, [id]) => d.configuration.testRepository(id!));
    this.on(
      'testEmail',
      async (req) => {
        const body = await readJson(req);
        // The saved settings to a chosen address: an operator may; settings in the body are an admin's.
        const {to: _to, ...settings} = (body ?? {}) as Record<string, unknown>;
        if (Object.keys(settings).length > 0) this.requireAdmin(req, 'trying email settings');
        return d.configuration.testEmail(body);
      },
    );
    this.on('testWebhook', async (_q, _r, [id]) => d.configuration.testWebhook(id!));
    this.on('sendDailySummary', async () => d.configuration.sendDailySummary());
    this.on('logs', async (_q, _r, _p, url) => {
      const raw = url.searchParams.get('lines');
      const lines = raw === null ? 200 : Number(raw);
      if (!Number.isInteger(lines) || lines < 1) throw new UserError(`lines: must be a whole number of 1 or more, not '${raw}'.`, {hint: 'For example GET /logs?lines=200.', exitCode: ExitCode.invalidInput});
      return d.status.logs(lines);
    });
    this.on('prune', async (_q, _r, [id]) => d.maintenance.prune(id!));
    this.on('verify', async (_q, _r, [id]) => d.maintenance.healthCheck(id!));
    this.on(
      'gc',
      async (_q, _r, [id]) => {
        await d.maintenance.gc(id!);
        return {ok: true};
      },
    );
    this.on('email', async () => d.configuration.email());
    this.on('setEmail', async (req) => d.configuration.setEmail(await readJson(req)));
    this.on('removeEmail', async () => d.configuration.setEmail(null));
    this.on('settings', async () => d.configuration.settings());
    this.on('setSettings', async (req) => d.configuration.setSettings(await readJson(req)));
    this.on('restorePoints', async (_q, _r, [id]) => d.restores.restorePoints(id!));
    // Forgetting a restore point is an admin's (GC frees its chunks later).
    this.on('protectRestorePoint', async (req, _r, [id, point]) => {
      const {protected: value} = (await readJson(req)) as {protected?: unknown};
      if (typeof value !== 'boolean') throw new UserError('protected: give true or false', {exitCode: ExitCode.invalidInput});
      const repo = await d.resources.repository(id!);
      await repo.setProtected(point!, value);
      return {id: point, protected: value};
    });
    this.on('retentionLock', async (_q, _r, [id]) => {
      const repo = await d.resources.repository(id!);
      return {lock: (await repo.retentionLock()) ?? null, ...(await repo.retentionLockScope())};
    });
    this.on('setRetentionLock', async (req, _r, [id]) => {
      const body = (await readJson(req)) as {days?: unknown} | null;
      const days = body?.days;
      if (typeof days !== 'number' || !Number.isInteger(days)) throw new UserError('days: give a whole number of days (1 to 36500).', {hint: 'For example {"days": 30}.', exitCode: ExitCode.invalidInput});
      const repo = await d.resources.repository(id!);
      const lock = await repo.setRetentionLock(days);
      d.log('info', `repository ${id}: retention lock set to ${lock.days} days`);
      return {lock, ...(await repo.retentionLockScope())};
    });
    this.on('forgetRestorePoint', async (_q, _r, [id, point], url) => {
      const repo = await d.resources.repository(id!);
      return repo.forget(point!, {force: url.searchParams.get('force') === '1'});
    });
    this.on(
      'startRestore',
      async (req, res) => {
        const body = await readJson(req);
        // A restore that overwrites (over the original VM) is an admin's; new places are an operator's.
        if ((body as {target?: {kind?: unknown}} | null)?.target?.kind === 'original') this.requireAdmin(req, 'a restore over the original VM');
        res.statusCode = 202;
        return d.restores.start(body);
      },
    );
    this.on(
      'planRestore',
      async (req) => {
        const body = await readJson(req);
        if ((body as {target?: {kind?: unknown}} | null)?.target?.kind === 'original') this.requireAdmin(req, 'a restore over the original VM');
        return d.restores.plan(body);
      },
    );
    this.on('stopRestore', async (_q, _r, [id]) => ({stopped: d.restores.stop(id!)}));
    this.on('instantRecoveries', async () => ({instant: d.instant.list()}));
    this.on('startInstant', async (req) => d.instant.start(await readJson(req)));
    this.on('finishInstant', async (req, res, [id]) => {
      const body = await readJson(req);
      res.statusCode = 202;
      return d.instant.finish(id!, body);
    });
    this.on('stopInstant', async (_q, _r, [id]) => d.instant.stop(id!));
    this.on('openFiles', async (req) => d.files.open(await readJson(req)));
    this.on('listFiles', async (_q, _r, [id], url) => d.files.ls(id!, url.searchParams.get('path') || '/'));
    this.on('getFiles', async (req, _r, [id]) => d.files.get(id!, await readJson(req)));
    this.on('closeFiles', async (_q, _r, [id]) => d.files.close(id!));
    this.on('applianceSshKey', async () => d.sshKey);
    this.on('whoami', async (req) => {
      const c = this.caller(req);
      return {uid: c.peer.uid, user: c.peer.user, role: c.role};
    });
    this.on('audit', async (_q, _r, _p, url) => {
      const raw = Number(url.searchParams.get('limit') ?? 200);
      return {entries: await this.audit.newest(Number.isInteger(raw) && raw > 0 ? Math.min(raw, 5000) : 200)};
    });
    this.on('users', async () => d.configuration.users());
    this.on('putUser', async (req, _r, [name]) => d.users.putUser(name!, await readJson(req)));
    this.on('removeUser', async (_q, res, [name]) => {
      await d.users.removeUser(name!);
      res.statusCode = 204;
      return undefined;
    });
    this.on('fetchCa', async (req) => {
      const {url} = (await readJson(req)) as {url?: unknown};
      if (typeof url !== 'string' || !url) throw new UserError('url: give the engine address, e.g. https://engine.example/ovirt-engine', {exitCode: ExitCode.invalidInput});
      return fetchEngineCa(url);
    });
    this.on('scanHostKey', async (req) => {
      const {host, port} = (await readJson(req)) as {host?: unknown; port?: unknown};
      if (typeof host !== 'string' || !host) throw new UserError('host: give the KVM host name or address', {exitCode: ExitCode.invalidInput});
      const keys = await scanHostKey(host, typeof port === 'number' ? port : 22);
      // Built through the contract's schema: the console stores `key` as the connection's hostKey.
      return hostKeyScanReply.parse({keys: keys.map((k) => ({type: k.type, fingerprint: k.fingerprint, key: k.publicKey}))});
    });
    this.on('demoLab', async (req) => d.demoLab(await readJson(req)));
    this.on('events', async (req, res) => this.events(req, res));
    this.on('list', async (_q, _r, _p, _u, c) => d.configuration.list(c));
    this.on('create', async (req, res, _p, _u, c) => {
      res.statusCode = 201;
      return d.configuration.create(c, await readJson(req));
    });
    this.on('get', async (_q, _r, [id], _u, c) => d.configuration.getOne(c, id!));
    this.on('update', async (req, _r, [id], _u, c) => d.configuration.update(c, id!, await readJson(req)));
    this.on('remove', async (_q, res, [id], _u, c) => {
      await d.configuration.remove(c, id!);
      res.statusCode = 204;
      return undefined;
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://vmbackupd');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    let caller: Caller | undefined;
    let peer: Peer | undefined;
    const audited = req.method !== 'GET' && req.method !== 'HEAD';
    try {
      // Who is asking, from the kernel (SO_PEERCRED): fail closed when that cannot be told.
      peer = await peerOf(req.socket).catch((err: unknown) => {
        this.d.log('warn', `API: the caller of ${req.method} ${path} could not be identified: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      });
      if (!peer) throw new UserError('vmbackupd could not tell which user is asking, so it refuses.', {hint: 'See the daemon log.', exitCode: ExitCode.forbidden});
      const role = roleOf(peer, this.d.users.data.users);
      if (!role) {
        throw new UserError(`The user ${peer.user} (uid ${peer.uid}) is not a vmbackup console user.`, {
          hint: 'An administrator adds console users with "vmbackup user add <name> --ssh-key <file> --role operator".',
          exitCode: ExitCode.forbidden,
        });
      }
      caller = {peer, role};
      this.callers.set(req, caller);
      let methodMismatch = false;
      for (const r of this.routes) {
        const m = r.pattern.exec(path);
        if (!m) continue;
        if (r.method !== req.method) {
          methodMismatch = true;
          continue;
        }
        if (r.role === 'admin' && role !== 'admin') throw forbidden(caller, `${req.method} ${path}`);
        const params = m.slice(1).map((p) => decodeURIComponent(p));
        const result = await r.handler(req, res, params, url);
        if (audited) this.record(caller.peer, caller.role, req, path, 'ok', res.statusCode || 200);
        if (res.headersSent || res.writableEnded) return;
        if (res.statusCode === 204) {
          res.end();
          return;
        }
        sendJson(res, res.statusCode || 200, result);
        return;
      }
      throw new UserError(methodMismatch ? `${req.method} is not allowed on ${path}.` : `No such API path: ${path}.`, {
        hint: 'See the route list at the top of src/daemon/api.ts.',
        exitCode: methodMismatch ? ExitCode.usage : ExitCode.notFound,
      });
    } catch (err) {
      const {status, body} = errorBody(err);
      if (audited) this.record(peer, caller?.role, req, path, status === 403 ? 'refused' : 'failed', status, body.error.message);
      if (status === 500) this.d.log('error', `API ${req.method} ${path} failed: ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) sendJson(res, status, body);
      else res.end();
    }
  }

  private record(peer: Peer | undefined, role: Role | undefined, req: IncomingMessage, path: string, outcome: AuditEntry['outcome'], status: number, error?: string): void {
    const entry: AuditEntry = {
      time: new Date().toISOString(),
      uid: peer?.uid ?? -1,
      user: peer?.user ?? 'unknown',
      role: role ?? 'none',
      method: req.method ?? '?',
      path,
      outcome,
      status,
      ...(error !== undefined ? {error} : {}),
    };
    void this.audit.record(entry, (err) => this.d.log('error', `audit log ${this.audit.path}: ${err instanceof Error ? err.message : String(err)}`));
  }

  private async events(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.sse.size >= MAX_EVENT_STREAMS) {
      throw new UserError(`Too many event streams are open (${MAX_EVENT_STREAMS}).`, {hint: 'Close some consoles, then try again.', exitCode: ExitCode.locked});
    }
    req.socket.setTimeout(0);
    res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive'});
    res.write(': vmbackupd events\n\n');
    this.sse.add(res);
    const unsubscribe = this.d.events.subscribe((e) => {
      // A stream ended by close() (daemon stopping) or by the client gets nothing more: a write
      // after end would be an unhandled 'error' that brings the daemon down mid-shutdown.
      if (res.writableEnded || res.destroyed) return;
      // Progress events are dropped for a client whose buffer is full, never queued without bound.
      if (res.writableNeedDrain && e.type === 'engine' && e.event.type === 'disk-progress') return;
      res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    });
    // A heartbeat keeps the stream from looking idle to proxies and finds dead peers.
    const heartbeat = setInterval(() => {
      if (!res.writableEnded && !res.destroyed) res.write(': heartbeat\n\n');
    }, 30_000);
    heartbeat.unref();
    const done = () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.sse.delete(res);
    };
    req.on('close', done);
    res.on('close', done);
    // A client that vanishes mid-write must not crash the daemon.
    res.on('error', (err) => this.d.log('debug', `event stream closed: ${err.message}`));
  }

  async listen(socketPath: string): Promise<void> {
    const dir = dirname(socketPath);
    const existed = await stat(dir).then(() => true, () => false);
    if (!existed) await mkdir(dir, {recursive: true, mode: 0o750});
    await removeStaleSocket(socketPath);
    // The socket is created with the process umask: make it private before it can be reached.
    const old = process.umask(0o117);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(socketPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    await chmod(socketPath, 0o660);
    const gid = await groupId('vmbackup');
    if (gid !== undefined) {
      const {chown} = await import('node:fs/promises');
      await chown(socketPath, process.getuid?.() ?? 0, gid).catch(() => {});
      if (!existed) await chown(dir, process.getuid?.() ?? 0, gid).catch(() => {});
    }
    if (!existed) await chmod(dir, 0o750);
  }

  /** Stops accepting; ends event streams; waits for requests in flight. */
  async close(): Promise<void> {
    for (const res of this.sse) res.end();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }
}

function forbidden(c: Caller, what: string): UserError {
  return new UserError(`${what} needs an administrator; ${c.peer.user} is an ${c.role}.`, {
    hint: 'Ask an administrator of this appliance to do it, or to give your account the admin role.',
    exitCode: ExitCode.forbidden,
  });
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const s = await stat(path);
    if (!s.isSocket()) {
      throw new UserError(`${path} exists and is not a socket.`, {hint: 'Remove it or choose another --socket path.', exitCode: ExitCode.invalidInput});
    }
    const {connect} = await import('node:net');
    const alive = await new Promise<boolean>((resolve) => {
      const c = connect(path);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (alive) throw new UserError(`Another vmbackupd is already listening on ${path}.`, {hint: 'Stop it first (systemctl stop vmbackupd) or use another --socket.', exitCode: ExitCode.locked});
    await rm(path, {force: true});
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

async function groupId(name: string): Promise<number | undefined> {
  try {
    const text = await readFile('/etc/group', 'utf8');
    const line = text.split('\n').find((l) => l.split(':')[0] === name);
    const gid = line ? Number(line.split(':')[2]) : NaN;
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}
