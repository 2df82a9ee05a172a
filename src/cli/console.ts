/**
 * `vmbackup console`: the Ink console, a client of the daemon's control API. It opens the
 * first-start walk-through when nothing is configured yet. Without a terminal it prints how to
 * use the CLI instead and exits with the usage code.
 */
import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';

export const consoleCommand: Command = {
  words: ['console'],
  summary: 'Open the interactive console (dashboard, jobs, restore, settings)',
  usage: '[--setup]',
  help: 'Options:\n  --setup   open the first-start walk-through\n\nNeeds a terminal: over SSH use ssh -t. Talks to vmbackupd on VMBACKUP_SOCKET (default /run/vmbackup/api.sock).',
  options: {setup: {type: 'boolean'}},
  positionals: [0, 0],
  async run(ctx, values) {
    // Loaded lazily: the other commands should not pay for React and Ink.
    const {canDraw, runConsole, NO_TTY_MESSAGE} = await import('../console/run.js');
    if (!canDraw(process.stdin, process.stdout)) throw new UserError(NO_TTY_MESSAGE, {exitCode: ExitCode.usage});
    const {consoleApi} = await import('../console/api.js');
    const {DaemonClient} = await import('../api/client.js');
    const client = new DaemonClient({socketPath: ctx.env.VMBACKUP_SOCKET});
    const api = consoleApi(client);
    let first: {name: string} | undefined = values.setup ? {name: 'first-start'} : undefined;
    if (!first) {
      // Nothing configured yet: start with the walk-through. A daemon that is down shows on the dashboard.
      const repos = await api.list('repositories').catch(() => undefined);
      if (repos && repos.length === 0) first = {name: 'first-start'};
    }
    try {
      await runConsole(api, {first});
    } finally {
      await client.close();
    }
  },
};
