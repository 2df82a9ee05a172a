/**
 * Grammars of names that come from outside (pure): repository files, API requests, hosts'
 * replies. See docs/security.md.
 */
/**
 * The names a repository file carries that reach a path, a URL, a command argument
 * or a terminal. A repository is untrusted input (it may come from shared storage or another
 * site): every such name is checked against its grammar when the file is parsed, and again by
 * the code that builds a path from it, so "../" or a leading "-" never gets that far.
 */
export const NAME_GRAMMARS = {
  /** Restore point ids: [a-z0-9-], see newPointId(); also the directory name under points/. */
  pointId: /^[a-z0-9][a-z0-9-]{0,80}$/,
  /** Disk keys: libvirt target devs (vda, sdb, nvram) and oVirt disk ids (UUIDs). */
  diskKey: /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/,
  /** Image formats as qemu-img and the oVirt engine name them (raw, qcow2, cow). */
  diskFormat: /^[a-z][a-z0-9]{0,15}$/,
  /** VM ids (libvirt and oVirt UUIDs), checkpoint ids and repository ids. */
  objectId: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
  /** Chunk ids: 64 lowercase hex digits (SHA-256). */
  chunkId: /^[0-9a-f]{64}$/,
} as const;

export type NameKind = keyof typeof NAME_GRAMMARS;

const NAME_WHAT: Record<NameKind, string> = {
  pointId: 'restore point id',
  diskKey: 'disk key',
  diskFormat: 'disk format',
  objectId: 'id',
  chunkId: 'chunk id',
};

export function isValidName(kind: NameKind, value: unknown): value is string {
  return typeof value === 'string' && NAME_GRAMMARS[kind].test(value);
}

/**
 * Throws unless `value` matches the grammar of `kind`. For code that builds a path, URL or
 * command from a name: a second line of defence behind the parsers.
 */
export function assertName(kind: NameKind, value: unknown, where: string): asserts value is string {
  if (!isValidName(kind, value)) {
    throw new Error(`refusing the ${NAME_WHAT[kind]} ${JSON.stringify(value)} from ${where}: it does not match ${NAME_GRAMMARS[kind].source}`);
  }
}
