/**
 * The S3 backend: a repository in a bucket of an S3-compatible object store (AWS S3, MinIO, Ceph
 * RGW, OpenStack Swift's s3api...), every key an object under the repository's prefix.
 *
 * How it keeps the contract (backend.ts):
 *  - atomic: an S3 PUT is visible whole or not at all; objects above MULTIPART_BYTES go up in
 *    parts and appear only when the upload is completed; a crashed upload leaves parts that
 *    sweepLeftovers aborts;
 *  - durable: the server has stored the object when the PUT is answered, so sync() has nothing
 *    left to do;
 *  - putIfAbsent: with `If-None-Match: *` where the server honours it (probed once: the second
 *    of two such PUTs must be refused with 412), else a look-up then a PUT — chunks are
 *    content-addressed, so two writers racing for one key store the same bytes;
 *  - time: S3's Last-Modified is the server's clock, in whole seconds, and cannot be set by a
 *    touch. So every object carries its own time (`x-amz-meta-vmb-mtime`, milliseconds, this
 *    host's clock) written with it, and touch() rewrites it by copying the object onto itself
 *    with new metadata (a server-side copy: no data crosses the network);
 *  - deleteIfOlder and touch of one key are serialised within the process; across processes the
 *    repository's single writer is the lease (below), so GC never races another appliance's
 *    touch;
 *  - locks: a lease object (the owner, a random nonce, an expiry) renewed every LEASE_MS/3 while
 *    held. A lease is taken when absent or dead (expired, or of a process of this host that is
 *    gone): with a conditional PUT where the server has it, else by writing it, waiting
 *    SETTLE_MS and reading it back — whoever reads back its own nonce holds it. A renewal that
 *    finds another nonce stops (the lease expired and was taken over: it is not taken back) and
 *    records the key in `lost`;
 *  - never outside the repository: keys are checked (assertKey) and only ever appended to the
 *    repository's prefix; names in listings that could not be keys are skipped.
 */
import {randomBytes} from 'node:crypto';
import {ExitCode, UserError} from '../../util/errors.js';
import {SELF_LEASE} from '../../util/process-lease.js';
import {corrupt} from '../fsio.js';
import {isAlive, selfOwner} from '../lock.js';
import {assertKey, type ListEntry, type Lock, type LockOptions, type ObjectInfo, type Owner, type PutOptions, type StorageBackend} from './backend.js';
import {s3Url, type S3Location} from '../../util/s3-url.js';
import {S3Client, S3Error, TooLarge, uriEncode, xmlAll, xmlOne, xmlText, type S3Credentials} from './s3-client.js';

export {isS3Url, parseS3Url, s3Url, type S3Location} from '../../util/s3-url.js';

/** Objects larger than this go up as a multipart upload (S3 allows a single PUT up to 5 GiB; parts keep retries small). */
export const MULTIPART_BYTES = 32 << 20;
const PART_BYTES = 16 << 20;
const LEASE_MS = 60_000;
const SETTLE_MS = 300;
const MTIME = 'x-amz-meta-vmb-mtime';
const PROBE = '.vmbackup-probe-';

interface LeaseRecord {
  owner: Owner;
  nonce: string;
  expiresMs: number;
}

/** What the server was found to support (probed on first need). */
export interface S3Capabilities {
  conditionalPut: boolean;
}

/** The StorageBackend calls whose S3 errors are explained (constructor). */
const EXPLAINED = ['get', 'stat', 'list', 'put', 'putIfAbsent', 'append', 'touch', 'delete', 'deleteTree', 'deleteIfOlder', 'rename', 'sync', 'lock', 'objectLock', 'sweepLeftovers'] as const;

export class S3Backend implements StorageBackend {
  readonly location: string;
  readonly client: S3Client;
  /** touch() is a server-side copy of the whole object (backend.ts). */
  readonly expensiveTouch = true;
  private readonly prefix: string;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly held = new Map<string, {nonce: string; released: Promise<void>}>();
  /** Leases this process held and lost (expired and taken over): their holders must not go on as if they held them. */
  readonly lost = new Set<string>();
  private caps: Promise<S3Capabilities> | undefined;

  /** How long a lease lives without renewal (renewed every third of it). */
  private readonly leaseMs: number;

  constructor(
    readonly where: S3Location,
    credentials: S3Credentials,
    opts: {retries?: number; backoffMs?: number; leaseMs?: number} = {},
  ) {
    this.client = new S3Client(where, credentials, opts);
    this.leaseMs = opts.leaseMs ?? LEASE_MS;
    this.prefix = where.prefix;
    this.location = s3Url(where);
    // What the server says in the middle of a backup or copy (refused credentials, a bucket gone,
    // a server giving up) reaches the session as explainS3 words it at open: with what to do.
    // Nothing in this class inspects an S3Error of its own calls, so every entry point is wrapped.
    const self = this as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of EXPLAINED) {
      const fn = self[name]!.bind(this);
      self[name] = (...a: unknown[]) => fn(...a).catch((err: unknown) => Promise.reject(explainS3(err, this.location)));
    }
  }

  describe(key: string): string {
    return `${this.location}/${key}`;
  }

  /** The x-amz-copy-source of an object of this bucket (a server-side copy: touch, rename). */
  private copySource(full: string): string {
    return `/${uriEncode(this.where.bucket)}/${uriEncode(full, true)}`;
  }

  private full(key: string): string {
    assertKey(key);
    return `${this.prefix}${key}`;
  }

  /** Runs `fn` after every earlier call for the same keys (in this process). */
  private serial<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const before = sorted.map((k) => this.queues.get(k) ?? Promise.resolve());
    const run = Promise.all(before.map((p) => p.catch(() => undefined))).then(fn);
    const settled = run.catch(() => undefined);
    for (const k of sorted) this.queues.set(k, settled);
    void settled.then(() => {
      for (const k of sorted) if (this.queues.get(k) === settled) this.queues.delete(k);
    });
    return run;
  }

  async capabilities(): Promise<S3Capabilities> {
    this.caps ??= this.probe().catch((err: unknown) => {
      this.caps = undefined;
      throw err;
    });
    return this.caps;
  }

  /** Whether the server honours If-None-Match: * on PUT (servers differ; some ignore it silently). */
  private async probe(): Promise<S3Capabilities> {
    const key = `${this.prefix}${PROBE}${randomBytes(6).toString('hex')}`;
    try {
      const first = await this.client.request({method: 'PUT', key, headers: {'if-none-match': '*'}, body: [Buffer.from('1')], expect: [412, 501, 400]});
      if (first.status !== 200) return {conditionalPut: false};
      const second = await this.client.request({method: 'PUT', key, headers: {'if-none-match': '*'}, body: [Buffer.from('2')], expect: [412, 501, 400]});
      return {conditionalPut: second.status === 412};
    } finally {
      await this.client.request({method: 'DELETE', key, expect: [404]}).catch(() => undefined);
    }
  }

  private async head(key: string): Promise<{size: number; modifiedMs: number} | undefined> {
    const r = await this.client.request({method: 'HEAD', key: this.full(key), expect: [404]});
    if (r.status === 404) return undefined;
    return {size: Number(r.headers['content-length'] ?? 0), modifiedMs: mtimeOf(r.headers)};
  }

  async get(key: string, opts: {max: number; what: string}): Promise<Buffer | undefined> {
    try {
      const r = await this.client.request({method: 'GET', key: this.full(key), maxBytes: opts.max, expect: [404]});
      return r.status === 404 ? undefined : r.body;
    } catch (err) {
      if (err instanceof TooLarge) throw corrupt(this.describe(key), `the ${opts.what} is ${err.size} bytes, more than the ${opts.max} bytes such a file can have`);
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return this.head(key);
  }

  async list(dir: string): Promise<ListEntry[]> {
    if (dir !== '') assertKey(dir);
    const prefix = dir === '' ? this.prefix : `${this.prefix}${dir}/`;
    const out: ListEntry[] = [];
    for await (const page of this.pages(prefix, '/')) {
      for (const k of page.keys) {
        const name = k.slice(prefix.length);
        if (validName(name) && !name.startsWith(PROBE)) out.push({name, dir: false});
      }
      for (const p of page.prefixes) {
        const name = p.slice(prefix.length, -1);
        if (validName(name)) out.push({name, dir: true});
      }
    }
    return out;
  }

  /** ListObjectsV2 pages under `prefix` (keys outside it, which a hostile server might send, are dropped). */
  private async *pages(prefix: string, delimiter?: string): AsyncGenerator<{keys: string[]; prefixes: string[]}> {
    let token: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const query: Record<string, string> = {'list-type': '2', prefix, 'max-keys': '1000', ...(delimiter ? {delimiter} : {}), ...(token ? {'continuation-token': token} : {})};
      const xml = (await this.client.request({method: 'GET', query, maxBytes: 16 << 20})).body.toString('utf8');
      const keys = xmlAll(xml, 'Contents').map((c) => xmlOne(c, 'Key') ?? '').filter((k) => k.startsWith(prefix) && k.length > prefix.length);
      const prefixes = xmlAll(xml, 'CommonPrefixes').map((c) => xmlOne(c, 'Prefix') ?? '').filter((k) => k.startsWith(prefix) && k.endsWith('/') && k.length > prefix.length + 1);
      yield {keys, prefixes};
      token = xmlOne(xml, 'NextContinuationToken');
      if (xmlOne(xml, 'IsTruncated') !== 'true' || !token) return;
    }
  }

  async put(key: string, parts: Uint8Array[], opts: PutOptions = {}): Promise<void> {
    const full = this.full(key);
    const size = parts.reduce((n, p) => n + p.length, 0);
    await opts.beforeVisible?.();
    if (size > MULTIPART_BYTES) await this.multipart(full, parts, size);
    else await this.client.request({method: 'PUT', key: full, headers: {[MTIME]: String(Date.now())}, body: parts});
  }

  private async multipart(full: string, parts: Uint8Array[], size: number): Promise<void> {
    const init = await this.client.request({method: 'POST', key: full, query: {uploads: ''}, headers: {[MTIME]: String(Date.now())}});
    const uploadId = xmlOne(init.body.toString('utf8'), 'UploadId');
    if (!uploadId) throw new Error(`the S3 server did not start a multipart upload of ${full} (no UploadId)`);
    const whole = Buffer.concat(parts, size);
    try {
      const etags: string[] = [];
      for (let off = 0, n = 1; off < size; off += PART_BYTES, n++) {
        const r = await this.client.request({method: 'PUT', key: full, query: {partNumber: String(n), uploadId}, body: [whole.subarray(off, Math.min(size, off + PART_BYTES))]});
        const etag = r.headers.etag;
        if (typeof etag !== 'string') throw new Error(`the S3 server gave no ETag for part ${n} of ${full}`);
        etags.push(etag);
      }
      const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(e)}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
      const done = await this.client.request({method: 'POST', key: full, query: {uploadId}, body: [Buffer.from(xml)]});
      // S3 may answer 200 and still report an error in the body.
      const text = done.body.toString('utf8');
      if (/<Error>/.test(text)) throw new S3Error(200, xmlOne(text, 'Code') ?? 'InternalError', `completing the upload of ${full}: ${xmlOne(text, 'Message') ?? text.slice(0, 200)}`);
    } catch (err) {
      await this.client.request({method: 'DELETE', key: full, query: {uploadId}, expect: [404]}).catch(() => undefined);
      throw err;
    }
  }

  async putIfAbsent(key: string, parts: Uint8Array[], opts: {seenAbsent?: boolean} = {}): Promise<boolean> {
    const full = this.full(key);
    const {conditionalPut} = await this.capabilities();
    return this.serial([key], async () => {
      if (conditionalPut) {
        const r = await this.client.request({method: 'PUT', key: full, headers: {'if-none-match': '*', [MTIME]: String(Date.now())}, body: parts, expect: [412]});
        return r.status !== 412;
      }
      // Without conditional PUT: a look-up first, unless the caller has just made it (a chunk).
      if (!opts.seenAbsent && (await this.head(key))) return false;
      await this.client.request({method: 'PUT', key: full, headers: {[MTIME]: String(Date.now())}, body: parts});
      return true;
    });
  }

  async append(key: string, text: string): Promise<void> {
    this.full(key);
    await this.serial([key], async () => {
      const old = (await this.get(key, {max: 64 << 20, what: 'journal'})) ?? Buffer.alloc(0);
      await this.client.request({method: 'PUT', key: this.full(key), headers: {[MTIME]: String(Date.now())}, body: [old, Buffer.from(text)]});
    });
  }

  async touch(key: string): Promise<boolean> {
    const full = this.full(key);
    return this.serial([key], async () => {
      const r = await this.client.request({
        method: 'PUT',
        key: full,
        headers: {'x-amz-copy-source': this.copySource(full), 'x-amz-metadata-directive': 'REPLACE', [MTIME]: String(Date.now())},
        expect: [404],
      });
      return r.status !== 404;
    });
  }

  async delete(key: string): Promise<boolean> {
    const full = this.full(key);
    return this.serial([key], async () => {
      if (!(await this.head(key))) return false;
      await this.client.request({method: 'DELETE', key: full, expect: [404]});
      return true;
    });
  }

  async deleteTree(dir: string): Promise<void> {
    assertKey(dir);
    const prefix = `${this.prefix}${dir}/`;
    for await (const page of this.pages(prefix)) {
      await parallel(page.keys, 16, (k) => this.client.request({method: 'DELETE', key: k, expect: [404]}));
    }
  }

  async deleteIfOlder(key: string, cutoffMs: number): Promise<{status: 'deleted' | 'kept'; size: number} | {status: 'absent'}> {
    const full = this.full(key);
    return this.serial([key], async () => {
      const info = await this.head(key);
      if (!info) return {status: 'absent'} as const;
      if (info.modifiedMs >= cutoffMs) return {status: 'kept', size: info.size} as const;
      await this.client.request({method: 'DELETE', key: full, expect: [404]});
      return {status: 'deleted', size: info.size} as const;
    });
  }

  async rename(from: string, to: string): Promise<boolean> {
    const [src, dst] = [this.full(from), this.full(to)];
    return this.serial([from, to], async () => {
      if (await this.head(to)) throw new Error(`cannot rename ${from}: ${to} exists`);
      if (!(await this.head(from))) return false;
      const r = await this.client.request({method: 'PUT', key: dst, headers: {'x-amz-copy-source': this.copySource(src), 'x-amz-metadata-directive': 'COPY'}, expect: [404]});
      if (r.status === 404) return false;
      await this.client.request({method: 'DELETE', key: src, expect: [404]});
      return true;
    });
  }

  async sync(): Promise<void> {
    // An answered PUT or DELETE is stored: nothing is pending here.
  }

  private async readLease(key: string): Promise<LeaseRecord | undefined> {
    const raw = await this.get(key, {max: 4096, what: 'lock'});
    if (!raw) return undefined;
    try {
      const r = JSON.parse(raw.toString('utf8')) as Partial<LeaseRecord>;
      if (r.owner && typeof r.owner.pid === 'number' && typeof r.nonce === 'string' && typeof r.expiresMs === 'number') return r as LeaseRecord;
    } catch {
      /* damaged: treated as dead below */
    }
    return {owner: {pid: 0, pidStart: '', host: '?', since: 0, purpose: 'unreadable lock'}, nonce: '', expiresMs: 0};
  }

  private leaseDead(r: LeaseRecord): boolean {
    return r.expiresMs < Date.now() || (r.owner.host === SELF_LEASE.host && !isAlive(r.owner));
  }

  async lock(key: string, opts: LockOptions): Promise<Lock> {
    const full = this.full(key);
    const deadline = Date.now() + opts.timeoutMs;
    const refuse = (o: Owner) =>
      new UserError(`The ${opts.what} is locked by process ${o.pid} on ${o.host} (${o.purpose}) since ${new Date(o.since).toISOString()} (${this.describe(key)}).`, {
        hint: opts.hint,
        exitCode: ExitCode.locked,
      });
    for (;;) {
      if (opts.signal?.aborted) throw new UserError(`Stopped while waiting for the ${opts.what}.`, {hint: 'Nothing was written.', exitCode: ExitCode.cancelled});
      const mine: LeaseRecord = {owner: selfOwner(opts.purpose), nonce: randomBytes(12).toString('hex'), expiresMs: Date.now() + this.leaseMs};
      const got = await this.serial([key], async () => {
        if (this.held.has(key)) return (await this.readLease(key))?.owner ?? mine.owner;
        const rec = await this.readLease(key);
        if (rec && !this.leaseDead(rec)) return rec.owner;
        const body = [Buffer.from(JSON.stringify(mine))];
        if ((await this.capabilities()).conditionalPut) {
          if (rec) await this.client.request({method: 'DELETE', key: full, expect: [404]});
          const r = await this.client.request({method: 'PUT', key: full, headers: {'if-none-match': '*', [MTIME]: String(Date.now())}, body, expect: [412]});
          if (r.status === 412) return (await this.readLease(key))?.owner ?? mine.owner;
        } else {
          await this.client.request({method: 'PUT', key: full, headers: {[MTIME]: String(Date.now())}, body});
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          const back = await this.readLease(key);
          if (back?.nonce !== mine.nonce) return back?.owner ?? mine.owner;
        }
        return true as const;
      });
      if (got === true) return this.holdLease(key, full, mine);
      const left = deadline - Date.now();
      if (left <= 0) throw refuse(got);
      const local = this.held.get(key);
      await Promise.race([local?.released ?? new Promise((r) => setTimeout(r, Math.min(left, 250))), new Promise((r) => setTimeout(r, Math.min(left, local ? 50 : 250)))]);
    }
  }

  private holdLease(key: string, full: string, mine: LeaseRecord): Lock {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const entry = {nonce: mine.nonce, released};
    this.held.set(key, entry);
    const renew = setInterval(() => {
      void this.serial([key], async () => {
        if (this.held.get(key) !== entry) return;
        // Renewed only while it is still ours: a lease that expired (the network was away for a
        // minute) and was taken over is not taken back; the holder has lost it.
        const now = await this.readLease(key);
        if (now?.nonce !== mine.nonce) {
          clearInterval(renew);
          this.lost.add(full);
          return;
        }
        mine.expiresMs = Date.now() + this.leaseMs;
        await this.client.request({method: 'PUT', key: full, headers: {[MTIME]: String(Date.now())}, body: [Buffer.from(JSON.stringify(mine))]});
      }).catch(() => undefined);
    }, this.leaseMs / 3);
    renew.unref();
    let done = false;
    return {
      path: this.describe(key),
      held: () => !this.lost.has(full),
      release: async () => {
        if (done) return;
        done = true;
        clearInterval(renew);
        await this.serial([key], async () => {
          if (this.held.get(key) === entry) this.held.delete(key);
          const rec = await this.readLease(key).catch(() => undefined);
          if (rec?.nonce === mine.nonce) await this.client.request({method: 'DELETE', key: full, expect: [404]});
        }).finally(release);
      },
    };
  }

  /**
   * Probes the bucket's Object Lock configuration (GET ?object-lock). A server without the
   * feature answers an error, or (Swift's s3api) ignores the parameter and lists the bucket:
   * only an ObjectLockConfiguration with ObjectLockEnabled = Enabled counts.
   */
  async objectLock(): Promise<{enabled: boolean; detail: string}> {
    const r = await this.client.request({method: 'GET', query: {'object-lock': ''}, expect: [400, 403, 404, 405, 501], maxBytes: 1 << 20});
    const xml = r.body.toString('utf8');
    if (r.status === 200 && /<ObjectLockConfiguration[\s>]/.test(xml) && xmlOne(xml, 'ObjectLockEnabled') === 'Enabled') {
      return {enabled: true, detail: `the bucket ${this.where.bucket} has S3 Object Lock enabled (its default retention applies to every object written)`};
    }
    const why = r.status === 200 ? 'it does not answer the Object Lock request' : `it answered ${xmlOne(xml, 'Code') ?? `HTTP ${r.status}`}`;
    return {enabled: false, detail: `the S3 server does not offer Object Lock for the bucket ${this.where.bucket} (probed: ${why})`};
  }

  ownerAlive(owner: Owner): boolean {
    return isAlive(owner);
  }

  /** Aborts multipart uploads under `dir` started before `olderThanMs` (a crashed put's parts). */
  async sweepLeftovers(dir: string, olderThanMs: number): Promise<{removed: number; recovered: number}> {
    if (dir !== '') assertKey(dir);
    const prefix = dir === '' ? this.prefix : `${this.prefix}${dir}/`;
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadMarker: string | undefined;
    for (let page = 0; page < 100_000; page++) {
      const query: Record<string, string> = {uploads: '', prefix, ...(keyMarker ? {'key-marker': keyMarker} : {}), ...(uploadMarker ? {'upload-id-marker': uploadMarker} : {})};
      const xml = (await this.client.request({method: 'GET', query, maxBytes: 16 << 20})).body.toString('utf8');
      for (const u of xmlAll(xml, 'Upload')) {
        const key = xmlOne(u, 'Key') ?? '';
        const id = xmlOne(u, 'UploadId');
        const initiated = Date.parse(xmlOne(u, 'Initiated') ?? '');
        if (!id || !key.startsWith(prefix) || !(initiated < olderThanMs)) continue;
        await this.client.request({method: 'DELETE', key, query: {uploadId: id}, expect: [404]});
        removed++;
      }
      if (xmlOne(xml, 'IsTruncated') !== 'true') break;
      keyMarker = xmlOne(xml, 'NextKeyMarker');
      uploadMarker = xmlOne(xml, 'NextUploadIdMarker');
      if (!keyMarker) break;
    }
    return {removed, recovered: 0};
  }

  async space(): Promise<undefined> {
    return undefined;
  }
}

/** The object's own time (x-amz-meta-vmb-mtime), else the server's Last-Modified. */
function mtimeOf(h: Record<string, string | string[] | undefined>): number {
  const own = Number(h[MTIME]);
  if (Number.isFinite(own) && own > 0) return own;
  const lm = Date.parse(String(h['last-modified'] ?? ''));
  return Number.isFinite(lm) ? lm : 0;
}

function validName(n: string): boolean {
  return n.length > 0 && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

async function parallel<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({length: Math.min(n, items.length)}, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Makes sure the bucket exists (creates it when the server allows; an existing one of ours is fine). */
export async function ensureBucket(backend: S3Backend): Promise<void> {
  const c = backend.client;
  const head = await c.request({method: 'HEAD', expect: [404, 403, 301]});
  if (head.status === 200) return;
  if (head.status === 403) {
    throw new UserError(`The S3 server ${c.endpoint} refused the credentials for the bucket ${backend.where.bucket} (access denied).`, {
      hint: 'Check the access key and secret in the credentials file, and that this key may use the bucket.',
      exitCode: ExitCode.authFailed,
    });
  }
  if (head.status === 301) throw new UserError(`The bucket ${backend.where.bucket} is in another region of ${c.endpoint}.`, {hint: 'Set region = ... in the credentials file.', exitCode: ExitCode.invalidInput});
  await c.request({method: 'PUT', expect: [409]});
}

/** Turns an S3 error the user can act on into a message that says what to do. */
export function explainS3(err: unknown, where: string): unknown {
  if (!(err instanceof S3Error)) return err;
  if (err.code === 'InvalidAccessKeyId' || err.code === 'SignatureDoesNotMatch' || err.code === 'AccessDenied' || err.status === 403) {
    return new UserError(`The S3 server refused the credentials for ${where}: ${err.code}.`, {
      hint: 'Check the access key and secret in the credentials file (and the region).',
      exitCode: ExitCode.authFailed,
      cause: err,
    });
  }
  if (err.code === 'NoSuchBucket') return new UserError(`The bucket of ${where} does not exist.`, {hint: 'Create the repository first (vmbackup repo create).', exitCode: ExitCode.notARepository, cause: err});
  return new UserError(`The S3 server failed for ${where}: ${xmlText(err.message)}.`, {hint: 'Try again; if it persists, check the server.', exitCode: ExitCode.platformFailed, cause: err});
}
