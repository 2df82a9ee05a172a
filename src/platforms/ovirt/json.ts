/**
 * Tolerant readers for the engine's JSON (docs/reference/ovirt-backup-api.md §1.3, gotcha 22): collections
 * keyed by the singular name and `{}` when empty, nested lists wrapped the same way, numbers and
 * booleans that older engines send as strings, 64-bit sizes (safe in a JS number up to 8 PiB).
 */
export type Json = Record<string, unknown>;

export function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

/** `{"vm": [...]}` or `{}` → the array; also accepts a bare array. */
export function list(v: unknown, key: string): Json[] {
  if (Array.isArray(v)) return v.map(obj);
  const inner = obj(v)[key];
  if (Array.isArray(inner)) return inner.map(obj);
  return inner && typeof inner === 'object' ? [obj(inner)] : [];
}

export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

export function bool(v: unknown): boolean | undefined {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  return undefined;
}

/** The id of a nested reference such as `"cluster": {"id": ...}`. */
export function refId(v: unknown): string | undefined {
  return str(obj(v).id);
}
