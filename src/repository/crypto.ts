/**
 * Encryption at rest (repository format 3; docs/repository-format.md "Encrypted repositories").
 *
 * Keys. A repository's master key is 64 random bytes: the first 32 are the AES-256-GCM key of
 * every chunk, index and manifest, the last 32 the HMAC-SHA-256 key of the chunk ids (so an id
 * says nothing about the data: without the key no one can test a guess of the content against
 * it). The master key is stored in the configuration wrapped (AES-256-GCM) under a key derived
 * from the passphrase with scrypt, a memory-hard KDF, with the repository id as associated data.
 * A wrong passphrase fails the wrap's authentication: a clear error, never garbage.
 *
 * Sealed files (indexes, manifests): "VBENC\0\0\0" (8) · nonce (12) · ciphertext · tag (16); the
 * associated data is the magic and a purpose naming the file's place ("manifest <point id>",
 * "index <point id>/disk-0.idx"), so a file moved to another place does not open.
 *
 * Chunk files (chunk-file.ts, chunk format 3) are encrypted there, with the chunk id as
 * associated data. Nonces are random (96 bits): far below the 2^32 messages per key that
 * random GCM nonces allow for a repository of 1 MiB chunks (4 PiB).
 */
import {createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt} from 'node:crypto';
import {ExitCode, UserError} from '../util/errors.js';

/** The two keys the chunk worker threads need (plain Uint8Arrays: they cross to the threads in messages). */
export interface ChunkKeys {
  /** AES-256-GCM key of chunks, indexes and manifests. */
  enc: Uint8Array;
  /** HMAC-SHA-256 key of chunk ids (and of VM lock names). */
  mac: Uint8Array;
}

export interface KdfParams {
  name: 'scrypt';
  /** CPU/memory cost (a power of two), block size and parallelism; memory is 128 × N × r bytes. */
  N: number;
  r: number;
  p: number;
  /** 16 random bytes, base64. */
  salt: string;
}

/** The `encryption` object of an encrypted repository's configuration (config-file.ts). */
export interface EncryptionRecord {
  cipher: 'aes-256-gcm';
  kdf: KdfParams;
  /** The master key wrapped: nonce (12 bytes) and ciphertext + tag (64 + 16 bytes), base64. */
  nonce: string;
  key: string;
}

/** scrypt N = 2^16, r = 8: 64 MiB and ~0.2 s a derivation on the test bed's EPYC. */
export const DEFAULT_KDF = {N: 1 << 16, r: 8, p: 1} as const;
/** A hostile configuration must not choose what a derivation costs: at most 256 MiB, p ≤ 4. */
const MAX_KDF_MEMORY = 256 << 20;

export const SEAL_MAGIC = Buffer.from('VBENC\0\0\0', 'latin1');
const NONCE = 12;
const TAG = 16;
/** Bytes a sealed file adds to its content. */
export const SEAL_OVERHEAD = SEAL_MAGIC.length + NONCE + TAG;

function wrapAad(repositoryId: string): Buffer {
  return Buffer.from(`vmbackup repository key ${repositoryId}`, 'utf8');
}

function derive(passphrase: string, kdf: KdfParams): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), 32, {N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 128 * kdf.N * kdf.r * kdf.p + (32 << 20)}, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

function split(master: Buffer): ChunkKeys {
  return {enc: new Uint8Array(master.subarray(0, 32)), mac: new Uint8Array(master.subarray(32, 64))};
}

/** A passphrase as typed or read from a file: one line, no trailing newline, 8 to 1024 characters. */
export function checkPassphrase(passphrase: string, where = 'The passphrase'): string {
  const p = passphrase.replace(/\r?\n$/, '');
  if (p.length < 8 || p.length > 1024 || /[\r\n]/.test(p)) {
    throw new UserError(`${where} must be one line of 8 to 1024 characters.`, {
      hint: 'Choose a long passphrase (several words) and keep it safe: without it the repository cannot be read by anyone, vmbackup included.',
      exitCode: ExitCode.invalidInput,
    });
  }
  return p;
}

/** A new master key for the repository `repositoryId`, wrapped under `passphrase`. */
export async function newEncryption(passphrase: string, repositoryId: string, cost: {N: number; r: number; p: number} = DEFAULT_KDF): Promise<{record: EncryptionRecord; keys: ChunkKeys}> {
  const master = randomBytes(64);
  return {record: await wrapMaster(master, passphrase, repositoryId, cost), keys: split(master)};
}

/**
 * The same master key wrapped under another passphrase (new salt and nonce): what changing the
 * passphrase writes. The data is not re-encrypted, so whoever kept the old key file and knows the
 * old passphrase can still open the repository — a passphrase change does not revoke; a new
 * encrypted repository and a copy do.
 */
export async function rewrapKeys(keys: ChunkKeys, passphrase: string, repositoryId: string, cost: {N: number; r: number; p: number} = DEFAULT_KDF): Promise<EncryptionRecord> {
  return wrapMaster(Buffer.concat([keys.enc, keys.mac]), passphrase, repositoryId, cost);
}

async function wrapMaster(master: Buffer, passphrase: string, repositoryId: string, cost: {N: number; r: number; p: number}): Promise<EncryptionRecord> {
  const kdf: KdfParams = {name: 'scrypt', ...cost, salt: randomBytes(16).toString('base64')};
  const kek = await derive(checkPassphrase(passphrase), kdf);
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(wrapAad(repositoryId));
  const wrapped = Buffer.concat([c.update(master), c.final(), c.getAuthTag()]);
  const record: EncryptionRecord = {cipher: 'aes-256-gcm', kdf, nonce: nonce.toString('base64'), key: wrapped.toString('base64')};
  remember(record, passphrase, master);
  return record;
}

/** Unwrapped keys by record and passphrase, so a process that opens a repository again pays scrypt once. */
const unlocked = new Map<string, Buffer>();

function cacheKey(record: EncryptionRecord, passphrase: string): string {
  return createHash('sha256').update(JSON.stringify(record)).update('\0').update(passphrase).digest('hex');
}

function remember(record: EncryptionRecord, passphrase: string, master: Buffer): void {
  if (unlocked.size > 64) unlocked.clear();
  unlocked.set(cacheKey(record, passphrase), master);
}

/** The keys of an encrypted repository; a wrong passphrase is a UserError with ExitCode.passphrase. */
export async function unlock(record: EncryptionRecord, passphrase: string | undefined, repositoryId: string, where: string): Promise<ChunkKeys> {
  if (passphrase === undefined) {
    throw new UserError(`The repository ${where} is encrypted: its passphrase is needed to read or write it.`, {
      hint: 'Give it with --passphrase-file FILE (a file holding the passphrase on one line, readable by root only), or store it with the repository in the appliance (console: Repositories).',
      exitCode: ExitCode.passphrase,
    });
  }
  const p = passphrase.replace(/\r?\n$/, '');
  const known = unlocked.get(cacheKey(record, p));
  if (known) return split(known);
  const wrapped = Buffer.from(record.key, 'base64');
  const kek = await derive(p, record.kdf);
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(record.nonce, 'base64'));
    d.setAAD(wrapAad(repositoryId));
    d.setAuthTag(wrapped.subarray(64));
    const master = Buffer.concat([d.update(wrapped.subarray(0, 64)), d.final()]);
    remember(record, p, master);
    return split(master);
  } catch {
    throw new UserError(`Wrong passphrase for the encrypted repository ${where}.`, {
      hint: 'Check the passphrase file (one line; a trailing newline is ignored). The repository itself is not changed by a wrong passphrase.',
      exitCode: ExitCode.passphrase,
    });
  }
}

/** The configuration's `encryption` object checked as untrusted input; a reason when it is not usable. */
export function checkEncryptionRecord(raw: unknown): EncryptionRecord | string {
  if (typeof raw !== 'object' || raw === null) return 'it has no encryption record';
  const e = raw as Record<string, unknown>;
  if (e.cipher !== 'aes-256-gcm') return `unknown cipher ${JSON.stringify(e.cipher)}`;
  const k = e.kdf as Record<string, unknown> | undefined;
  if (typeof k !== 'object' || k === null || k.name !== 'scrypt') return 'unknown key derivation';
  const {N, r, p, salt} = k;
  const int = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  if (!int(N, 2, 1 << 24) || (N & (N - 1)) !== 0 || !int(r, 1, 64) || !int(p, 1, 4) || 128 * N * r * p > MAX_KDF_MEMORY) return 'key derivation parameters out of range';
  const b64 = (v: unknown, bytes: number) => typeof v === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === bytes;
  if (!b64(salt, 16) || !b64(e.nonce, NONCE) || !b64(e.key, 64 + TAG)) return 'the wrapped key is malformed';
  return {cipher: 'aes-256-gcm', kdf: {name: 'scrypt', N, r, p, salt: salt as string}, nonce: e.nonce as string, key: e.key as string};
}

/** The keyed id of a chunk (HMAC-SHA-256); also what names a VM's lock in an encrypted repository. */
export function keyedHash(mac: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', mac).update(data).digest();
}

function sealAad(purpose: string): Buffer {
  return Buffer.concat([SEAL_MAGIC, Buffer.from(purpose, 'utf8')]);
}

/** An index or manifest, encrypted for its place `purpose`. */
export function seal(keys: ChunkKeys, purpose: string, parts: Uint8Array[]): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.enc, nonce);
  c.setAAD(sealAad(purpose));
  const body = parts.map((p) => c.update(p));
  return Buffer.concat([SEAL_MAGIC, nonce, ...body, c.final(), c.getAuthTag()]);
}

/** The content of a sealed file, or why it cannot be opened (damaged, or not this file). */
export function unseal(keys: ChunkKeys, purpose: string, file: Buffer): Buffer | {error: string} {
  if (file.length < SEAL_OVERHEAD) return {error: `${file.length} bytes, shorter than an encrypted file can be`};
  if (!file.subarray(0, SEAL_MAGIC.length).equals(SEAL_MAGIC)) return {error: 'not an encrypted file (bad magic)'};
  try {
    const d = createDecipheriv('aes-256-gcm', keys.enc, file.subarray(SEAL_MAGIC.length, SEAL_MAGIC.length + NONCE));
    d.setAAD(sealAad(purpose));
    d.setAuthTag(file.subarray(file.length - TAG));
    return Buffer.concat([d.update(file.subarray(SEAL_MAGIC.length + NONCE, file.length - TAG)), d.final()]);
  } catch {
    return {error: 'it does not authenticate (damaged, or moved here from elsewhere)'};
  }
}
