/**
 * Output for the CLI: human text by default, JSON with --json (one document on stdout), and the
 * rendering of errors. A UserError prints what is wrong and what to do, with no stack trace, and
 * exits with its stable code; anything else is a bug and shows its stack.
 */
import {ExitCode, isUserError} from '../util/errors.js';
import {terminalSafe} from '../util/format.js';

export interface Printer {
  /** Prints a command's result: the JSON value with --json, else the human text. */
  result(value: unknown, human: () => string): void;
  /** A line of human information (to stderr with --json, so stdout stays one JSON document). */
  info(line: string): void;
  /** A warning line, always to stderr. */
  warn(line: string): void;
  /** Redraws a single progress line on a terminal; nothing otherwise. */
  progress(line: string | undefined): void;
}

export function createPrinter(opts: {json: boolean; stdout: NodeJS.WritableStream & {isTTY?: boolean}; stderr: NodeJS.WritableStream}): Printer {
  const {json, stdout, stderr} = opts;
  const tty = Boolean(stdout.isTTY) && !json;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) {
      stdout.write('\r\x1b[2K');
      progressShown = false;
    }
  };
  return {
    result(value, human) {
      clearProgress();
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else {
        // Human text carries names from hypervisors and repositories: no control characters.
        const text = terminalSafe(human());
        if (text) stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    },
    info(line) {
      clearProgress();
      (json ? stderr : stdout).write(`${terminalSafe(line)}\n`);
    },
    warn(line) {
      clearProgress();
      stderr.write(`warning: ${terminalSafe(line)}\n`);
    },
    progress(line) {
      if (!tty) return;
      if (line === undefined) return clearProgress();
      const width = (stdout as {columns?: number}).columns ?? 80;
      stdout.write(`\r\x1b[2K${terminalSafe(line, {oneLine: true}).slice(0, width - 1)}`);
      progressShown = true;
    },
  };
}

/** Prints an error and returns the exit code. */
export function reportError(err: unknown, opts: {json: boolean; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream}): number {
  if (isUserError(err)) {
    if (opts.json) {
      opts.stdout.write(`${JSON.stringify({error: {message: err.message, hint: err.hint, exitCode: err.exitCode}}, null, 2)}\n`);
    } else {
      opts.stderr.write(`error: ${terminalSafe(err.message)}\n`);
      if (err.hint) opts.stderr.write(`  what to do: ${terminalSafe(err.hint)}\n`);
    }
    return err.exitCode;
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (opts.json) opts.stdout.write(`${JSON.stringify({error: {message: String(err instanceof Error ? err.message : err), exitCode: ExitCode.internal, bug: true}}, null, 2)}\n`);
  opts.stderr.write(`internal error (this is a bug in vmbackup; please report it):\n${terminalSafe(text)}\n`);
  return ExitCode.internal;
}

/** A one-line progress bar: "[#####.....]  42%  120 MiB/s  ETA 1m 05s  label". */
export function progressBar(fraction: number, width = 24): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}
