/**
 * Where each file of a repository lives: its storage key (storage/backend.ts), pure arithmetic.
 * See docs/repository-format.md.
 *
 *   vmbackup-repository.json          configuration (format, version, chunk size, id)
 *   chunks/<2 hex>/<64 hex>           format 2: chunk files, fanned out by the first id byte
 *   chunks/<4 hex>/<64 hex>           format 1: chunk files, fanned out by the first two id bytes
 *   chunks/<prefix>/<64 hex>.bad[.N]  chunks verify found damaged (quarantined)
 *   points/<id>/manifest.json         the commit record of a restore point
 *   points/<id>/disk-<N>.idx          one index per disk
 *   points/<id>/protected             marker: prune never removes this restore point
 *   writers/<id>.json                 a running writer's registration (pid, start time)
 *   writers/<id>.chunks               the ids of the chunks it stored new (GC's fast path)
 *   locks/vm-<hash>.lock, gc.lock     lock files (owner pid and start time inside)
 */
import {createHash} from 'node:crypto';
import {join} from 'node:path';
import {keyedHash} from './crypto.js';
import {assertName, NAME_GRAMMARS} from './names.js';

export const CHUNKS_DIR = 'chunks';
export const POINTS_DIR = 'points';
export const WRITERS_DIR = 'writers';
export const LOCKS_DIR = 'locks';
export const MANIFEST_FILE = 'manifest.json';
export const PROTECTED_FILE = 'protected';
/** The repository's retention lock: `{"days": N, "setAt": ISO}` (repository.ts setRetentionLock). */
export const RETENTION_LOCK_FILE = 'retention-lock.json';
/** points/<id>/held-<pid>-<n>.json: a live process serving the point (an export); prune and forget leave it. */
export const HOLD_PREFIX = 'held-';
export const BAD_MARK = '.bad';

/** Hex digits of a chunk id that name its directory: 4 in format 1 (65536 dirs), 2 in format 2 (256). */
export function prefixDigits(formatVersion: number): number {
  return formatVersion === 1 ? 4 : 2;
}

export function chunkPrefix(hex: string, formatVersion: number): string {
  return hex.slice(0, prefixDigits(formatVersion));
}

/** The storage key of a chunk (storage/backend.ts): chunks/<prefix>/<64 hex>. */
export function chunkKey(hex: string, formatVersion: number): string {
  assertName('chunkId', hex, 'a chunk path');
  return `${CHUNKS_DIR}/${chunkPrefix(hex, formatVersion)}/${hex}`;
}

/** The file of a chunk in a local repository directory (the chunk worker threads write there). */
export function chunkPath(root: string, hex: string, formatVersion: number): string {
  return join(root, chunkKey(hex, formatVersion));
}

/** Whether `name` is a chunk directory name of the given repository format. */
export function isChunkPrefix(name: string, formatVersion: number): boolean {
  return name.length === prefixDigits(formatVersion) && /^[0-9a-f]+$/.test(name);
}

/** The key under which a restore point's files live: points/<id>. */
export function pointKey(id: string): string {
  // The second line of defence: a name that is not a restore point id never becomes a key.
  assertName('pointId', id, 'a restore point path');
  return `${POINTS_DIR}/${id}`;
}

export function indexFileName(n: number): string {
  return `disk-${n}.idx`;
}

export function vmLockKey(vmId: string, mac?: Uint8Array): string {
  // The VM id may hold any character; a hash gives a safe, fixed-length name (keyed in an
  // encrypted repository, so the name does not tell which VM it is).
  const h = mac ? keyedHash(mac, vmId) : createHash('sha256').update(vmId).digest();
  return `${LOCKS_DIR}/vm-${h.toString('hex').slice(0, 24)}.lock`;
}

export function vmLockPath(root: string, vmId: string, mac?: Uint8Array): string {
  return join(root, vmLockKey(vmId, mac));
}

export const GC_LOCK_KEY = `${LOCKS_DIR}/gc.lock`;

export function writerKey(id: string): string {
  return `${WRITERS_DIR}/${id}.json`;
}

/**
 * The ids of the chunks a writer stored new, one hex id a line: when the writer fails or dies,
 * GC frees those that no restore point references at once, without the safety margin's wait.
 */
export function writerJournalKey(id: string): string {
  return `${WRITERS_DIR}/${id}.chunks`;
}

/** A chunk file name is exactly 64 lowercase hex digits. */
export const CHUNK_NAME = /^[0-9a-f]{64}$/;
/** Restore point ids: a safe slug of the VM name, the UTC time and a random tail. */
export const POINT_ID = NAME_GRAMMARS.pointId;
