/**
 * What only the S3 backend has, against the test bed's real S3 server (OpenStack Swift with
 * s3api, test/setup.d/50-swift.sh): the signer checked against AWS's published example, the
 * conditional-PUT probe checked against what the server then does, multipart uploads and the
 * sweep of an interrupted one, retries with backoff on 5xx / SlowDown / dropped connections (a
 * small fault-injecting proxy in front of the real server), refused credentials named without
 * the secret, a hostile server's listing, and leases of another host.
 */
import {randomBytes} from 'node:crypto';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import {createRepositoryOn} from '../../src/repository/index.js';
import {S3Backend, explainS3, parseS3Url, s3Url} from '../../src/repository/storage/s3.js';
import {S3Client, S3Error, signV4} from '../../src/repository/storage/s3-client.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {emptySwiftPrefix, SWIFT_BUCKET, SWIFT_CA, SWIFT_CREDENTIALS, SWIFT_TLS_ENDPOINT, swiftBackend} from '../lib/swift.js';

describe('the SigV4 signer', () => {
  it('signs AWS\'s published "GET Object" example to its published signature', () => {
    // docs.aws.amazon.com, "Signature Calculations for the Authorization Header: Transferring
    // Payload in a Single Chunk", example "GET Object".
    const auth = signV4({
      method: 'GET',
      path: '/test.txt',
      query: {},
      headers: {host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'x-amz-date': '20130524T000000Z'},
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      credentials: {accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region: 'us-east-1'},
      amzDate: '20130524T000000Z',
    });
    expect(auth).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });
});

describe('S3 repository addresses', () => {
  it('parses s3:// (HTTPS) and s3+http://, and refuses what is not a bucket or a safe prefix', () => {
    expect(parseS3Url('s3://s3.example.com/backups/site-a')).toEqual({protocol: 'https:', host: 's3.example.com', port: 443, bucket: 'backups', prefix: 'site-a/'});
    expect(parseS3Url('s3+http://127.0.0.1:8380/b-1')).toEqual({protocol: 'http:', host: '127.0.0.1', port: 8380, bucket: 'b-1', prefix: ''});
    expect(s3Url(parseS3Url('s3+http://127.0.0.1:8380/b-1/x/y/')!)).toBe('s3+http://127.0.0.1:8380/b-1/x/y');
    expect(parseS3Url('/srv/repo')).toBeUndefined();
    for (const bad of ['s3://h/Bucket', 's3://h/b', 's3://h/bucket/../x', 's3://h/bucket/a//b/c%2f', 's3://user:pw@h/bucket']) {
      expect(() => parseS3Url(bad), bad).toThrow(UserError);
    }
  });
});

describe('the S3 backend against the real server', () => {
  let s: S3Backend;
  beforeAll(async () => {
    s = await swiftBackend('s3-backend');
  });
  afterAll(async () => {
    await emptySwiftPrefix(s);
    s.client.close();
  });

  it('probes conditional PUT, and the server then behaves as the probe said', async () => {
    const caps = await s.capabilities();
    const key = `${s.where.prefix}probe-check`;
    await s.client.request({method: 'PUT', key, body: [Buffer.from('a')]});
    const again = await s.client.request({method: 'PUT', key, headers: {'if-none-match': '*'}, body: [Buffer.from('b')], expect: [412, 501, 400]});
    expect(again.status === 412).toBe(caps.conditionalPut);
    // Whatever the server does, putIfAbsent never replaces.
    expect(await s.putIfAbsent('pia', [Buffer.from('one')])).toBe(true);
    expect(await s.putIfAbsent('pia', [Buffer.from('two')])).toBe(false);
    expect((await s.get('pia', {max: 100, what: 'x'}))!.toString()).toBe('one');
    // The probe's objects are not left behind (nor listed).
    expect((await s.list('')).map((e) => e.name)).not.toContain(expect.stringMatching(/^\.vmbackup-probe-/));
  });

  it('puts a large object as a multipart upload, reads it back whole, and sweeps an interrupted upload', async () => {
    const big = randomBytes(40 << 20);
    const before = s.client.requests;
    await s.put('points/big/disk-0.idx', [big.subarray(0, 1000), big.subarray(1000)]);
    // Initiate + 3 parts of 16 MiB + complete.
    expect(s.client.requests - before).toBe(5);
    expect((await s.stat('points/big/disk-0.idx'))!.size).toBe(big.length);
    expect((await s.get('points/big/disk-0.idx', {max: 64 << 20, what: 'index'}))!.equals(big)).toBe(true);

    // An upload a crash interrupted: its parts are not an object, and the sweep removes them.
    const key = `${s.where.prefix}points/crashed/disk-0.idx`;
    const init = await s.client.request({method: 'POST', key, query: {uploads: ''}});
    const uploadId = /<UploadId>([^<]+)</.exec(init.body.toString())![1]!;
    await s.client.request({method: 'PUT', key, query: {partNumber: '1', uploadId}, body: [randomBytes(1024)]});
    expect(await s.stat('points/crashed/disk-0.idx')).toBeUndefined();
    expect(await s.sweepLeftovers('points/crashed', Date.now() - 3_600_000)).toEqual({removed: 0, recovered: 0}); // too young
    expect(await s.sweepLeftovers('points/crashed', Date.now() + 60_000)).toEqual({removed: 1, recovered: 0});
    const left = await s.client.request({method: 'GET', query: {uploads: '', prefix: key}});
    expect(left.body.toString()).not.toContain(uploadId);
  });

  it('a lease of a live process on another host holds the lock; an expired one is taken over', async () => {
    const opts = {purpose: 'gc', timeoutMs: 300, what: 'garbage collection', hint: 'wait'};
    const other = {owner: {pid: 4242, pidStart: '1', host: 'other-appliance', since: Date.now(), purpose: 'backup of VM x'}, nonce: 'n1', expiresMs: Date.now() + 60_000};
    await s.put('locks/lease.lock', [Buffer.from(JSON.stringify(other))]);
    const err = await s.lock('locks/lease.lock', opts).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(ExitCode.locked);
    expect((err as Error).message).toMatch(/locked by process 4242 on other-appliance \(backup of VM x\)/);
    await s.put('locks/lease.lock', [Buffer.from(JSON.stringify({...other, expiresMs: Date.now() - 1000}))]);
    const lock = await s.lock('locks/lease.lock', opts);
    expect(JSON.parse((await s.get('locks/lease.lock', {max: 4096, what: 'lock'}))!.toString()).owner.pid).toBe(process.pid);
    await lock.release();
    expect(await s.stat('locks/lease.lock')).toBeUndefined();
  });
});

describe('an incremental on S3 (touches are server-side copies there)', () => {
  it('holds its base instead of touching its chunks: no copy for the unchanged chunks, the base cannot be forgotten meanwhile, a missing base chunk is read again', async () => {
    const s = await swiftBackend('s3-incremental');
    try {
      const CS = 64 * 1024;
      const repo = await createRepositoryOn(s, {chunkSize: CS});
      const data = randomBytes(16 * CS);
      const w1 = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'vm 1', platform: 'libvirt'});
      const d1 = await w1.addDisk({key: 'vda', name: 'vda.raw', size: data.length});
      await d1.put(0, data);
      await d1.finish();
      const full = (await w1.commit()).id;
      // One chunk of the base disappears (as a quarantine by verify would make it): the third, not
      // the sixth that changes below (a victim picked from a listing was that one 1 time in 16).
      const hex = (await repo.diskChunkIds(full, 'vda')).subarray(2 * 32, 3 * 32).toString('hex');
      await s.delete(`chunks/${hex.slice(0, 2)}/${hex}`);

      const copiesBefore = s.client.copies;
      const w2 = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'vm 1', platform: 'libvirt', base: full});
      const d2 = await w2.addDisk({key: 'vda', name: 'vda.raw', size: data.length});
      const missing = await d2.missingBaseRanges();
      expect(missing).toEqual([{offset: 2 * CS, length: CS}]);
      // The base is held: forgetting it now is refused.
      await expect(repo.forget(full)).rejects.toThrow(/held|in use|being/i);
      const next = Buffer.from(data);
      randomBytes(CS).copy(next, 5 * CS);
      // What a copy or an active full does: every chunk put again, the missing one included.
      await d2.put(0, next);
      const stats = await d2.finish();
      const inc = (await w2.commit()).id;
      expect(s.client.copies - copiesBefore).toBe(0);
      // The changed chunk and the one that was missing are stored; the rest is the base's.
      expect(stats.newChunks).toBe(2);
      expect(await repo.holders(full)).toEqual([]);
      const r = await repo.openRestorePoint(inc);
      expect((await (await r.openDisk('vda')).read(0, next.length)).equals(next)).toBe(true);
    } finally {
      await emptySwiftPrefix(s);
      s.client.close();
    }
  });
});

describe('the S3 backend over TLS (the test bed\'s proxy with a certificate of its own CA)', () => {
  it('verifies the certificate: with the CA given it works; without it a clear refusal that says what to do', async () => {
    const where = parseS3Url(`${SWIFT_TLS_ENDPOINT}/${SWIFT_BUCKET}/tls-${process.pid}-${randomBytes(4).toString('hex')}`)!;
    const trusted = new S3Backend(where, {...SWIFT_CREDENTIALS, caFile: SWIFT_CA});
    try {
      await trusted.put('points/p/manifest.json', [Buffer.from('{}')]);
      expect((await trusted.get('points/p/manifest.json', {max: 100, what: 'manifest'}))!.toString()).toBe('{}');
      const untrusted = new S3Backend(where, SWIFT_CREDENTIALS, {retries: 0});
      const err = await untrusted.stat('points/p/manifest.json').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/presented a certificate this appliance does not trust/);
      expect((err as UserError).hint).toContain('ca_file');
      untrusted.client.close();
    } finally {
      await emptySwiftPrefix(trusted);
      trusted.client.close();
    }
  });
});

describe('leases on S3', () => {
  it('a writer whose lease expired and was taken over commits nothing, and says why', async () => {
    const s = await swiftBackend('s3-lease', {});
    const short = new S3Backend(s.where, SWIFT_CREDENTIALS, {leaseMs: 900});
    try {
      const repo = await createRepositoryOn(short, {chunkSize: 64 * 1024});
      const w = await repo.beginRestorePoint({vmId: 'vm-1', vmName: 'vm 1', platform: 'libvirt'});
      const d = await w.addDisk({key: 'vda', name: 'vda.raw', size: 64 * 1024});
      await d.put(0, randomBytes(64 * 1024));
      await d.finish();
      // Another appliance took the VM's lock over (as after an expiry while this one was cut off).
      const lockKey = `locks/${(await short.list('locks')).find((e) => e.name.startsWith('vm-'))!.name}`;
      const other = {owner: {pid: 4242, pidStart: '1', host: 'other-appliance', since: Date.now(), purpose: 'backup'}, nonce: 'theirs', expiresMs: Date.now() + 60_000};
      await s.put(lockKey, [Buffer.from(JSON.stringify(other))]);
      await new Promise((r) => setTimeout(r, 700));
      const err = await w.commit().catch((e: unknown) => e);
      expect((err as UserError).exitCode).toBe(ExitCode.locked);
      expect((err as Error).message).toMatch(/was lost: the storage could not be reached .*an S3 lease that expired.* another process may hold it now\. Nothing was committed/);
      expect(await repo.listRestorePoints()).toEqual([]);
      // Its release leaves the other holder's lease alone.
      expect(JSON.parse((await s.get(lockKey, {max: 4096, what: 'lock'}))!.toString()).nonce).toBe('theirs');
    } finally {
      await emptySwiftPrefix(s);
      short.client.close();
      s.client.close();
    }
  });
});

/** A proxy in front of the real server that fails requests as told (a flaky network, a busy server, a hostile one). */
async function faultProxy(decide: (n: number, req: http.IncomingMessage) => 'pass' | 'slowdown' | '503' | 'reset' | {rewrite: (body: string) => string}) {
  let n = 0;
  const server = http.createServer((req, res) => {
    const what = decide(n++, req);
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (what === 'reset') {
        req.socket.destroy();
        return;
      }
      if (what === 'slowdown' || what === '503') {
        res.writeHead(503, {'content-type': 'application/xml'});
        res.end(what === 'slowdown' ? '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' : '');
        return;
      }
      const up = http.request({host: '127.0.0.1', port: 8380, method: req.method, path: req.url, headers: req.headers}, (r) => {
        const parts: Buffer[] = [];
        r.on('data', (d: Buffer) => parts.push(d));
        r.on('end', () => {
          let body = Buffer.concat(parts);
          const headers = {...r.headers};
          if (typeof what === 'object') {
            body = Buffer.from(what.rewrite(body.toString()));
            headers['content-length'] = String(body.length);
          }
          res.writeHead(r.statusCode ?? 500, headers);
          res.end(body);
        });
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {port: (server.address() as AddressInfo).port, requests: () => n, close: () => new Promise<void>((r) => server.close(() => r()))};
}

describe('the S3 client under faults', () => {
  let prefixBackend: S3Backend;
  let proxy: Awaited<ReturnType<typeof faultProxy>> | undefined;
  beforeAll(async () => {
    prefixBackend = await swiftBackend('s3-faults');
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    await emptySwiftPrefix(prefixBackend);
    prefixBackend.client.close();
  });

  const through = (port: number, retries = 5) => new S3Backend({...prefixBackend.where, port}, SWIFT_CREDENTIALS, {retries, backoffMs: 10});

  it('retries a busy server (503, SlowDown) and a dropped connection with backoff, then succeeds', async () => {
    const plan = ['slowdown', '503', 'reset'] as const;
    proxy = await faultProxy((n) => plan[n] ?? 'pass');
    const b = through(proxy.port);
    await b.put('points/p/manifest.json', [Buffer.from('{"ok":true}')]);
    expect(proxy.requests()).toBe(4);
    expect((await prefixBackend.get('points/p/manifest.json', {max: 100, what: 'manifest'}))!.toString()).toBe('{"ok":true}');
    b.client.close();
  });

  it('gives up after its retries with the server\'s own words', async () => {
    proxy = await faultProxy(() => 'slowdown');
    const b = through(proxy.port, 2);
    const err = await b.put('x', [Buffer.from('x')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^The S3 server failed for s3\+http:.*SlowDown/);
    expect((err as UserError).hint).toMatch(/Try again/);
    expect(((err as UserError).cause as S3Error).code).toBe('SlowDown');
    expect(proxy.requests()).toBe(3);
    b.client.close();
  });

  it('drops what a hostile listing names outside the repository or as a path', async () => {
    await prefixBackend.put('listed/good/manifest.json', [Buffer.from('{}')]);
    const pfx = prefixBackend.where.prefix;
    proxy = await faultProxy(() => ({
      rewrite: (xml) =>
        xml.replace('</ListBucketResult>', `<Contents><Key>../../etc/passwd</Key></Contents><Contents><Key>other-repo/points/x</Key></Contents><CommonPrefixes><Prefix>${pfx}listed/../</Prefix></CommonPrefixes><CommonPrefixes><Prefix>${pfx}listed/a/b/</Prefix></CommonPrefixes></ListBucketResult>`),
    }));
    const b = through(proxy.port);
    expect(await b.list('listed')).toEqual([{name: 'good', dir: true}]);
    b.client.close();
  });

  it('refused credentials: a clear error that names the repository, never the secret', async () => {
    const secret = `wrong-${randomBytes(6).toString('hex')}`;
    const c = new S3Client(prefixBackend.where, {...SWIFT_CREDENTIALS, secretAccessKey: secret}, {retries: 0});
    const raw = await c.request({method: 'GET', query: {'list-type': '2'}}).catch((e: unknown) => e);
    const err = explainS3(raw, 's3+http://127.0.0.1:8380/' + SWIFT_BUCKET) as UserError;
    expect(err.exitCode).toBe(ExitCode.authFailed);
    expect(err.message).toContain('refused the credentials');
    expect(`${err.message} ${err.hint ?? ''} ${(raw as Error).message}`).not.toContain(secret);
    c.close();
    // The same in the middle of work (a key revoked while a copy runs): the backend's own calls say it.
    const b = new S3Backend(prefixBackend.where, {...SWIFT_CREDENTIALS, secretAccessKey: secret}, {retries: 0});
    const mid = (await b.put('points/x/manifest.json', [Buffer.from('{}')]).catch((e: unknown) => e)) as UserError;
    expect(mid).toBeInstanceOf(UserError);
    expect(mid.exitCode).toBe(ExitCode.authFailed);
    expect(mid.message).toContain(`refused the credentials for ${prefixBackend.location}`);
    expect(`${mid.message} ${mid.hint ?? ''}`).not.toContain(secret);
    b.client.close();
  });
});
