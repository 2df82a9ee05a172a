/**
 * The CLI dispatcher: finds the subcommand by its words, parses its options strictly, runs it,
 * and turns errors into messages and exit codes. Kept free of I/O defaults so that tests can
 * run it in process with their own streams.
 */
import {parseArgs} from 'node:util';
import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {commands} from './commands.js';
import {createPrinter, reportError} from './output.js';

export interface RunIo {
  stdout: NodeJS.WritableStream & {isTTY?: boolean};
  stderr: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

/** One version for the command and the daemon (src/daemon/version.ts; the Debian build stamps it). */
export {VERSION} from '../daemon/version.js';
import {VERSION} from '../daemon/version.js';

function findCommand(argv: string[]): {command: Command; rest: string[]} | undefined {
  let best: {command: Command; rest: string[]} | undefined;
  for (const command of commands) {
    const n = command.words.length;
    if (argv.length >= n && command.words.every((w, i) => argv[i] === w)) {
      if (!best || n > best.command.words.length) best = {command, rest: argv.slice(n)};
    }
  }
  return best;
}

export function usageOf(command: Command): string {
  return `usage: vmbackup ${command.words.join(' ')} ${command.usage}`.trimEnd();
}

function overview(): string {
  const width = Math.max(...commands.map((c) => c.words.join(' ').length));
  return [
    'vmbackup — backup appliance for KVM virtualization (OLVM/oVirt, Morpheus VM Essentials)',
    '',
    'usage: vmbackup <command> [options]        add --json for machine-readable output',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.words.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    "Run 'vmbackup <command> --help' for a command's options.",
  ].join('\n');
}

export async function run(argv: string[], io: RunIo): Promise<number> {
  const json = argv.includes('--json');
  const out = createPrinter({json, stdout: io.stdout, stderr: io.stderr});
  try {
    if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
      io.stdout.write(`${overview()}\n`);
      return ExitCode.ok;
    }
    if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
      io.stdout.write(`vmbackup ${VERSION} (node ${process.version})\n`);
      return ExitCode.ok;
    }
    const found = findCommand(argv);
    if (!found) {
      throw new UserError(`Unknown command: vmbackup ${argv.filter((a) => !a.startsWith('-')).join(' ')}`, {
        hint: "Run 'vmbackup --help' for the list of commands.",
        exitCode: ExitCode.usage,
      });
    }
    const {command, rest} = found;
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(`${usageOf(command)}\n\n${command.summary}\n${command.help ? `\n${command.help}\n` : ''}`);
      return ExitCode.ok;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: {...command.options, json: {type: 'boolean'}},
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UserError(`${(err as Error).message.replace(/\. To specify.*$/s, '')}`, {
        hint: `${usageOf(command)} — see 'vmbackup ${command.words.join(' ')} --help'.`,
        exitCode: ExitCode.usage,
      });
    }
    const [min, max] = command.positionals ?? [0, 0];
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw new UserError(
        parsed.positionals.length < min ? 'Missing argument.' : `Unexpected argument: ${parsed.positionals.slice(max).join(' ')}`,
        {hint: usageOf(command), exitCode: ExitCode.usage},
      );
    }
    const code = await command.run(
      {out, json, interactive: Boolean(io.stdout.isTTY) && !json, env: io.env ?? process.env},
      parsed.values as Record<string, string | boolean | undefined>,
      parsed.positionals,
    );
    return code ?? ExitCode.ok;
  } catch (err) {
    out.progress(undefined);
    return reportError(err, {json, stdout: io.stdout, stderr: io.stderr});
  }
}
