/**
 * Opens the byte stream an NBD connection runs over: a unix socket or TCP, and the TLS upgrade
 * after NBD_OPT_STARTTLS. Connection failures become UserErrors naming the address.
 */
import net from 'node:net';
import tls from 'node:tls';
import {ExitCode, UserError} from '../../util/errors.js';
import {cannotConnect, describeAddress, type NbdAddress} from './errors.js';

/**
 * Connects. With `onread`, received bytes land in one reused 1 MiB buffer and are handed to the
 * callback (no 'data' events, no allocation per 64 KiB read): the fast path for READ payloads.
 */
export function openSocket(address: NbdAddress, timeoutMs: number, onread?: (chunk: Buffer) => boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const read = onread ? {onread: {buffer: Buffer.allocUnsafe(1024 * 1024), callback: (n: number, buf: Uint8Array) => onread(Buffer.from(buf.buffer, buf.byteOffset, n))}} : {};
    const socket = 'socketPath' in address ? net.connect({path: address.socketPath, ...read}) : net.connect({host: address.host, port: address.port, ...read});
    const onError = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(cannotConnect(address, err));
    };
    const timer = setTimeout(() => onError(Object.assign(new Error(`no answer within ${timeoutMs} ms`), {code: 'ETIMEDOUT'})), timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Requests are small and latency-bound; Nagle would hold them back (proto.md).
      if (!('socketPath' in address)) socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** The TLS handshake over an NBD socket after STARTTLS was acknowledged. Certificates are verified. */
export function upgradeToTls(
  socket: net.Socket,
  address: NbdAddress,
  opts: {ca?: string | Buffer; servername?: string},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const servername = opts.servername ?? ('host' in address && net.isIP(address.host) === 0 ? address.host : undefined);
    const secure = tls.connect({
      socket,
      ca: opts.ca,
      servername,
      rejectUnauthorized: true,
      // An IP address or unix socket has no name to check unless the caller gave one.
      checkServerIdentity: servername === undefined ? () => undefined : tls.checkServerIdentity,
    });
    const onError = (err: Error) => {
      secure.destroy();
      reject(
        new UserError(`TLS handshake with the NBD server at ${describeAddress(address)} failed: ${err.message}`, {
          hint: 'Give the CA certificate that signed the server certificate, and the server name it was issued for.',
          exitCode: ExitCode.untrusted,
          cause: err,
        }),
      );
    };
    secure.once('error', onError);
    secure.once('secureConnect', () => {
      secure.off('error', onError);
      resolve(secure);
    });
  });
}
