/**
 * Opens the byte stream an NBD connection runs over: a unix socket or TCP, and the TLS upgrade
 * after NBD_OPT_STARTTLS. Connection failures become UserErrors naming the address.
 */
import net from 'node:net';
import tls from 'node:tls';
import {ExitCode, UserError} from '../../util/errors.js';
import {cannotConnect, describeAddress, type NbdAddress} from './errors.js';

/**
 * Connects. With `reader`, each read lands in the buffer the reader chooses (ByteReader
 * readBuffer(): a waiting READ's destination or a reused scratch buffer) and is handed to it (no
 * 'data' events, no allocation per read): the fast path for READ payloads.
 */
export function openSocket(address: NbdAddress, timeoutMs: number, reader?: {readBuffer(): Buffer; feed(chunk: Buffer): boolean}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const read = reader ? {onread: {buffer: () => reader.readBuffer(), callback: (n: number, buf: Uint8Array) => reader.feed(Buffer.from(buf.buffer, buf.byteOffset, n))}} : {};
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

/**
 * The TLS handshake over an NBD socket after STARTTLS was acknowledged. The certificate chain is
 * always verified (against `ca`, or the system CAs). The certificate must also name the server:
 * `servername` when given, else the TCP host (a DNS name or an IP address SAN). A unix socket has
 * no name of its own, so there only the chain is checked unless a servername is given.
 * `cert`/`key` present a client certificate, which QEMU's TLS NBD servers ask for by default.
 */
export function upgradeToTls(
  socket: net.Socket,
  address: NbdAddress,
  opts: {ca?: string | Buffer; servername?: string; cert?: string | Buffer; key?: string | Buffer},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const identity = opts.servername ?? ('host' in address ? address.host : undefined);
    const secure = tls.connect({
      socket,
      ca: opts.ca,
      // QEMU's x509 credentials verify the client by default (verify-peer=on), as libvirt sets up.
      cert: opts.cert,
      key: opts.key,
      // SNI carries names only, never IP addresses.
      servername: identity !== undefined && net.isIP(identity) === 0 ? identity : undefined,
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => (identity === undefined ? undefined : tls.checkServerIdentity(identity, cert)),
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
