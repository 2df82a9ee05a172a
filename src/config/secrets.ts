/**
 * Secrets in configuration objects: which fields hold them, how the API shows them ("••••"),
 * and how an update that sends the redacted value back keeps the stored secret.
 *
 * The config file itself is 0600 and written by the daemon only; secrets leave the daemon only
 * towards the system they belong to (the engine, the mail server).
 */

import {ConfigError} from './parse.js';

export const REDACTED = '••••';

/** Paths of secret fields, per kind of object. */
const SECRET_PATHS: Record<string, string[][]> = {
  connections: [['password']],
  // An encrypted repository's passphrase: it never leaves the appliance; kept for the same path only.
  // An S3 repository's secret key: it signs requests to that bucket's server, and only there.
  repositories: [['passphrase'], ['s3', 'secretAccessKey']],
  email: [['auth', 'password']],
  // A chat webhook's URL is its credential; the signing key is a secret shared with the receiver.
  webhooks: [['url'], ['secret']],
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

/**
 * What a secret is for: the fields that say where it is sent. A stored secret is only reused
 * for the same endpoint; a caller who changes any of these must type the secret again.
 */
const ENDPOINT: Record<string, (o: unknown) => unknown[]> = {
  // A repository's passphrase belongs to the repository at its path; an S3 secret key to that
  // address (server, bucket, prefix), its access key id and the CA that decides which server it is.
  repositories: (o) => [text(get(o, ['path'])), text(get(o, ['s3', 'accessKeyId'])), text(get(o, ['s3', 'caFile']))],
  // The engine: its URL, the user, and the CA that decides which server is the engine.
  connections: (o) => [text(get(o, ['url'])), text(get(o, ['user'])), text(get(o, ['caPem']))],
  // The receiver: its URL (a "••••" URL stands for the stored one) and the CA that may vouch for it.
  webhooks: (o) => [text(get(o, ['url'])), text(get(o, ['caPem']))],
  // The mail server: host, effective port, security, login, and what certificates it may show.
  email: (o) => {
    const security = text(get(o, ['security'])) ?? 'starttls';
    const port = get(o, ['port']) ?? {starttls: 587, tls: 465, none: 25}[security as 'starttls'];
    return [
      text(get(o, ['transport'])),
      text(get(o, ['host']))?.toLowerCase(),
      port,
      security,
      text(get(o, ['auth', 'user'])),
      text(get(o, ['tls', 'ca'])),
      get(o, ['tls', 'acceptAnyCertificate']) === true,
      get(o, ['allowPlaintextAuth']) === true,
    ];
  },
};

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v.trim() : undefined;
}

/**
 * The input with each secret that was sent back as REDACTED replaced by the stored value, but
 * only when the secret would go to the endpoint it was stored for (URL, host, port, user,
 * certificates unchanged). Otherwise a UserError: reusing it would hand the stored password to
 * whatever server the caller names (docs/security.md).
 */
export function keepSecrets(kind: string, input: unknown, stored: unknown): unknown {
  if (input === null || typeof input !== 'object') return input;
  const copy = structuredClone(input);
  // Where the input sends its secrets: a "••••" that is itself part of the endpoint (a webhook's
  // URL) means the stored value, not a new endpoint.
  const resolved = structuredClone(input);
  for (const path of SECRET_PATHS[kind] ?? []) {
    if (get(resolved, path) === REDACTED && stored !== undefined && get(stored, path) !== undefined) set(resolved, path, get(stored, path));
  }
  for (const path of SECRET_PATHS[kind] ?? []) {
    if (get(copy, path) !== REDACTED) continue;
    if (stored === undefined || get(stored, path) === undefined) {
      // Nothing stored for "••••" to stand for (a new object, or an import): never store the marker itself.
      throw new ConfigError([{field: path.join('.'), message: 'is "••••", which stands for a stored secret, and none is stored here'}], 'Give the secret itself.');
    }
    const endpoint = ENDPOINT[kind];
    if (stored !== undefined && endpoint && JSON.stringify(endpoint(resolved)) !== JSON.stringify(endpoint(stored))) {
      const other = kind === 'email' ? 'mail server, port, login or TLS setting' : kind === 'webhooks' ? 'webhook URL or CA' : kind === 'repositories' ? 'repository path, access key or CA' : 'engine URL, user or CA';
      const what = kind === 'webhooks' ? 'secret' : kind === 'repositories' ? (path[0] === 's3' ? 'secret key' : 'passphrase') : 'password';
      throw new ConfigError(
        [{field: path.join('.'), message: `the stored ${what} belongs to another ${other} and is not used for anything else`}],
        `Type the ${what} again for the new settings.`,
      );
    }
    set(copy, path, get(stored, path));
  }
  return copy;
}

/** Every secret value of an object, so loggers can scrub them from any text. */
export function secretValues(kind: string, obj: unknown): string[] {
  return (SECRET_PATHS[kind] ?? []).map((p) => get(obj, p)).filter((v): v is string => typeof v === 'string' && v.length > 0);
}
