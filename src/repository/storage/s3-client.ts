/**
 * A small S3 client: AWS Signature Version 4 over node:http / node:https, and only the calls the
 * S3 storage backend (s3.ts) makes — GET, HEAD, PUT (also as a server-side copy), DELETE,
 * ListObjectsV2, multipart upload.
 *
 * Why not @aws-sdk/client-s3: it is some 300 modules and 10 MB of dependencies for eleven calls,
 * and its retries, checksums and endpoint rules change between releases; what the backend needs
 * of S3 fits in this file, and each behaviour it relies on is tested against a real S3 server
 * (OpenStack Swift's s3api, test/setup.d/50-swift.sh). The signing follows AWS's "Signature
 * Version 4 signing process" (canonical request, string to sign, HMAC chain); the payload hash is
 * always sent (x-amz-content-sha256), which Swift's s3api requires.
 *
 * Behaviour:
 *  - path-style addressing (https://host/bucket/key): works with every S3-compatible server and
 *    needs no wildcard DNS or certificate;
 *  - TLS certificates verified (the system's CAs, or the `caFile` stored with the credentials);
 *  - retries with exponential backoff and jitter on a dropped connection, 5xx, 429 and S3's
 *    SlowDown / RequestTimeout / InternalError, at most `retries` times; every call the backend
 *    makes is idempotent, so repeating one is safe;
 *  - a reply's body is bounded (`maxBytes`): a hostile server does not choose what is allocated;
 *  - the secret key never leaves this object: it signs, it is not sent, logged or put in errors.
 */
import {createHash, createHmac} from 'node:crypto';
import {readFileSync} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import {ExitCode, UserError} from '../../util/errors.js';
import type {S3Location} from '../../util/s3-url.js';

export type {S3Location};

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** The signing region; most S3-compatible servers accept "us-east-1". */
  region: string;
  /** PEM file of the CA that signed the server's certificate, when not a public one. */
  caFile?: string;
}

export interface S3Request {
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST';
  /** The object key (without the bucket); undefined for the bucket itself. */
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array[];
  /** The largest body accepted in the reply (default 1 MiB: listings, errors). */
  maxBytes?: number;
  /** Statuses that are answers, not failures (404 for a lookup, 412 for a conditional put). */
  expect?: number[];
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** An S3 error reply: status, S3's code and message (from the XML body). */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'S3Error';
  }
}

const RETRYABLE_CODES = new Set(['SlowDown', 'RequestTimeout', 'InternalError', 'ServiceUnavailable', 'Throttling', 'ThrottlingException', 'RequestTimeTooSkewed']);
const RETRYABLE_NET = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);

/** RFC 3986 unreserved characters stay, everything else is %XX (what SigV4 canonicalises to). */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const sha256 = (data: Uint8Array[] | string) => {
  const h = createHash('sha256');
  if (typeof data === 'string') h.update(data);
  else for (const d of data) h.update(d);
  return h.digest('hex');
};
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** The SigV4 Authorization header value for a request (exported for its test against AWS's published example). */
export function signV4(opts: {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  payloadHash: string;
  credentials: Pick<S3Credentials, 'accessKeyId' | 'secretAccessKey' | 'region'>;
  amzDate: string;
  service?: string;
}): string {
  const service = opts.service ?? 's3';
  const date = opts.amzDate.slice(0, 8);
  const names = Object.keys(opts.headers).map((h) => h.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(opts.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names.map((n) => `${n}:${String(lower[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalQuery = Object.keys(opts.query)
    .map((k) => [uriEncode(k), uriEncode(opts.query[k]!)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [opts.method, opts.path, canonicalQuery, canonicalHeaders, signedHeaders, opts.payloadHash].join('\n');
  const scope = `${date}/${opts.credentials.region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', opts.amzDate, scope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${opts.credentials.secretAccessKey}`, date);
  const kSigning = hmac(hmac(hmac(kDate, opts.credentials.region), service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${opts.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

/** Decodes the five XML entities and numeric references (S3 replies are plain XML). */
export function xmlText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    const l = e.toLowerCase();
    if (l === 'amp') return '&';
    if (l === 'lt') return '<';
    if (l === 'gt') return '>';
    if (l === 'quot') return '"';
    if (l === 'apos') return "'";
    const code = l.startsWith('#x') ? parseInt(l.slice(2), 16) : parseInt(l.slice(1), 10);
    return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
}

/** Every `<tag>…</tag>` directly in `xml` (no attributes in S3's replies), decoded. */
export function xmlAll(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[1]!);
  return out;
}

export function xmlOne(xml: string, tag: string): string | undefined {
  const v = xmlAll(xml, tag)[0];
  return v === undefined ? undefined : xmlText(v);
}

export class S3Client {
  private readonly agent: http.Agent;
  private readonly ca: Buffer | undefined;
  /** Requests sent (retries included), for the backend's and the benchmarks' figures. */
  requests = 0;
  /** Bytes of request bodies sent. */
  sentBytes = 0;
  /** Server-side copies (touch, rename): the requests an object store bills like a PUT. */
  copies = 0;

  constructor(
    readonly location: S3Location,
    private readonly credentials: S3Credentials,
    private readonly opts: {retries?: number; backoffMs?: number; timeoutMs?: number} = {},
  ) {
    this.ca = credentials.caFile ? readFileSync(credentials.caFile) : undefined;
    this.agent = location.protocol === 'https:' ? new https.Agent({keepAlive: true, maxSockets: 32, ...(this.ca ? {ca: this.ca} : {})}) : new http.Agent({keepAlive: true, maxSockets: 32});
  }

  /** Where the bucket is, for messages: never the credentials. */
  get endpoint(): string {
    const l = this.location;
    return `${l.protocol}//${l.host}:${l.port}/${l.bucket}`;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request, retried on what S3 calls transient; a non-answer status throws S3Error. */
  async request(r: S3Request): Promise<S3Response> {
    const retries = this.opts.retries ?? 5;
    const backoff = this.opts.backoffMs ?? 200;
    for (let attempt = 0; ; attempt++) {
      let res: S3Response;
      try {
        res = await this.once(r);
      } catch (err) {
        if (err instanceof TooLarge) throw err;
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (attempt < retries && (RETRYABLE_NET.has(code) || (err as Error).message === 'socket hang up' || code === 'ETIMEDOUT_S3')) {
          await sleep(jitter(backoff * 2 ** attempt));
          continue;
        }
        if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/i.test(code)) {
          throw new UserError(`The S3 server ${this.endpoint} presented a certificate this appliance does not trust: ${(err as Error).message}.`, {
            hint: 'If the server uses a private CA, give that CA\'s certificate (PEM) as ca_file in the credentials (caFile in the API); otherwise check that the address names the server its certificate was made for.',
            exitCode: ExitCode.platformFailed,
            cause: err,
          });
        }
        throw new UserError(`The S3 server ${this.endpoint} cannot be reached: ${(err as Error).message}.`, {
          hint: 'Check the address and port, that the server runs, and the network (firewall, proxy).',
          exitCode: ExitCode.platformFailed,
          cause: err,
        });
      }
      if ((r.expect ?? []).includes(res.status) || (res.status >= 200 && res.status < 300)) return res;
      const text = res.body.toString('utf8');
      const code = xmlOne(text, 'Code') ?? `HTTP ${res.status}`;
      const message = xmlOne(text, 'Message') ?? (res.status === 404 ? 'not found' : `HTTP ${res.status}`);
      const requestId = xmlOne(text, 'RequestId') ?? firstHeader(res.headers['x-amz-request-id']);
      if (attempt < retries && (res.status >= 500 || res.status === 429 || RETRYABLE_CODES.has(code))) {
        const after = Number(firstHeader(res.headers['retry-after']));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 30_000) : jitter(backoff * 2 ** attempt));
        continue;
      }
      throw new S3Error(res.status, code, `${r.method} ${r.key ?? '(bucket)'}: ${code}: ${message}`, requestId);
    }
  }

  private once(r: S3Request): Promise<S3Response> {
    const l = this.location;
    const path = `/${uriEncode(l.bucket)}${r.key !== undefined ? `/${uriEncode(r.key, true)}` : ''}`;
    const query = r.query ?? {};
    const body = r.body ?? [];
    const length = body.reduce((n, b) => n + b.length, 0);
    const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const payloadHash = sha256(body);
    const headers: Record<string, string> = {
      host: l.port === (l.protocol === 'https:' ? 443 : 80) ? l.host : `${l.host}:${l.port}`,
      'x-amz-date': amzDate,
      'x-amz-content-sha256': payloadHash,
      ...(r.headers ?? {}),
    };
    if (r.method === 'PUT' || r.method === 'POST' || length > 0) headers['content-length'] = String(length);
    headers.authorization = signV4({method: r.method, path, query, headers, payloadHash, credentials: this.credentials, amzDate});
    const qs = Object.entries(query)
      .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
      .join('&');
    const max = r.maxBytes ?? 1 << 20;
    const mod = l.protocol === 'https:' ? https : http;
    this.requests++;
    this.sentBytes += length;
    if (headers['x-amz-copy-source'] !== undefined) this.copies++;
    return new Promise<S3Response>((resolve, reject) => {
      const req = mod.request(
        {host: l.host, port: l.port, method: r.method, path: qs ? `${path}?${qs}` : path, headers, agent: this.agent, ...(this.ca ? {ca: this.ca} : {}), servername: isIp(l.host) ? undefined : l.host},
        (res) => {
          const status = res.statusCode ?? 0;
          const declared = Number(res.headers['content-length']);
          const answer = status >= 200 && status < 300;
          // An error reply is read up to 64 KiB for its message; an answer up to `max`.
          const limit = answer ? max : 64 * 1024;
          if (r.method !== 'HEAD' && Number.isFinite(declared) && declared > limit) {
            res.destroy();
            reject(new TooLarge(declared, limit));
            return;
          }
          const parts: Buffer[] = [];
          let got = 0;
          res.on('data', (d: Buffer) => {
            got += d.length;
            if (got > limit) {
              res.destroy();
              reject(new TooLarge(got, limit));
              return;
            }
            parts.push(d);
          });
          res.on('error', reject);
          res.on('end', () => resolve({status, headers: res.headers, body: Buffer.concat(parts)}));
        },
      );
      req.setTimeout(this.opts.timeoutMs ?? 120_000, () => {
        const e = new Error(`no answer within ${Math.round((this.opts.timeoutMs ?? 120_000) / 1000)} s`) as NodeJS.ErrnoException;
        e.code = 'ETIMEDOUT_S3';
        req.destroy(e);
      });
      req.on('error', reject);
      for (const b of body) req.write(b);
      req.end();
    });
  }
}

/** A reply larger than the caller allows. */
export class TooLarge extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the reply is ${size} bytes, more than the ${limit} allowed`);
    this.name = 'TooLarge';
  }
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function jitter(ms: number): number {
  return Math.min(ms, 20_000) * (0.5 + Math.random() / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * S3 credentials as a file holds them (`vmbackup … --s3-credentials FILE`): `name = value` lines,
 * `#` comments; access_key_id and secret_access_key (the AWS names with an aws_ prefix are taken
 * too), region (default us-east-1), ca_file (a PEM CA for a server with a private certificate).
 * `source` names the file in errors; a value is never repeated in one.
 */
export function parseS3Credentials(text: string, source: string): S3Credentials {
  const values = new Map<string, string>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || /^\[.*\]$/.test(line)) continue;
    const m = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UserError(`Line ${i + 1} of ${source} is not "name = value".`, {exitCode: ExitCode.invalidInput});
    values.set(m[1]!.toLowerCase().replace(/^aws_/, ''), m[2]!.trim());
  }
  const accessKeyId = values.get('access_key_id') ?? '';
  const secretAccessKey = values.get('secret_access_key') ?? '';
  const region = values.get('region') || 'us-east-1';
  const caFile = values.get('ca_file');
  const missing = [accessKeyId ? '' : 'access_key_id', secretAccessKey ? '' : 'secret_access_key'].filter(Boolean);
  if (missing.length > 0) {
    throw new UserError(`${source} lacks ${missing.join(' and ')}.`, {hint: 'Write them as lines "access_key_id = …" and "secret_access_key = …".', exitCode: ExitCode.invalidInput});
  }
  if (!/^[\x21-\x7e]{1,256}$/.test(accessKeyId)) throw new UserError(`The access_key_id in ${source} is not a key id (printable, no spaces).`, {exitCode: ExitCode.invalidInput});
  if (!/^[\x21-\x7e]{1,256}$/.test(secretAccessKey)) throw new UserError(`The secret_access_key in ${source} is not a secret key (printable, no spaces).`, {exitCode: ExitCode.invalidInput});
  if (!/^[a-z0-9-]{1,64}$/.test(region)) throw new UserError(`The region in ${source} is not a region name (such as us-east-1).`, {exitCode: ExitCode.invalidInput});
  if (caFile !== undefined && !caFile.startsWith('/')) throw new UserError(`The ca_file in ${source} must be an absolute path.`, {exitCode: ExitCode.invalidInput});
  return {accessKeyId, secretAccessKey, region, ...(caFile ? {caFile} : {})};
}
