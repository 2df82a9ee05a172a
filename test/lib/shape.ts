/**
 * Shapes of JSON replies, to check that a stand-in (the console's fake API) answers only what the
 * real daemon answers: each key the fake sends exists in the real reply with the same type.
 */
export type Shape = string | {[k: string]: Shape} | Shape[];

/** The types of a value, keys and all (arrays by their first element). */
export function shapeOf(v: unknown): Shape {
  if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
  if (v === null) return 'null';
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).filter(([, x]) => x !== undefined).map(([k, x]) => [k, shapeOf(x)]));
  return typeof v;
}

/**
 * Keys the daemon sends only in some states, which the real replies here need not show: a VM's
 * `reason` (when it failed or was stopped). Every other key the fake sends must be in the real reply.
 */
const SOMETIMES = new Set(['reason']);

/** Where the fake's shape is not inside the real one: "path: fake X, real Y". */
export function outside(fakeShape: Shape, realShape: Shape, path = '$'): string[] {
  if (typeof fakeShape === 'string' || typeof realShape === 'string') {
    return fakeShape === realShape || (fakeShape === 'null' || realShape === 'null') ? [] : [`${path}: fake ${JSON.stringify(fakeShape)}, real ${JSON.stringify(realShape)}`];
  }
  if (Array.isArray(fakeShape) || Array.isArray(realShape)) {
    if (!Array.isArray(fakeShape) || !Array.isArray(realShape)) return [`${path}: fake ${Array.isArray(fakeShape) ? 'array' : 'object'}, real ${Array.isArray(realShape) ? 'array' : 'object'}`];
    return fakeShape.length && realShape.length ? outside(fakeShape[0]!, realShape[0]!, `${path}[0]`) : [];
  }
  const out: string[] = [];
  for (const [k, s] of Object.entries(fakeShape)) {
    if (!(k in realShape)) {
      if (!SOMETIMES.has(k)) out.push(`${path}.${k}: only the fake sends it`);
    }
    else out.push(...outside(s, realShape[k]!, `${path}.${k}`));
  }
  return out;
}

