/**
 * Secrets in configuration objects: which fields hold them, how the API shows them ("••••"),
 * and how an update that sends the redacted value back keeps the stored secret.
 *
 * The config file itself is 0600 and written by the daemon only; secrets leave the daemon only
 * towards the system they belong to (the engine, the mail server).
 */

export const REDACTED = '••••';

/** Paths of secret fields, per kind of object. */
const SECRET_PATHS: Record<string, string[][]> = {
  connections: [['password']],
  email: [['auth', 'password']],
};

function get(obj: unknown, path: string[]): unknown {
  let v = obj;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function set(obj: unknown, path: string[], value: unknown): void {
  let v = obj as Record<string, unknown>;
  for (const k of path.slice(0, -1)) {
    if (v[k] === null || typeof v[k] !== 'object') return;
    v = v[k] as Record<string, unknown>;
  }
  v[path.at(-1)!] = value;
}

/** A deep copy with every secret replaced by REDACTED (absent secrets stay absent). */
export function redact<T>(kind: string, obj: T): T {
  const copy = structuredClone(obj);
  for (const path of SECRET_PATHS[kind] ?? []) {
    if (typeof get(copy, path) === 'string') set(copy, path, REDACTED);
  }
  return copy;
}

/** The input with each secret that was sent back as REDACTED replaced by the stored value. */
export function keepSecrets(kind: string, input: unknown, stored: unknown): unknown {
  if (input === null || typeof input !== 'object') return input;
  const copy = structuredClone(input);
  for (const path of SECRET_PATHS[kind] ?? []) {
    if (get(copy, path) === REDACTED) set(copy, path, get(stored, path));
  }
  return copy;
}

/** Every secret value of an object, so loggers can scrub them from any text. */
export function secretValues(kind: string, obj: unknown): string[] {
  return (SECRET_PATHS[kind] ?? []).map((p) => get(obj, p)).filter((v): v is string => typeof v === 'string' && v.length > 0);
}
