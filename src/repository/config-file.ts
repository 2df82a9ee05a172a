/**
 * The repository configuration file (pure parse/serialize): `vmbackup-repository.json` at the
 * top of the repository names the format, its version, the chunk size and the repository id.
 * It is written once at creation and never changed, so a copied directory is self-describing.
 */
import {ExitCode, UserError} from '../util/errors.js';
import {checkEncryptionRecord, type EncryptionRecord} from './crypto.js';

export const CONFIG_FILE = 'vmbackup-repository.json';
export const REPOSITORY_FORMAT = 'vmbackup-repository';
/**
 * The newest format version this code knows; new repositories get it. Older versions stay
 * readable AND writable: a repository keeps the version it was created with (layout and chunk
 * files follow it, never mixed). Version 1: chunks/<4 hex>/, chunk files with a CRC-32.
 * Version 2: chunks/<2 hex>/, chunk files without CRC, checked by SHA-256 on every read.
 */
export const FORMAT_VERSION = 2;
/**
 * Version 3: an encrypted repository (crypto.ts): the layout of version 2, chunk files of
 * format 3, sealed indexes and manifests, keyed chunk ids. Made only with a passphrase.
 */
export const ENCRYPTED_FORMAT_VERSION = 3;
/** Every format version this code reads and writes. */
export const FORMAT_VERSIONS: readonly number[] = [1, 2, 3];
export const NEWEST_FORMAT_VERSION = Math.max(...FORMAT_VERSIONS);
export const DEFAULT_CHUNK_SIZE = 1 << 20;
export const MIN_CHUNK_SIZE = 4096;
export const MAX_CHUNK_SIZE = 64 << 20;

export interface RepositoryConfig {
  format: typeof REPOSITORY_FORMAT;
  version: number;
  id: string;
  chunkSize: number;
  /** sha256 (versions 1, 2) or hmac-sha256 (version 3: keyed chunk ids). */
  hash: 'sha256' | 'hmac-sha256';
  compression: 'lz4';
  created: string;
  /** Version 3: the wrapped master key and how to derive the key that unwraps it. */
  encryption?: EncryptionRecord;
}

export function validateChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
    throw new UserError(`Invalid chunk size ${chunkSize}: it must be a power of two from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes.`, {
      hint: 'Leave the chunk size at its default (1 MiB) unless you have a reason; 64 KiB to 4 MiB are sensible.',
      exitCode: ExitCode.invalidInput,
    });
  }
}

/** Parses the config text of the repository at `path`; every failure names that path. */
export function parseConfig(text: string, path: string): RepositoryConfig {
  const notRepo = (why: string) =>
    new UserError(`${path} is not a vmbackup repository: ${why}.`, {
      hint: 'Check the path. A repository is the directory that holds vmbackup-repository.json; create one with "vmbackup repo create".',
      exitCode: ExitCode.notARepository,
    });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw notRepo(`${CONFIG_FILE} is not valid JSON`);
  }
  if (typeof raw !== 'object' || raw === null) throw notRepo(`${CONFIG_FILE} is not a JSON object`);
  const c = raw as Record<string, unknown>;
  if (c.format !== REPOSITORY_FORMAT) throw notRepo(`${CONFIG_FILE} names format ${JSON.stringify(c.format)}`);
  if (typeof c.version !== 'number' || !Number.isInteger(c.version) || c.version < 1) throw notRepo(`${CONFIG_FILE} has no valid version`);
  if (c.version > NEWEST_FORMAT_VERSION) {
    throw new UserError(`The repository at ${path} was written by format version ${c.version}; this vmbackup reads versions up to ${NEWEST_FORMAT_VERSION}.`, {
      hint: 'Upgrade vmbackup on this appliance to a version that supports this repository; the repository itself is fine.',
      exitCode: ExitCode.unsupportedVersion,
    });
  }
  if (typeof c.id !== 'string' || c.id.length === 0) throw notRepo(`${CONFIG_FILE} has no repository id`);
  if (typeof c.chunkSize !== 'number') throw notRepo(`${CONFIG_FILE} has no chunk size`);
  try {
    validateChunkSize(c.chunkSize);
  } catch {
    throw notRepo(`${CONFIG_FILE} has an invalid chunk size ${c.chunkSize}`);
  }
  const encrypted = c.version === ENCRYPTED_FORMAT_VERSION;
  const hash = encrypted ? 'hmac-sha256' : 'sha256';
  if ((c.hash !== undefined || encrypted) && c.hash !== hash) throw notRepo(`unknown hash ${JSON.stringify(c.hash)} for format version ${c.version}`);
  if (c.compression !== undefined && c.compression !== 'lz4') throw notRepo(`unknown compression ${JSON.stringify(c.compression)}`);
  let encryption: EncryptionRecord | undefined;
  if (encrypted) {
    const checked = checkEncryptionRecord(c.encryption);
    if (typeof checked === 'string') throw notRepo(`its encryption record cannot be used: ${checked}`);
    encryption = checked;
  } else if (c.encryption !== undefined) {
    throw notRepo(`format version ${c.version} has no encryption, yet ${CONFIG_FILE} names one`);
  }
  return {
    format: REPOSITORY_FORMAT,
    version: c.version,
    id: c.id,
    chunkSize: c.chunkSize,
    hash,
    compression: 'lz4',
    created: typeof c.created === 'string' ? c.created : '',
    ...(encryption ? {encryption} : {}),
  };
}

export function serializeConfig(c: RepositoryConfig): string {
  return `${JSON.stringify(c, null, 2)}\n`;
}
