/**
 * Client of the ovirt-imageio data plane for one transfer ticket (docs/reference/ovirt-backup-api.md §6).
 *
 * Contract:
 * - open() sends OPTIONS first, to `transfer_url` (the host daemon) and, when the host cannot be
 *   reached, to `proxy_url` (the engine proxy, gotcha 11); the chosen base is kept for every
 *   later request. Legacy servers (405/204 on OPTIONS) get one reader/writer and no features.
 * - Requests go over keep-alive connections of an undici Pool; up to `maxReaders`/`maxWriters`
 *   of them may be outstanding at once (the caller keeps to that). Ranged GETs of data go over
 *   connections of their own (range-reader.ts: the body lands in the caller's buffer, ~0.4 CPU s
 *   per GiB less than through undici); an answer that reader cannot frame sends reads back to undici.
 * - Ranged GETs only (no multi-range, no HEAD); the length of every answer is checked.
 * - Writes are PUT ?flush=n with the start in Content-Range and a mandatory Content-Length,
 *   zeroing is PATCH {"op":"zero"} with JSON integers, and flush() sends one PATCH flush (gotchas 15, 16).
 * - A 403 means the ticket expired or was cancelled: `ImageioError.ticketGone` is true and the
 *   caller must ask the engine for a new transfer; it is never retried here (gotcha 14).
 * - The ticket is a capability: errors name the URL with the ticket replaced by <ticket>.
 */
import {Pool} from 'undici';
import {ExitCode, UserError} from '../../util/errors.js';
import {parseExtents, type ImageioExtent} from './extents.js';
import {deepCode, isCertError, isConnectError, wrongCertName} from './net-errors.js';
import {RangeReader, UnsupportedFramingError} from './range-reader.js';
import {redactTicketUrl} from './redact.js';

export interface ImageioOpenOptions {
  transferUrl?: string;
  proxyUrl?: string;
  /** CA bundle for the hosts' and the engine proxy's certificates. */
  caPem: string;
  /** Upper bound of connections this client opens (default 8). */
  maxConnections?: number;
  timeoutMs?: number;
}

export interface ImageioCapabilities {
  features: Set<string>;
  maxReaders: number;
  maxWriters: number;
}

export class ImageioError extends UserError {
  constructor(message: string, readonly status: number, opts: {hint?: string; cause?: unknown} = {}) {
    super(message, {...opts, exitCode: ExitCode.platformFailed});
    this.name = 'ImageioError';
  }

  /** 403: the ticket no longer exists (expired, cancelled for inactivity, finalized). */
  get ticketGone(): boolean {
    return this.status === 403;
  }
}

/** Largest zero request, as the reference client splits them (§6.5). */
const MAX_ZERO = 128 * 2 ** 20;

export class ImageioClient {
  /** The fast path for ranged GETs (range-reader.ts); undefined once an answer showed it cannot frame this server's replies. */
  private ranges: RangeReader | undefined;

  private constructor(
    private readonly pool: Pool,
    private readonly path: string,
    /** The URL in use, ticket hidden. */
    readonly displayUrl: string,
    readonly via: 'transfer_url' | 'proxy_url',
    readonly caps: ImageioCapabilities,
    private readonly timeoutMs: number,
  ) {}

  static async open(o: ImageioOpenOptions): Promise<ImageioClient> {
    const candidates = ([['transfer_url', o.transferUrl], ['proxy_url', o.proxyUrl]] as const).filter(
      (c): c is readonly ['transfer_url' | 'proxy_url', string] => !!c[1],
    );
    if (candidates.length === 0) throw new Error('imageio: the transfer has neither transfer_url nor proxy_url');
    const failures: string[] = [];
    let lastErr: unknown;
    for (const [via, url] of candidates) {
      const u = new URL(url);
      const timeoutMs = o.timeoutMs ?? 120_000;
      const pool = new Pool(u.origin, {
        connections: o.maxConnections ?? 8,
        connect: {ca: o.caPem, timeout: Math.min(timeoutMs, 10_000)},
        keepAliveTimeout: 30_000,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const client = new ImageioClient(pool, u.pathname, redactTicketUrl(url), via, {features: new Set(), maxReaders: 1, maxWriters: 1}, timeoutMs);
      try {
        await client.options();
        // Its connections open at the first read(), so an upload never opens one.
        client.ranges = new RangeReader({
          origin: u.origin, ca: o.caPem, maxConnections: o.maxConnections ?? 8, timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 10_000),
        });
        return client;
      } catch (err) {
        await pool.destroy().catch(() => undefined);
        // Only "cannot connect" moves on to the proxy; a refusal by the server is final.
        if (!isConnectError(err)) throw err;
        failures.push(`${redactTicketUrl(url)}: ${deepCode(err)}`);
        lastErr = err;
      }
    }
    throw new UserError(`Cannot reach imageio for this transfer (${failures.join('; ')}).`, {
      hint: 'The appliance must reach the hosts on port 54322 or the engine on port 54323 (imageio proxy); open the firewall or route the storage network.',
      exitCode: ExitCode.unreachable,
      cause: lastErr,
    });
  }

  private async options(): Promise<void> {
    const res = await this.call('OPTIONS', this.path);
    if (res.status === 405 || res.status === 204) return; // legacy server: no features, one connection
    if (res.status !== 200) throw await this.error('OPTIONS', res);
    const body = JSON.parse(await res.text()) as {features?: unknown; max_readers?: unknown; max_writers?: unknown};
    this.caps.features = new Set(Array.isArray(body.features) ? body.features.map(String) : []);
    this.caps.maxReaders = Math.max(1, Number(body.max_readers ?? 1) || 1);
    this.caps.maxWriters = Math.max(1, Number(body.max_writers ?? 1) || 1);
  }

  async extents(context: 'zero' | 'dirty', size?: number): Promise<ImageioExtent[]> {
    const res = await this.call('GET', `${this.path}/extents?context=${context}`);
    if (res.status !== 200) throw await this.error(`GET extents?context=${context}`, res);
    try {
      return parseExtents(JSON.parse(await res.text()), context, size);
    } catch (err) {
      throw new ImageioError(`imageio at ${this.displayUrl} answered unusable extents: ${(err as Error).message}`, 200, {cause: err});
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`read of ${length} bytes into a buffer of ${into.length}`);
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.ranges) {
          try {
            return await this.readFast(this.ranges, offset, length, into);
          } catch (err) {
            if (!(err instanceof UnsupportedFramingError)) throw err;
            this.ranges.close();
            this.ranges = undefined;
          }
        }
        const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
        const res = await this.call('GET', this.path, {range: `bytes=${offset}-${offset + length - 1}`});
        if (res.status !== 206 && res.status !== 200) throw await this.error(`GET bytes ${offset}+${length}`, res);
        let pos = 0;
        for await (const chunk of res.body) {
          const c = chunk as Buffer;
          if (pos + c.length > length) {
            res.body.destroy();
            throw this.wrongLength(offset, length, Infinity, res.status);
          }
          c.copy(out, pos);
          pos += c.length;
        }
        if (pos !== length) throw this.wrongLength(offset, length, pos, res.status);
        return out;
      } catch (err) {
        // A keep-alive connection the server closed under us: one retry on a fresh connection.
        if (attempt === 0 && !(err instanceof ImageioError) && ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(deepCode(err) ?? '')) continue;
        throw err;
      }
    }
  }

  /** Where the ranged GETs go: the client's own connections, or undici once those could not frame an answer. */
  get readPath(): 'own connections' | 'undici' {
    return this.ranges ? 'own connections' : 'undici';
  }

  private async readFast(ranges: RangeReader, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const what = `GET bytes ${offset}+${length}`;
    const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let reply;
    try {
      reply = await ranges.get(this.path, offset, length, out);
    } catch (err) {
      if (err instanceof UnsupportedFramingError) throw err;
      if (deepCode(err) === 'ETIMEDOUT') {
        throw new UserError(`imageio at ${this.displayUrl} stopped answering (${what}): ${(err as Error).message}.`, {
          hint: 'The host or its storage is overloaded or the network dropped; see the imageio log on the host (/var/log/ovirt-imageio/daemon.log) and retry.',
          exitCode: ExitCode.unreachable,
          cause: err,
        });
      }
      throw this.transportError(err);
    }
    if (reply.status !== 206 && reply.status !== 200) throw this.errorOf(what, reply.status, reply.text ?? '');
    if (reply.length !== length) throw this.wrongLength(offset, length, reply.length, reply.status);
    if (reply.status === 206 && reply.rangeStart !== undefined && reply.rangeStart !== offset) {
      throw new ImageioError(`imageio at ${this.displayUrl} sent bytes from ${reply.rangeStart} when asked for ${offset}.`, reply.status);
    }
    return out;
  }

  private wrongLength(offset: number, length: number, got: number, status: number): ImageioError {
    return new ImageioError(got > length
      ? `imageio at ${this.displayUrl} sent more than the ${length} bytes asked for at ${offset}.`
      : `imageio at ${this.displayUrl} sent ${got} of ${length} bytes at offset ${offset}.`, status);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const res = await this.call('PUT', `${this.path}?flush=n`, {
      'content-range': `bytes ${offset}-${offset + data.length - 1}/*`,
      'content-type': 'application/octet-stream',
      'content-length': String(data.length),
    }, data);
    if (res.status !== 200) throw await this.error(`PUT bytes ${offset}+${data.length}`, res);
    await res.text();
  }

  async zero(offset: number, length: number): Promise<void> {
    for (let at = offset; at < offset + length; at += MAX_ZERO) {
      const size = Math.min(MAX_ZERO, offset + length - at);
      await this.patch({op: 'zero', offset: at, size, flush: false}, `zero ${at}+${size}`);
    }
  }

  async flush(): Promise<void> {
    await this.patch({op: 'flush'}, 'flush');
  }

  private async patch(msg: object, what: string): Promise<void> {
    const res = await this.call('PATCH', this.path, {'content-type': 'application/json'}, JSON.stringify(msg));
    if (res.status !== 200) throw await this.error(`PATCH ${what}`, res);
    await res.text();
  }

  async close(): Promise<void> {
    this.ranges?.close();
    await this.pool.close().catch(() => this.pool.destroy());
  }

  private async call(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
    try {
      const res = await this.pool.request({method: method as 'GET', path, headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs});
      return {status: res.statusCode, body: res.body, text: () => res.body.text()};
    } catch (err) {
      throw this.transportError(err);
    }
  }

  /** A certificate failure as a UserError; other socket errors as they are (callers retry or classify them). */
  private transportError(err: unknown): unknown {
    const misnamed = wrongCertName(err, 'imageio', this.displayUrl);
    if (misnamed) return misnamed;
    if (isCertError(err)) {
      return new UserError(`The imageio certificate at ${this.displayUrl} is not signed by the stored engine CA.`, {
        hint: 'Hosts use certificates signed by the engine CA; the engine proxy uses the Apache certificate. If the engine uses a third-party certificate, add that CA to the stored bundle.',
        exitCode: ExitCode.untrusted,
        cause: err,
      });
    }
    return err;
  }

  private async error(what: string, res: {status: number; text: () => Promise<string>}): Promise<ImageioError> {
    return this.errorOf(what, res.status, await res.text().catch(() => ''));
  }

  private errorOf(what: string, status: number, body: string): ImageioError {
    const text = body.trim().replace(/No such ticket \S+/, 'No such ticket <ticket>');
    return new ImageioError(`imageio ${what} at ${this.displayUrl} failed (HTTP ${status}): ${text || 'no detail'}`, status, {
      hint: status === 403
        ? 'The transfer ticket expired or was cancelled (inactivity timeout, or the transfer was finalized); a new transfer is needed.'
        : 'See the imageio log on the host (/var/log/ovirt-imageio/daemon.log).',
    });
  }
}
