/**
 * Restore point ids (pure). An id is what an operator types, and what becomes a directory name,
 * so it is made only of [a-z0-9-]: a slug of the VM name (the real name, with spaces, quotes or
 * any unicode, lives only inside the manifest), the UTC time, and a random tail against clashes.
 */
import {randomBytes} from 'node:crypto';

export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug.length > 0 ? slug : 'vm';
}

export function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'z').toLowerCase();
}

export function newPointId(vmName: string, time: Date): string {
  return `${slugify(vmName)}-${compactTime(time)}-${randomBytes(3).toString('hex')}`;
}


export {assertName, isValidName, NAME_GRAMMARS, type NameKind} from '../util/names.js';
