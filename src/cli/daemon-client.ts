/**
 * The CLI's way to the daemon: a DaemonClient on --socket, $VMBACKUP_SOCKET or the default
 * /run/vmbackup/api.sock, closed after the command. Shared by the daemon subcommands.
 */
import {DaemonClient} from '../daemon/client.js';
import type {CommandContext, OptionSpec} from './command.js';

export const socketOption: OptionSpec = {socket: {type: 'string'}};

export async function withDaemon<T>(ctx: CommandContext, values: Record<string, unknown>, fn: (c: DaemonClient) => Promise<T>): Promise<T> {
  const socketPath = typeof values.socket === 'string' ? values.socket : ctx.env.VMBACKUP_SOCKET;
  const client = new DaemonClient({socketPath});
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
