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
