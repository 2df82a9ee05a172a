/**
 * Starts the console on a terminal. Without a TTY (a pipe, cron, `ssh` without -t) nothing is
 * drawn: the caller gets a message that says how to use the CLI instead (ecosystem P3).
 */
import {render} from 'ink';
import type {ConsoleApi} from './api.js';
import {App} from './app/app.js';
import type {Route} from './router/use-router-state.js';

export const NO_TTY_MESSAGE =
  'vmbackup console needs an interactive terminal (over SSH use ssh -t). Without one, use the CLI: vmbackup --help lists the commands (backup, restore, repo …).';

export function canDraw(stdin: {isTTY?: boolean}, stdout: {isTTY?: boolean}): boolean {
  return Boolean(stdin.isTTY && stdout.isTTY);
}

export async function runConsole(api: ConsoleApi, opts: {first?: Route} = {}): Promise<void> {
  const ink = render(<App api={api} first={opts.first} />, {exitOnCtrlC: true});
  await ink.waitUntilExit();
}
