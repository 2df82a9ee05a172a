/**
 * Runs commands on a libvirt host over SSH, with the appliance's own key and known_hosts.
 *
 * Same contract as LocalRunner (command-runner.ts). In addition, an ssh-level failure (exit 255
 * with ssh's own message) becomes a UserError: untrusted host key (with the fingerprints the host
 * presents, so the admin can confirm them), authentication failed, or host unreachable.
 */
import {
  CommandError,
  DEFAULT_TIMEOUT_MS,
  displayCommand,
  execArgv,
  redact,
  timeoutError,
  type CommandLog,
  type CommandRunner,
  type RunOptions,
  type RunResult,
} from './command-runner.js';
import {classifySshFailure, describeTarget, sshCommandArgv, sshFailureError, validateTarget, type SshTarget} from './ssh-args.js';
import {ExitCode, UserError} from '../util/errors.js';

export class SshRunner implements CommandRunner {
  readonly where: string;
  readonly target: SshTarget;
  private readonly log: CommandLog;
  private readonly defaultTimeoutMs: number;

  constructor(target: SshTarget, opts: {log?: CommandLog; defaultTimeoutMs?: number} = {}) {
    validateTarget(target);
    this.target = target;
    this.where = describeTarget(target);
    this.log = opts.log ?? (() => {});
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const secrets = opts.secrets ?? [];
    this.log(`$ [${this.where}] ${redact(displayCommand(argv), secrets)}`);
    const r = await execArgv(sshCommandArgv(this.target, argv), opts, this.defaultTimeoutMs);
    if (r.timedOut) throw timeoutError(argv, this.where, opts.timeoutMs ?? this.defaultTimeoutMs, secrets);
    if (r.spawnError) {
      throw new UserError(r.spawnError, {hint: 'Install openssh-client on the appliance.', exitCode: ExitCode.platformFailed});
    }
    if (r.exitCode === 255) {
      const kind = classifySshFailure(r.stderr);
      if (kind !== 'other') throw await this.sshError(kind, r.stderr);
    }
    const result = {stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode};
    if (result.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, this.where, result, secrets);
    return result;
  }

  /** Checks that the host answers and trusts us: runs `true`. */
  async check(): Promise<void> {
    await this.run(['true'], {timeoutMs: 60_000});
  }

  private async sshError(kind: ReturnType<typeof classifySshFailure>, stderr: string): Promise<UserError> {
    let fingerprints: string[] | undefined;
    if (kind === 'untrusted') {
      try {
        // Loaded here only: the scanner pulls in execa, which the runner itself no longer needs.
        const {scanHostKey} = await import('./ssh-host-key.js');
        fingerprints = (await scanHostKey(this.target.host, this.target.port ?? 22)).map((k) => `${k.type} ${k.fingerprint}`);
      } catch {
        fingerprints = undefined; // the message still says what to do without them
      }
    }
    return sshFailureError(this.target, kind, stderr, fingerprints);
  }
}
