/**
 * The test bed's S3 server: OpenStack Swift with s3api on 127.0.0.1:8380, started by
 * test/setup.d/50-swift.sh (tempauth user test:tester, key "swift-test-secret-4711"). Each test gets its own
 * prefix in one bucket, so test files running side by side never see each other's objects.
 */
import {randomBytes} from 'node:crypto';
import {chmod, writeFile} from 'node:fs/promises';
import {S3Backend, ensureBucket, parseS3Url} from '../../src/repository/storage/s3.js';
import {uriEncode, type S3Credentials} from '../../src/repository/storage/s3-client.js';

export const SWIFT_ENDPOINT = 's3+http://127.0.0.1:8380';
/** The same store over TLS, with a certificate of the test bed's CA (SWIFT_CA). */
export const SWIFT_TLS_ENDPOINT = 's3://127.0.0.1:8381';
export const SWIFT_CA = '/var/lib/vmbackup-test/swift/etc/ca.pem';
export const SWIFT_BUCKET = 'vmbackup-test';
export const SWIFT_CREDENTIALS: S3Credentials = {accessKeyId: 'test:tester', secretAccessKey: 'swift-test-secret-4711', region: 'us-east-1'};

/** A fresh repository address in the test bucket (nothing under it yet). */
export function swiftUrl(what: string): string {
  return `${SWIFT_ENDPOINT}/${SWIFT_BUCKET}/${what}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A backend on a fresh prefix of the test bucket (the bucket made when missing). */
export async function swiftBackend(what: string, opts: {retries?: number; backoffMs?: number} = {}): Promise<S3Backend> {
  const backend = new S3Backend(parseS3Url(swiftUrl(what))!, SWIFT_CREDENTIALS, opts);
  await ensureBucket(backend);
  return backend;
}

/** Writes the test bed's credentials as `vmbackup` reads them (--s3-credentials FILE), mode 0600. */
export async function writeSwiftCredentials(file: string, creds: Partial<S3Credentials> = {}): Promise<string> {
  const c = {...SWIFT_CREDENTIALS, ...creds};
  await writeFile(file, `# the test bed's Swift\naccess_key_id = ${c.accessKeyId}\nsecret_access_key = ${c.secretAccessKey}\nregion = ${c.region}\n`, {mode: 0o600});
  await chmod(file, 0o600);
  return file;
}

/**
 * Makes an object look last written `ms` ago, behind the backend's back: its own time is its
 * metadata (s3.ts), rewritten by a server-side copy, as another writer would.
 */
export async function ageSwiftObject(backend: S3Backend, key: string, ms: number): Promise<void> {
  const full = `${backend.where.prefix}${key}`;
  await backend.client.request({
    method: 'PUT',
    key: full,
    headers: {'x-amz-copy-source': `/${backend.where.bucket}/${uriEncode(full, true)}`, 'x-amz-metadata-directive': 'REPLACE', 'x-amz-meta-vmb-mtime': String(Date.now() - ms)},
  });
}

/** Removes every object under the backend's prefix. */
export async function emptySwiftPrefix(backend: S3Backend): Promise<void> {
  for (const e of await backend.list('')) {
    if (e.dir) await backend.deleteTree(e.name);
    else await backend.delete(e.name);
  }
}
