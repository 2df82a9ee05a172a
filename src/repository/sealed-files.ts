/**
 * Indexes and manifests as stored: as they are in a plain repository, sealed (crypto.ts) in an
 * encrypted one. Every reader and writer of these files comes through here, so no code path
 * can write one in plaintext into an encrypted repository or read one unauthenticated.
 */
import type {RepoContext} from './context.js';
import {SEAL_OVERHEAD, seal, unseal} from './crypto.js';
import {corrupt} from './fsio.js';

const manifestPurpose = (id: string) => `manifest ${id}`;
const indexPurpose = (id: string, name: string) => `index ${id}/${name}`;

/** The bytes of restore point `id`'s manifest file. */
export function storedManifest(ctx: Pick<RepoContext, 'keys'>, id: string, text: string): Buffer {
  const plain = Buffer.from(text, 'utf8');
  return ctx.keys ? seal(ctx.keys, manifestPurpose(id), [plain]) : plain;
}

/** The text of restore point `id`'s manifest file `raw` (`file` names it in the error). */
export function manifestText(ctx: Pick<RepoContext, 'keys'>, id: string, raw: Buffer, file: string): string {
  if (!ctx.keys) return raw.toString('utf8');
  const opened = unseal(ctx.keys, manifestPurpose(id), raw);
  if ('error' in opened) throw corrupt(file, `the encrypted manifest cannot be opened: ${opened.error}`);
  return opened.toString('utf8');
}

/** The parts of an index file as written. */
export function storedIndex(ctx: Pick<RepoContext, 'keys'>, id: string, name: string, header: Buffer, ids: Buffer): Buffer[] {
  return ctx.keys ? [seal(ctx.keys, indexPurpose(id, name), [header, ids])] : [header, ids];
}

/** The plain content of index file `name` of point `id`, or why it cannot be opened. */
export function indexContent(ctx: Pick<RepoContext, 'keys'>, id: string, name: string, raw: Buffer): Buffer | {error: string} {
  if (!ctx.keys) return raw;
  const opened = unseal(ctx.keys, indexPurpose(id, name), raw);
  return 'error' in opened ? {error: `the encrypted index cannot be opened: ${opened.error}`} : opened;
}

/** The stored size of a file whose content is `n` bytes. */
export function storedSize(ctx: Pick<RepoContext, 'keys'>, n: number): number {
  return ctx.keys ? n + SEAL_OVERHEAD : n;
}
