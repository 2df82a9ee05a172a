/**
 * Errors the user can act on, as distinct from bugs.
 *
 * A UserError says what is wrong (`message`) and what to do about it (`hint`), and carries a
 * stable exit code so that scripts can tell failures apart. The CLI prints these without a stack
 * trace; anything else that escapes is a bug and is printed with its stack.
 *
 * Exit codes are part of the CLI contract: never renumber one, only add.
 */
export const ExitCode = {
  ok: 0,
  /** Unexpected failure: a bug. */
  internal: 1,
  /** Wrong command-line usage. */
  usage: 2,
  /** A path is not a repository, or the repository cannot be opened. */
  notARepository: 10,
  /** The repository was written by a newer format version. */
  unsupportedVersion: 11,
  /** Another process holds a lock that this operation needs. */
  locked: 12,
  /** A repository file is damaged (bad checksum, truncated). */
  corrupt: 13,
  /** Verify found damaged or missing chunks. */
  verifyFailed: 14,
  /** No space left on the device. */
  noSpace: 15,
  /** Something named by the user does not exist (restore point, VM, disk). */
  notFound: 16,
  /** Invalid input value (a flag or a configuration field). */
  invalidInput: 17,
  /** The disk or file system reported an I/O error (a failed write-back, a failing disk). */
  ioFailed: 18,
  /** The repository is encrypted and its passphrase is missing or wrong. */
  passphrase: 19,
  /** A host, engine or server cannot be reached or refused the connection. */
  unreachable: 20,
  /** Authentication failed (password, token, SSH key). */
  authFailed: 21,
  /** A TLS certificate or SSH host key could not be verified. */
  untrusted: 22,
  /** The hypervisor refused or failed an operation. */
  platformFailed: 23,
  /** The operation was cancelled by the user or a signal. */
  cancelled: 30,
  /** The caller's role does not allow this (an operator asked for an administrator's change). */
  forbidden: 31,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What each exit code means, for the manual pages (src/cli/docgen.ts); every code has one. */
export const EXIT_CODE_MEANINGS: Record<ExitCodeValue, string> = {
  0: 'success',
  1: 'an unexpected failure (a bug: please report it with the command and its output)',
  2: 'wrong command-line usage',
  10: 'the path is not a repository, or the repository cannot be opened',
  11: 'the repository was written by a newer format version',
  12: 'another process holds a lock that this operation needs',
  13: 'a repository file is damaged (bad checksum, truncated)',
  14: 'verify found damaged or missing chunks',
  15: 'no space left on the device',
  16: 'something named does not exist (restore point, VM, disk)',
  17: 'an invalid input value (a flag or a configuration field)',
  18: 'the disk or file system reported an I/O error',
  19: 'the repository is encrypted and its passphrase is missing or wrong',
  20: 'a host, engine or server cannot be reached or refused the connection',
  21: 'authentication failed (password, token, SSH key)',
  22: 'a TLS certificate or SSH host key could not be verified',
  23: 'the hypervisor refused or failed an operation',
  30: 'cancelled by the user or a signal',
  31: "the caller's role does not allow this",
};

export class UserError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;

  constructor(message: string, opts: {hint?: string; exitCode?: ExitCodeValue; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause});
    this.name = 'UserError';
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.invalidInput;
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** Node's system errors carry a `code` such as ENOENT or ENOSPC. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as {code: unknown}).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Turns a system error from writing `path` into a UserError where the user can act on it
 * (a full disk, no permission), and returns anything else unchanged.
 */
export function explainIoError(err: unknown, path: string, action: string): unknown {
  switch (errnoCode(err)) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(`No space left on the device while ${action} (${path}).`, {
        hint: 'Free space on that file system (prune old restore points, then run garbage collection) or use a larger disk, then run the backup again. Committed restore points are unaffected.',
        exitCode: ExitCode.noSpace,
        cause: err,
      });
    case 'EACCES':
    case 'EPERM':
      return new UserError(`Permission denied while ${action} (${path}).`, {
        hint: 'Run as root or as a member of the vmbackup group, or fix the ownership of that path.',
        exitCode: ExitCode.invalidInput,
        cause: err,
      });
    case 'EROFS':
      return new UserError(`The file system is read-only while ${action} (${path}).`, {
        hint: 'Remount it read-write or choose another repository path.',
        exitCode: ExitCode.invalidInput,
        cause: err,
      });
    default:
      return err;
  }
}
