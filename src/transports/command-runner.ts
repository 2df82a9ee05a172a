/**
 * The one way the appliance runs programs (virsh, qemu-img, qemu-nbd, ssh): execa with argument
 * arrays, never a shell string.
 *
 * Contract of every CommandRunner:
 * - the command line is written to the log callback before it runs, with secrets replaced by ***;
 * - stdout and stderr are captured and returned;
 * - a non-zero exit throws CommandError (a UserError, ExitCode.platformFailed) carrying stderr,
 *   unless `allowFailure` is set, in which case the result carries the exit code;
 * - a timeout throws a UserError that names the command.
 * The SSH implementation (ssh-runner.ts) runs the same argv on a remote host.
 */
import {execa} from 'execa';
import {ExitCode, UserError} from '../util/errors.js';

export interface RunOptions {
  /** Kill the command after this many milliseconds (default: the runner's default, 10 minutes). */
  timeoutMs?: number;
  /** Data written to the command's stdin. */
  input?: string | Buffer;
  /** Strings that must never reach the log (passwords, tokens); replaced by ***. */
  secrets?: string[];
  /** Return a non-zero exit as a result instead of throwing. */
  allowFailure?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CommandRunner {
  /** Where commands run, for messages: "local" or "root@host:22". */
  readonly where: string;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

export type CommandLog = (line: string) => void;

/** A command exited non-zero. `stderr` is what it said; the message carries its first lines. */
export class CommandError extends UserError {
  readonly argv: readonly string[];
  readonly commandExitCode: number;
  readonly stderr: string;
  readonly stdout: string;

  constructor(argv: readonly string[], where: string, result: RunResult, secrets: readonly string[] = []) {
    const said = firstLines(result.stderr || result.stdout, 3);
    super(
      `${redact(displayCommand(argv), secrets)} failed on ${where} (exit ${result.exitCode})${said ? `: ${redact(said, secrets)}` : ''}`,
      {
        hint: 'Read the message of the command above; fix the cause on the host (VM state, disk path, permissions) and run again.',
        exitCode: ExitCode.platformFailed,
      },
    );
    this.name = 'CommandError';
    this.argv = argv;
    this.commandExitCode = result.exitCode;
    this.stderr = result.stderr;
    this.stdout = result.stdout;
  }
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** Replaces every occurrence of every secret by ***. Empty secrets are ignored. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

/** A command line as a human would type it into a POSIX shell (for logs and messages only). */
export function displayCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : shellQuote(a))).join(' ');
}

/** POSIX single-quoting: the result is one word for any sh-compatible shell, whatever `s` holds. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function firstLines(text: string, n: number): string {
  return text.trim().split('\n').slice(0, n).join(' / ');
}

interface ExecaOutcome {
  stdout?: unknown;
  stderr?: unknown;
  exitCode?: number;
  timedOut?: boolean;
  code?: string;
  isCanceled?: boolean;
}

/**
 * Runs argv[0] with argv[1..] on this machine. Shared by the local and the SSH runner: the SSH one
 * only builds a different argv. Returns the raw outcome; `onFailure` decides what a failure means.
 */
export async function execArgv(
  argv: readonly string[],
  opts: RunOptions,
  defaultTimeoutMs: number,
): Promise<RunResult & {timedOut: boolean; spawnError?: string}> {
  if (argv.length === 0) throw new Error('execArgv: empty argv');
  const [file, ...args] = argv;
  const result = (await execa(file!, args, {
    reject: false,
    timeout: opts.timeoutMs ?? defaultTimeoutMs,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    stripFinalNewline: false,
    encoding: 'utf8',
    // A remote virsh that waits on a prompt must not hang: no terminal, ever.
    env: {LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8'},
  })) as ExecaOutcome;
  const spawnError = result.code === 'ENOENT' ? `${file} is not installed (not found on PATH)` : undefined;
  return {
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
    exitCode: result.exitCode ?? -1,
    timedOut: result.timedOut === true,
    spawnError,
  };
}

export function timeoutError(argv: readonly string[], where: string, timeoutMs: number, secrets: readonly string[]): UserError {
  return new UserError(
    `${redact(displayCommand(argv), secrets)} on ${where} did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped.`,
    {
      hint: 'Check that the host is responsive (load, storage, a stuck libvirt job) and run again; a guest agent that hangs can be skipped by turning off guest consistency.',
      exitCode: ExitCode.platformFailed,
    },
  );
}

/** Runs commands on the appliance itself. */
export class LocalRunner implements CommandRunner {
  readonly where = 'local';
  private readonly log: CommandLog;
  private readonly defaultTimeoutMs: number;

  constructor(opts: {log?: CommandLog; defaultTimeoutMs?: number} = {}) {
    this.log = opts.log ?? (() => {});
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const secrets = opts.secrets ?? [];
    this.log(`$ ${redact(displayCommand(argv), secrets)}`);
    const r = await execArgv(argv, opts, this.defaultTimeoutMs);
    if (r.timedOut) throw timeoutError(argv, this.where, opts.timeoutMs ?? this.defaultTimeoutMs, secrets);
    if (r.spawnError) {
      throw new UserError(r.spawnError, {
        hint: 'Install the package that provides it on this machine (see appliance/packages.txt).',
        exitCode: ExitCode.platformFailed,
      });
    }
    const result = {stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode};
    if (result.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, this.where, result, secrets);
    return result;
  }
}
