/**
 * Parsing of imageio extents (docs/reference/ovirt-backup-api.md §6.2), pure.
 *
 * The server answers a JSON list covering the image contiguously. Zero extents carry
 * `zero`/`hole`; dirty extents carry `dirty` and, since imageio 2.2, `zero` (missing → false).
 * The list is checked to cover [0, size) without gaps so a malformed answer cannot make a backup
 * silently skip data.
 */
export interface ImageioExtent {
  start: number;
  length: number;
  zero: boolean;
  hole?: boolean;
  /** Only for context=dirty. */
  dirty?: boolean;
}

export function parseExtents(json: unknown, context: 'zero' | 'dirty', size?: number): ImageioExtent[] {
  if (!Array.isArray(json)) throw new Error('imageio extents: not a JSON list');
  const out: ImageioExtent[] = [];
  let pos = 0;
  for (const raw of json) {
    const e = raw as Record<string, unknown>;
    const start = Number(e.start);
    const length = Number(e.length);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || length < 0) throw new Error(`imageio extents: bad extent ${JSON.stringify(raw)}`);
    if (start !== pos) throw new Error(`imageio extents: gap or overlap at ${pos} (next extent starts at ${start})`);
    pos = start + length;
    if (length === 0) continue;
    const ext: ImageioExtent = {start, length, zero: e.zero === true || e.zero === 'true'};
    if (context === 'zero') ext.hole = e.hole === true || e.hole === 'true';
    else ext.dirty = e.dirty === true || e.dirty === 'true';
    out.push(ext);
  }
  if (size !== undefined && pos !== size) throw new Error(`imageio extents: cover ${pos} bytes, the image has ${size}`);
  return out;
}
