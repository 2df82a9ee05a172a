/**
 * The compiled program the tests run as child processes: `dist/`, built from this checkout by
 * test/global-setup.ts before any test file starts. Compiled code, not `node --import tsx`: every
 * CLI call, daemon and chunk worker would otherwise load the TypeScript loader again (about a third
 * of a second of CPU each, some hundreds of times per suite run).
 */
import {fileURLToPath} from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const DAEMON_MAIN = fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url));

/** `node dist/cli/main.js ARGS…` as an argument array: [execPath, main, ...args]. */
export function cliArgv(...args: string[]): string[] {
  return [process.execPath, CLI_MAIN, ...args];
}
