/**
 * The engine REST client: SSO login, `Version: 4` JSON requests, TLS verified against the stored
 * engine CA, and faults turned into UserErrors (docs/reference/ovirt-backup-api.md §1, §2, §10).
 *
 * Contract: one token per client; a 401 triggers one new login and one retry of that request
 * (the SDK does the same, §2.1); the password and the token never appear in errors or logs.
 * Engine faults become `EngineError` (a UserError) carrying the HTTP status and the fault detail
 * so callers can branch on known cases (409 during backup, 400 unknown checkpoint, ...).
 */
import {Agent, request} from 'undici';
import {ExitCode, UserError, type ExitCodeValue} from '../../util/errors.js';
import {normalizeEngineUrl} from './engine-url.js';
import {fetchEngineCa} from './fetch-ca.js';
import {randomUUID} from 'node:crypto';
import {list, obj, str, type Json} from './json.js';
import {pollUntil, type PollOptions} from './poll.js';
import {isCertError, isConnectError, unreachable, wrongCertName} from '../../transports/imageio/net-errors.js';

export interface EngineClientOptions {
  url: string;
  user: string;
  password: string;
  /** The engine CA (PEM) the administrator confirmed; may be a bundle. */
  caPem: string;
  timeoutMs?: number;
  /** How often and how long a changing request refused with "try again later" (a held engine lock) is retried. */
  lockRetry?: PollOptions;
}

/**
 * The engine's refusals that mean "a command still holds this object's lock": AppErrors'
 * ACTION_TYPE_FAILED_OBJECT_LOCKED ("Related operation is currently in progress. Please try again
 * later.") and the disk's "Disk is locked. Please try again later.".
 */
const LOCKED = /Related operation is currently in progress|Disk is locked\. Please try again later/;

export class EngineError extends UserError {
  constructor(
    message: string,
    readonly status: number,
    readonly detail: string,
    opts: {hint?: string; exitCode?: ExitCodeValue; cause?: unknown} = {},
  ) {
    super(message, opts);
    this.name = 'EngineError';
  }
}

export class EngineClient {
  readonly base: string;
  private readonly agent: Agent;
  private token: string | undefined;
  private loggingIn: Promise<void> | undefined;

  private readonly lockRetry: PollOptions;

  constructor(private readonly o: EngineClientOptions) {
    this.lockRetry = o.lockRetry ?? {intervalMs: 1000, timeoutMs: 120_000};
    this.base = normalizeEngineUrl(o.url);
    this.agent = new Agent({connect: {ca: o.caPem, timeout: o.timeoutMs ?? 15_000}, keepAliveTimeout: 30_000});
  }

  get caPem(): string {
    return this.o.caPem;
  }

  /** Gets a token with the password grant; scope ovirt-app-api is mandatory (gotcha 27). */
  async login(): Promise<void> {
    this.loggingIn ??= this.doLogin().finally(() => (this.loggingIn = undefined));
    return this.loggingIn;
  }

  private async doLogin(): Promise<void> {
    const form = new URLSearchParams({grant_type: 'password', scope: 'ovirt-app-api', username: this.o.user, password: this.o.password});
    const res = await this.send('POST', `${this.base}/sso/oauth/token`, {
      'content-type': 'application/x-www-form-urlencoded', accept: 'application/json',
    }, form.toString());
    const body = parseJson(res.text);
    const token = str(body.access_token);
    if (res.status === 200 && token) {
      this.token = token;
      return;
    }
    const why = str(body.error_description) ?? str(body.error) ?? `HTTP ${res.status}`;
    const code = str(body.error_code) ?? str(body.error) ?? '';
    if (res.status === 400 || res.status === 401) {
      throw new UserError(`The engine refused the login of ${this.o.user}: ${why}`, {
        hint: code === 'invalid_scope'
          ? 'The engine did not accept the ovirt-app-api scope; check that this is an oVirt 4.x / OLVM engine.'
          : 'Check the user name with its profile (admin@internal, or admin@ovirt@internalsso on oVirt 4.5 with Keycloak) and the password.',
        exitCode: ExitCode.authFailed,
      });
    }
    throw new EngineError(`The engine SSO answered HTTP ${res.status}: ${why}`, res.status, why, {exitCode: ExitCode.platformFailed});
  }

  /** Revokes the token (best effort) and closes the connections. */
  async close(): Promise<void> {
    if (this.token) {
      const form = new URLSearchParams({scope: 'ovirt-app-api', token: this.token});
      await this.send('POST', `${this.base}/services/sso-logout`, {'content-type': 'application/x-www-form-urlencoded'}, form.toString()).catch(() => undefined);
      this.token = undefined;
    }
    await this.agent.close();
  }

  get(path: string, query?: Record<string, string>): Promise<Json> {
    return this.api('GET', path, {query}).then((r) => r.body);
  }

  /** GET that answers undefined on 404 (entity gone) instead of throwing. */
  async find(path: string, query?: Record<string, string>): Promise<Json | undefined> {
    const r = await this.api('GET', path, {query, allow404: true});
    return r.status === 404 ? undefined : r.body;
  }

  post(path: string, body: unknown, query?: Record<string, string>): Promise<Json> {
    return this.change('POST', path, body, query).then((r) => r.body);
  }

  delete(path: string, query?: Record<string, string>): Promise<Json> {
    return this.change('DELETE', path, undefined, query).then((r) => r.body);
  }

  /**
   * A changing request with its own correlation_id, which names the engine jobs it starts (the
   * SDK's `query={'correlation_id': ...}`; the engine tags the command's job with it). Returned so
   * that the caller can wait for those jobs (waitForJobs).
   */
  async change(method: 'POST' | 'DELETE', path: string, body?: unknown, query?: Record<string, string>): Promise<{body: Json; correlationId: string}> {
    const correlationId = randomUUID();
    const r = await this.api(method, path, {body, query: {...query, correlation_id: correlationId}});
    return {body: r.body, correlationId};
  }

  /**
   * Waits until every engine job of a correlation id has ended (GET /jobs?search=correlation_id=…,
   * as go-ovirt-client does): an entity can look done (a disk `ok`) while the command that made it
   * still holds its lock, and the next command on it would be refused. A failed job is an error.
   */
  async waitForJobs(correlationId: string, what: string, poll: PollOptions): Promise<void> {
    await pollUntil(`the engine to finish ${what}`, poll, async () => {
      const jobs = list(await this.get('/jobs', {search: `correlation_id=${correlationId}`}), 'job');
      const failed = jobs.find((j) => ['failed', 'aborted'].includes(str(j.status) ?? ''));
      if (failed) {
        throw new EngineError(`The engine's job for ${what} ended ${str(failed.status)}: ${str(failed.description) ?? ''}.`, 500, str(failed.description) ?? '', {
          hint: 'See the engine events and tasks for the reason.', exitCode: ExitCode.platformFailed,
        });
      }
      return jobs.some((j) => ['started', 'unknown'].includes(str(j.status) ?? '')) ? undefined : true;
    });
  }

  private async api(method: string, path: string, opts: {body?: unknown; query?: Record<string, string>; allow404?: boolean}): Promise<{status: number; body: Json}> {
    const qs = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : '';
    const target = `${this.base}/api${path}${qs}`;
    const lockedUntil = Date.now() + this.lockRetry.timeoutMs;
    let relogged = false;
    for (;;) {
      if (!this.token) await this.login();
      const used = this.token;
      const headers: Record<string, string> = {
        version: '4', accept: 'application/json', authorization: `Bearer ${used}`,
      };
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      if (payload !== undefined) headers['content-type'] = 'application/json';
      const res = await this.send(method, target, headers, payload);
      if (res.status === 409 && method !== 'GET' && LOCKED.test(res.text) && Date.now() < lockedUntil) {
        // Another command still holds the engine lock of the object (its job has not ended):
        // "Please try again later" — so we do, for a while.
        await new Promise((r) => setTimeout(r, this.lockRetry.intervalMs));
        continue;
      }
      if (res.status === 401 && !relogged) {
        relogged = true;
        // Token expired (sessions time out after 30 min idle): log in again once (§2.1). Requests
        // in flight with the same token share that one new login.
        if (this.token === used) this.token = undefined;
        continue;
      }
      if (res.status >= 200 && res.status < 300) return {status: res.status, body: parseJson(res.text)};
      if (res.status === 404 && opts.allow404) return {status: 404, body: {}};
      throw this.fault(method, path, res.status, res.text);
    }
  }

  private fault(method: string, path: string, status: number, text: string): EngineError {
    const body = parseJson(text);
    // Action failures wrap the fault (§1.5); validation failures are a bare fault (§10.1).
    const f = body.fault ? obj(body.fault) : body;
    const detail = (str(f.detail) ?? str(f.reason) ?? '').replace(/^\[(.*)\]$/s, '$1');
    const what = `${method} ${path.split('?')[0]}`;
    if (status === 401 || status === 403) {
      return new EngineError(`The engine denied ${what} (HTTP ${status})${detail ? `: ${detail}` : ''}.`, status, detail, {
        hint: 'Check that the user has the permissions a backup needs (for example the DiskOperator and VmBackup roles, or SuperUser).',
        exitCode: ExitCode.authFailed,
      });
    }
    if (status === 404) {
      return new EngineError(`The engine has no ${path.split('?')[0]} (HTTP 404).`, status, detail, {
        hint: 'The VM, disk or object was removed or renamed; refresh the inventory and check the job\'s selection.',
        exitCode: ExitCode.notFound,
      });
    }
    return new EngineError(`The engine refused ${what} (HTTP ${status}): ${(detail || 'no detail').replace(/\.$/, '')}.`, status, detail, {
      hint: status === 409 ? 'Another operation holds the VM or its disks; the next run will try again.' : 'See the engine\'s event log for this VM.',
      exitCode: ExitCode.platformFailed,
    });
  }

  private async send(method: string, target: string, headers: Record<string, string>, body?: string): Promise<{status: number; text: string}> {
    try {
      const res = await request(target, {
        method: method as 'GET', headers, body, dispatcher: this.agent,
        headersTimeout: this.o.timeoutMs ?? 120_000, bodyTimeout: this.o.timeoutMs ?? 120_000,
      });
      return {status: res.statusCode, text: await res.body.text()};
    } catch (err) {
      if (isCertError(err)) throw await this.untrusted(err);
      if (isConnectError(err)) throw unreachable('the engine', this.base, err);
      throw err;
    }
  }

  private async untrusted(err: unknown): Promise<UserError> {
    const misnamed = wrongCertName(err, 'the engine', this.base);
    if (misnamed) return misnamed;
    let presented = '';
    try {
      presented = ` The engine now publishes a CA with SHA-256 fingerprint ${(await fetchEngineCa(this.base)).fingerprint}.`;
    } catch {
      // The fingerprint is a help, not a requirement.
    }
    return new UserError(`The engine's TLS certificate at ${this.base} is not signed by the stored engine CA.${presented}`, {
      hint: 'If the engine was reinstalled or its certificate renewed, confirm that fingerprint with the engine administrator and store the new CA again; otherwise something is intercepting the connection.',
      exitCode: ExitCode.untrusted,
      cause: err,
    });
  }
}

function parseJson(text: string): Json {
  if (!text) return {};
  try {
    return obj(JSON.parse(text));
  } catch {
    return {};
  }
}
