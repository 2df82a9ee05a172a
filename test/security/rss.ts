/** Runs the real `vmbackup` CLI under GNU time and reports its peak RSS with its result. */
import {execa} from 'execa';
import {fileURLToPath} from 'node:url';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function maxRssKiB(args: string[], opts: {timeoutMs?: number} = {}): Promise<{exitCode: number; stdout: string; stderr: string; maxRssKiB: number; ms: number}> {
  const t0 = Date.now();
  const r = await execa('/usr/bin/time', ['-f', 'VMB-MAXRSS %M', process.execPath, CLI_MAIN, ...args], {
    cwd: ROOT,
    reject: false,
    env: {FORCE_COLOR: '0'},
    timeout: opts.timeoutMs ?? 120_000,
    stdin: 'ignore',
  });
  const m = /(?:Command exited with non-zero status \d+\n)?VMB-MAXRSS (\d+)\s*$/.exec(r.stderr);
  if (!m) throw new Error(`no peak RSS from GNU time: ${r.stderr.slice(-400)}`);
  return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr.slice(0, m.index).trimEnd(), maxRssKiB: Number(m[1]), ms: Date.now() - t0};
}
