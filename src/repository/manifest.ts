/**
 * Restore point manifests (pure): parse and check the committed JSON, derive the summary.
 *
 * The manifest is the commit record: a restore point exists exactly when points/<id>/manifest.json
 * exists and parses. Version rules: readers accept every version up to MANIFEST_VERSION and
 * ignore unknown fields, so adding a field never needs a version bump.
 */
import {z} from 'zod';
import {ExitCode, UserError} from '../util/errors.js';
import {corrupt} from './fsio.js';
import {NAME_GRAMMARS, type NameKind} from './names.js';
import type {Manifest, RestorePointSummary} from './types.js';

export const MANIFEST_FORMAT = 'vmbackup-restore-point';
export const MANIFEST_VERSION = 1;

const statsSchema = z.looseObject({
  logical: z.number(),
  dataBytes: z.number(),
  zeroBytes: z.number(),
  baseBytes: z.number(),
  newChunks: z.number(),
  newPlainBytes: z.number(),
  newStoredBytes: z.number(),
  reusedChunks: z.number(),
  hashedBytes: z.number(),
});

/** A name checked against its grammar (names.ts): it may reach a path, a URL or a command. */
const named = (kind: NameKind) => z.string().regex(NAME_GRAMMARS[kind], `not a valid ${kind}`);

const checkpointSchema = z.object({id: named('objectId'), data: z.record(z.string(), z.unknown()).optional()});

const manifestSchema = z.looseObject({
  format: z.literal(MANIFEST_FORMAT),
  version: z.number().int().min(1),
  id: named('pointId'),
  repositoryId: z.string(),
  vm: z.object({id: named('objectId'), name: z.string().max(1024)}),
  platform: z.string(),
  time: z.string(),
  committedAt: z.string(),
  type: z.enum(['full', 'incremental']),
  base: named('pointId').optional(),
  sessionId: z.string().optional(),
  jobId: z.string().optional(),
  configuration: z.object({kind: z.string(), text: z.string()}).optional(),
  checkpoint: checkpointSchema.optional(),
  warnings: z.array(z.string()),
  lockDays: z.number().int().min(1).max(36500).optional(),
  chunkSize: z.number().int().positive(),
  disks: z.array(
    z.looseObject({
      key: named('diskKey'),
      name: z.string().max(1024),
      size: z.number().int().nonnegative(),
      format: named('diskFormat').optional(),
      details: z.record(z.string(), z.unknown()).optional(),
      index: z.string().regex(/^disk-\d+\.idx$/),
      indexSha256: z.string().regex(/^[0-9a-f]{64}$/),
      indexBytes: z.number().int().nonnegative(),
      stats: statsSchema.extend({key: z.string()}),
    }),
  ),
  stats: statsSchema.extend({dedupRatio: z.number(), compressionRatio: z.number()}),
});

/** A manifest larger than this is refused before it is parsed (real ones are a few KiB). */
export const MAX_MANIFEST_BYTES = 16 << 20;

/**
 * Parses the manifest text read from `file`. With `dirName`, the manifest's id must be the name
 * of the directory it was listed from: an id that differs (another point's, or "../x") would make
 * prune or forget act on a directory other than the one listed. With `chunkSize`, the manifest's
 * must be the repository's (chunk files are bounded by it, chunk-file.ts).
 */
export function parseManifest(text: string, file: string, expect: {dirName?: string; chunkSize?: number} = {}): Manifest {
  const {dirName, chunkSize} = expect;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt(file, 'not valid JSON');
  }
  const version = (raw as {version?: unknown} | null)?.version;
  if (typeof version === 'number' && version > MANIFEST_VERSION) {
    throw new UserError(`The restore point manifest ${file} was written by format version ${version}; this vmbackup reads up to ${MANIFEST_VERSION}.`, {
      hint: 'Upgrade vmbackup on this appliance.',
      exitCode: ExitCode.unsupportedVersion,
    });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw corrupt(file, `not a valid manifest (${first ? `${first.path.join('.')}: ${first.message}` : 'invalid'})`);
  }
  const m = parsed.data as Manifest;
  if (dirName !== undefined && m.id !== dirName) {
    throw corrupt(file, `not a valid manifest (its id ${JSON.stringify(m.id)} is not the name of its directory ${JSON.stringify(dirName)})`);
  }
  if (chunkSize !== undefined && m.chunkSize !== chunkSize) {
    throw corrupt(file, `not a valid manifest (chunk size ${m.chunkSize}, the repository's is ${chunkSize})`);
  }
  const keys = new Set<string>();
  for (const d of m.disks) {
    if (keys.has(d.key)) throw corrupt(file, `not a valid manifest (disk key ${d.key} appears twice)`);
    keys.add(d.key);
  }
  return m;
}

export function serializeManifest(m: Manifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

export function summarize(m: Manifest, isProtected: boolean): RestorePointSummary {
  const s: RestorePointSummary = {
    id: m.id,
    vmId: m.vm.id,
    vmName: m.vm.name,
    platform: m.platform,
    time: m.time,
    type: m.type,
    protected: isProtected,
    disks: m.disks.map((d) => ({key: d.key, name: d.name, size: d.size})),
    logicalSize: m.disks.reduce((a, d) => a + d.size, 0),
    storedSize: m.stats.newStoredBytes,
  };
  if (m.checkpoint !== undefined) s.checkpoint = m.checkpoint;
  if (m.sessionId !== undefined) s.sessionId = m.sessionId;
  if (m.jobId !== undefined) s.jobId = m.jobId;
  if (m.base !== undefined) s.base = m.base;
  if (m.lockDays !== undefined) s.lockDays = m.lockDays;
  return s;
}

/** Oldest first; ties (same millisecond) by id so the order is stable. */
export function compareSummaries(a: {time: string; id: string}, b: {time: string; id: string}): number {
  return a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
