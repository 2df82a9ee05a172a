/**
 * What a CLI subcommand is: its words, its options, and a run function that calls domain code
 * and hands the result to the printer. One file per subcommand (after restic's cmd_*.go); no
 * business logic here.
 */
import type {ParseArgsConfig} from 'node:util';
import type {Printer} from './output.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  out: Printer;
  json: boolean;
  /** True when stdout is a terminal: progress bars are drawn only then. */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  /** e.g. ['repo', 'create'] */
  words: string[];
  summary: string;
  /** Argument synopsis after the words, e.g. '<path> [--chunk-size 1M]'. */
  usage: string;
  /** Longer help: options and examples. */
  help?: string;
  options: OptionSpec;
  /** Allowed positional count [min, max]. */
  positionals?: [number, number];
  /** Exit codes of its own, for its manual page (else the CLI's table, EXIT_CODE_MEANINGS). */
  exitCodes?: [number, string][];
  run(ctx: CommandContext, values: Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: string[]): Promise<number | void>;
}
