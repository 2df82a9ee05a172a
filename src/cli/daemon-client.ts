/**
 * The CLI's way to the daemon: a DaemonClient on --socket, $VMBACKUP_SOCKET or the default
 * /run/vmbackup/api.sock, closed after the command. Shared by the daemon subcommands.
 */
import type {DaemonClient} from '../api/client.js';
import type {CommandContext, OptionSpec} from './command.js';

export const socketOption: OptionSpec = {socket: {type: 'string'}};

export async function withDaemon<T>(ctx: CommandContext, values: Record<string, unknown>, fn: (c: DaemonClient) => Promise<T>): Promise<T> {
  const socketPath = typeof values.socket === 'string' ? values.socket : ctx.env.VMBACKUP_SOCKET;
  // Loaded on use: the client pulls in the daemon's API module (undici, execa...), ~80 ms that
  // `vmbackup backup` and the other local commands should not pay at start-up.
  const {DaemonClient} = await import('../api/client.js');
  const client = new DaemonClient({socketPath});
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
