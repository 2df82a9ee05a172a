/**
 * The errors the NBD client raises, worded for the person running the backup.
 *
 * - Option (negotiation) error replies become UserErrors: unknown export, TLS required, policy.
 * - Error replies to commands become NbdServerError (a UserError) naming the errno and the
 *   request (command, offset, length), so a session log says exactly which read failed.
 * - A connection that drops or cannot be opened becomes a UserError with the "unreachable" code.
 */
import {ExitCode, UserError} from '../../util/errors.js';
import {COMMAND_NAMES, OptionReplyError, REP_ERR_POLICY, REP_ERR_TLS_REQD, REP_ERR_UNKNOWN, describeErrno} from './protocol.js';

export type NbdAddress = {socketPath: string} | {host: string; port: number};

/** "unix socket /run/x.sock" or "127.0.0.1:10809", for messages. */
export function describeAddress(address: NbdAddress): string {
  return 'socketPath' in address ? `unix socket ${address.socketPath}` : `${address.host}:${address.port}`;
}

/** Describes one request, e.g. "READ at offset 1048576 (length 65536)". */
export function describeRequest(type: number, offset: number, length: number): string {
  const name = COMMAND_NAMES[type] ?? `command ${type}`;
  if (name === 'FLUSH' || name === 'DISC') return name;
  return `${name} at offset ${offset} (length ${length})`;
}

/** The server answered a command with an error. */
export class NbdServerError extends UserError {
  readonly errno: number;
  readonly errnoName: string;
  readonly command: string;
  readonly offset: number;
  readonly length: number;

  constructor(opts: {errno: number; serverMessage?: string; type: number; offset: number; length: number; exportName: string; errorOffset?: number}) {
    const {name, text} = describeErrno(opts.errno);
    const where = opts.errorOffset === undefined ? '' : `, failing at offset ${opts.errorOffset}`;
    const said = opts.serverMessage ? `: ${opts.serverMessage}` : '';
    super(
      `NBD server failed ${describeRequest(opts.type, opts.offset, opts.length)} on export '${opts.exportName}' with ${name} (${text})${where}${said}`,
      {
        hint:
          name === 'ENOSPC'
            ? 'The storage behind the NBD export is full: free space there (or grow the volume) and run the job again.'
            : name === 'EPERM' || name === 'ENOTSUP'
              ? 'The export does not allow this operation (it may be read-only); check how it was exported.'
              : 'Check the storage behind the disk on the host (dmesg, the hypervisor log) and run the job again.',
        exitCode: name === 'ENOSPC' ? ExitCode.noSpace : ExitCode.platformFailed,
      },
    );
    this.name = 'NbdServerError';
    this.errno = opts.errno;
    this.errnoName = name;
    this.command = COMMAND_NAMES[opts.type] ?? String(opts.type);
    this.offset = opts.offset;
    this.length = opts.length;
  }
}

/** The connection ended while `request` (e.g. "READ at offset X (length Y)") was outstanding. */
export function connectionLost(address: NbdAddress, request: string | undefined, cause: unknown): UserError {
  const during = request ? ` during ${request}` : '';
  return new UserError(`NBD server closed the connection${during} (${describeAddress(address)})`, {
    hint: 'The NBD server (qemu-nbd, the VM\'s backup job or nbdkit) stopped or the network failed. Check that the VM and its backup job are still running, then run the job again.',
    exitCode: ExitCode.unreachable,
    cause,
  });
}

export function cannotConnect(address: NbdAddress, cause: unknown): UserError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? ` (${String((cause as {code: unknown}).code)})` : '';
  return new UserError(`Cannot connect to the NBD server at ${describeAddress(address)}${code}`, {
    hint: 'Check that the NBD export is running (qemu-nbd or the libvirt backup job) and that the socket path or host and port are right.',
    exitCode: ExitCode.unreachable,
    cause,
  });
}

export function handshakeTimeout(address: NbdAddress, timeoutMs: number): UserError {
  return new UserError(`The NBD server at ${describeAddress(address)} did not finish the handshake within ${timeoutMs} ms`, {
    hint: 'The server may be overloaded or not be an NBD server; check the host and the port.',
    exitCode: ExitCode.unreachable,
  });
}

/** An error reply to a negotiation option, turned into something a user can act on. */
export function optionError(opts: {option: string; reply: number; serverMessage: string; exportName: string; address: NbdAddress}): UserError {
  const where = describeAddress(opts.address);
  const said = opts.serverMessage ? `: ${opts.serverMessage}` : '';
  switch (opts.reply) {
    case REP_ERR_UNKNOWN:
      return new UserError(`NBD export '${opts.exportName}' does not exist on ${where}${said}`, {
        hint: 'Check the export name: a libvirt backup job exports each disk under its target name (vda, sdb...), qemu-nbd under its -x name (empty by default).',
        exitCode: ExitCode.notFound,
      });
    case REP_ERR_TLS_REQD:
      return new UserError(`The NBD server at ${where} requires TLS for export '${opts.exportName}'${said}`, {
        hint: 'Configure TLS for this connection (a CA certificate that signed the server certificate).',
        exitCode: ExitCode.untrusted,
      });
    case REP_ERR_POLICY:
      return new UserError(`The NBD server at ${where} refused ${opts.option} for export '${opts.exportName}' by policy${said}`, {
        hint: 'The server does not allow this client or this export; check the server configuration.',
        exitCode: ExitCode.platformFailed,
      });
    default:
      return new UserError(
        `The NBD server at ${where} rejected ${opts.option} for export '${opts.exportName}' with ${OptionReplyError[opts.reply] ?? `reply 0x${opts.reply.toString(16)}`}${said}`,
        {hint: 'The server may be too old for this client (it needs fixed newstyle negotiation and NBD_OPT_GO, QEMU 2.10 or later).', exitCode: ExitCode.platformFailed},
      );
  }
}
