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

const checkpointSchema = z.object({id: z.string(), data: z.record(z.string(), z.unknown()).optional()});

const manifestSchema = z.looseObject({
  format: z.literal(MANIFEST_FORMAT),
  version: z.number().int().min(1),
  id: z.string().min(1),
  repositoryId: z.string(),
  vm: z.object({id: z.string(), name: z.string()}),
  platform: z.string(),
  time: z.string(),
  committedAt: z.string(),
  type: z.enum(['full', 'incremental']),
  base: z.string().optional(),
  sessionId: z.string().optional(),
  jobId: z.string().optional(),
  configuration: z.object({kind: z.string(), text: z.string()}).optional(),
  checkpoint: checkpointSchema.optional(),
  warnings: z.array(z.string()),
  chunkSize: z.number().int().positive(),
  disks: z.array(
    z.looseObject({
      key: z.string(),
      name: z.string(),
      size: z.number().int().nonnegative(),
      format: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
      index: z.string().regex(/^disk-\d+\.idx$/),
      indexSha256: z.string().regex(/^[0-9a-f]{64}$/),
      indexBytes: z.number().int().nonnegative(),
      stats: statsSchema.extend({key: z.string()}),
    }),
  ),
  stats: statsSchema.extend({dedupRatio: z.number(), compressionRatio: z.number()}),
});

export function parseManifest(text: string, file: string): Manifest {
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
  return parsed.data as Manifest;
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
  return s;
}

/** Oldest first; ties (same millisecond) by id so the order is stable. */
export function compareSummaries(a: {time: string; id: string}, b: {time: string; id: string}): number {
  return a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
