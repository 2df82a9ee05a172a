/**
 * Turns connection and certificate errors from undici / node:tls into UserErrors an
 * administrator can act on. Both the imageio client and the oVirt engine client use it.
 */
import {ExitCode, UserError, errnoCode} from '../../util/errors.js';

const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);
const NET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'EPIPE',
]);

/** The system/TLS code of an error or of its causes. */
export function deepCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const c = errnoCode(e);
    if (c && (CERT_CODES.has(c) || NET_CODES.has(c))) return c;
    e = (e as {cause?: unknown}).cause;
  }
  return errnoCode(err);
}

export function isCertError(err: unknown): boolean {
  const c = deepCode(err);
  return c !== undefined && CERT_CODES.has(c);
}

/** True when no connection could be made (refused, unreachable, timed out, name unknown). */
export function isConnectError(err: unknown): boolean {
  const c = deepCode(err);
  return c !== undefined && NET_CODES.has(c);
}

export function unreachable(what: string, url: string, err: unknown): UserError {
  return new UserError(`Cannot reach ${what} at ${url}: ${deepCode(err) ?? (err as Error)?.message ?? String(err)}.`, {
    hint: 'Check the address and port, that the service runs, and that no firewall blocks the appliance (engine: 443; imageio: 54322 on hosts, 54323 on the engine).',
    exitCode: ExitCode.unreachable,
    cause: err,
  });
}

/**
 * A certificate that is signed by a trusted CA but issued for other names than the one connected
 * to (node's ERR_TLS_CERT_ALTNAME_INVALID): a UserError that says so and which names the
 * certificate holds, or undefined for every other certificate error.
 */
export function wrongCertName(err: unknown, what: string, url: string): UserError | undefined {
  if (deepCode(err) !== 'ERR_TLS_CERT_ALTNAME_INVALID') return undefined;
  let e: unknown = err;
  let reason = '';
  let names = '';
  for (let i = 0; i < 5 && e; i++) {
    const x = e as {code?: string; reason?: string; cert?: {subjectaltname?: string}; cause?: unknown};
    if (x.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      reason = x.reason ?? '';
      names = (x.cert?.subjectaltname ?? '').replace(/\b(DNS|IP Address):/g, '').trim();
      break;
    }
    e = x.cause;
  }
  const host = new URL(url).hostname;
  return new UserError(`The TLS certificate of ${what} at ${url} is signed by the stored CA but issued for ${names ? `other names (${names})` : 'another name'}, not "${host}"${reason ? ` (${reason})` : ''}.`, {
    hint: `Use the host name the certificate was issued for (the engine's FQDN as set up by engine-setup) in the address${names ? `, for example ${names.split(/,\s*/)[0]}` : ''}; make that name resolve from the appliance.`,
    exitCode: ExitCode.untrusted,
    cause: err,
  });
}
