/**
 * S3 repository addresses, as a user writes them and the configuration stores them (a pure
 * parser: the configuration validates with it, the S3 backend connects with it).
 */
import {ExitCode, UserError} from './errors.js';

export interface S3Location {
  /** http: or https: */
  protocol: 'http:' | 'https:';
  host: string;
  port: number;
  bucket: string;
  /** Key prefix of the repository in the bucket: '' or ending in '/'. */
  prefix: string;
}

/**
 * An S3 repository location as the user writes it: `s3://HOST[:PORT]/BUCKET[/PREFIX]` (HTTPS) or
 * `s3+http://HOST:PORT/BUCKET[/PREFIX]` (plain HTTP, for a server on this machine or a lab). The
 * bucket and prefix are checked like every name from outside: S3's bucket rules, and prefix
 * segments that could be keys.
 */
export function parseS3Url(text: string): S3Location | undefined {
  const m = /^s3(\+http|\+https)?:\/\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(text.trim());
  if (!m) return undefined;
  const protocol = m[1] === '+http' ? 'http:' : 'https:';
  let url: URL;
  try {
    url = new URL(`${protocol}//${m[2]}`);
  } catch {
    throw badUrl(text, 'the host is not valid');
  }
  if (url.username || url.password) throw badUrl(text, 'credentials do not belong in the address; give them in the credentials file');
  const bucket = m[3]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) throw badUrl(text, `"${bucket}" is not a valid bucket name (3–63 lowercase letters, digits, dots and hyphens)`);
  const rest = (m[4] ?? '').replace(/\/+$/, '');
  if (rest !== '') {
    for (const seg of rest.split('/')) {
      if (!/^[A-Za-z0-9._-]{1,100}$/.test(seg) || seg === '.' || seg === '..') throw badUrl(text, `the prefix segment "${seg}" is not allowed (letters, digits, '.', '_' and '-')`);
    }
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {protocol, host, port: url.port ? Number(url.port) : protocol === 'https:' ? 443 : 80, bucket, prefix: rest === '' ? '' : `${rest}/`};
}

export function isS3Url(text: string): boolean {
  return /^s3(\+https?)?:\/\//.test(text.trim());
}

export function s3Url(l: S3Location): string {
  const scheme = l.protocol === 'http:' ? 's3+http' : 's3';
  const host = l.host.includes(':') ? `[${l.host}]` : l.host;
  const port = l.port === (l.protocol === 'https:' ? 443 : 80) ? '' : `:${l.port}`;
  return `${scheme}://${host}${port}/${l.bucket}${l.prefix ? `/${l.prefix.replace(/\/$/, '')}` : ''}`;
}

function badUrl(text: string, why: string): UserError {
  return new UserError(`"${text}" is not a usable S3 repository address: ${why}.`, {
    hint: 'Write it as s3://HOST[:PORT]/BUCKET[/PREFIX] (HTTPS) or s3+http://HOST:PORT/BUCKET[/PREFIX].',
    exitCode: ExitCode.usage,
  });
}

