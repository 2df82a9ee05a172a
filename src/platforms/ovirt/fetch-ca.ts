/**
 * Downloads the engine CA for the administrator to confirm (trust on first use).
 *
 * The engine publishes its CA unauthenticated at /ovirt-engine/services/pki-resource
 * (docs/reference/ovirt-backup-api.md §2.3). The download itself cannot be trusted, so the caller shows the
 * SHA-256 fingerprint and stores the PEM only after the administrator confirmed it.
 */
import {X509Certificate} from 'node:crypto';
import {Agent, request} from 'undici';
import {ExitCode, UserError} from '../../util/errors.js';
import {normalizeEngineUrl} from './engine-url.js';
import {isConnectError, unreachable} from '../../transports/imageio/net-errors.js';

export interface EngineCa {
  pem: string;
  /** SHA-256 of the DER certificate as colon-separated hex (AA:BB:...), as openssl prints it. */
  fingerprint: string;
  subject: string;
  validTo: string;
}

export function describeCa(pem: string): EngineCa {
  const cert = new X509Certificate(pem);
  return {pem, fingerprint: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ', '), validTo: cert.validTo};
}

export async function fetchEngineCa(url: string, opts: {timeoutMs?: number} = {}): Promise<EngineCa> {
  const base = normalizeEngineUrl(url);
  const target = `${base}/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`;
  // Not verified on purpose: this is the download the administrator is asked to confirm.
  const agent = new Agent({connect: {rejectUnauthorized: false, timeout: opts.timeoutMs ?? 15_000}});
  try {
    let res;
    try {
      res = await request(target, {dispatcher: agent, headersTimeout: opts.timeoutMs ?? 15_000});
    } catch (err) {
      if (isConnectError(err)) throw unreachable('the engine', base, err);
      throw err;
    }
    const text = await res.body.text();
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
    if (res.statusCode !== 200 || !pem) {
      throw new UserError(`${base} did not return an engine CA certificate (HTTP ${res.statusCode}).`, {
        hint: 'Check that the address is the oVirt/OLVM engine (https://engine.example.com), not a host or another web server.',
        exitCode: ExitCode.platformFailed,
      });
    }
    return describeCa(pem + '\n');
  } finally {
    await agent.close();
  }
}
