/** Runs the real `vmbackup` CLI as a child process (Node 24, compiled dist/: test/lib/dist.ts), as a user would. */
import {execa} from 'execa';
import {fileURLToPath} from 'node:url';
import {CLI_MAIN} from './dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function vmbackup(args: string[], opts: {env?: Record<string, string>; timeoutMs?: number} = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [CLI_MAIN, ...args], {
    cwd: ROOT,
    reject: false,
    env: {...opts.env, FORCE_COLOR: '0'},
    timeout: opts.timeoutMs ?? 120_000,
    stdin: 'ignore',
  });
  return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr};
}
