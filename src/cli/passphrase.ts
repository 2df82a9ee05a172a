/**
 * The secrets of a repository on the command line, always in files that only their owner may
 * read (a secret never goes on the command line, where `ps` shows it to everyone): the
 * passphrase of an encrypted repository (`--passphrase-file FILE`, one line) and the credentials
 * of a repository in an S3 bucket (`--s3-credentials FILE`, s3-client.ts parseS3Credentials);
 * and how to log in to another appliance that keeps one (`--ssh-key`, `--ssh-known-hosts`,
 * `--remote-vmbackup`: files and a path, no secret). Every command that opens a repository takes them.
 */
import {existsSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {homedir} from 'node:os';
import {isAbsolute, join} from 'node:path';
import {checkPassphrase, isS3Url, openRepository, parseS3Credentials, type Repository, type S3Credentials, type SshRepositoryAccess} from '../repository/index.js';
import {isSshUrl} from '../util/ssh-url.js';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import type {OptionSpec} from './command.js';

export const passphraseOptions: OptionSpec = {
  'passphrase-file': {type: 'string'},
  's3-credentials': {type: 'string'},
  'ssh-key': {type: 'string'},
  'ssh-known-hosts': {type: 'string'},
  'remote-vmbackup': {type: 'string'},
};

export const passphraseHelp =
  '  --passphrase-file FILE  the passphrase of an encrypted repository: a file of one line, mode 0600\n' +
  '  --s3-credentials FILE   the credentials of a repository in an S3 bucket (s3://HOST[:PORT]/BUCKET[/PREFIX]):\n' +
  '                          lines access_key_id = …, secret_access_key = …, region = …; mode 0600\n' +
  '  --ssh-key FILE          for a repository on another appliance (ssh://USER@HOST[:PORT]/PATH): the\n' +
  '                          private key to log in with (default ~/.ssh/id_ed25519)\n' +
  "  --ssh-known-hosts FILE  the far machine's host key (default ~/.ssh/known_hosts; never trusted unseen)\n" +
  '  --remote-vmbackup PATH  the vmbackup command on the far machine (default: vmbackup)';

/** Reads a passphrase file: a regular file of at most 4 KiB that group and others cannot read. */
export async function readPassphraseFile(file: string): Promise<string> {
  return checkPassphrase(await readPrivateFile(file, 'passphrase'), `The passphrase in ${file}`);
}

/** Reads an S3 credentials file (private like a passphrase file). */
export async function readS3CredentialsFile(file: string): Promise<S3Credentials> {
  return parseS3Credentials(await readPrivateFile(file, 'credentials'), `The credentials file ${file}`);
}

/** A regular file of at most 4 KiB that group and others cannot read, as text. */
async function readPrivateFile(file: string, what: 'passphrase' | 'credentials'): Promise<string> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new UserError(`The ${what} file ${file} is not a regular file.`, {exitCode: ExitCode.invalidInput});
      if ((st.mode & 0o077) !== 0) {
        throw new UserError(`The ${what} file ${file} can be read by others (mode ${(st.mode & 0o777).toString(8)}).`, {
          hint: `Make it private first: chmod 600 ${file}`,
          exitCode: ExitCode.invalidInput,
        });
      }
      if (st.size > 4096) throw new UserError(`The ${what} file ${file} is larger than 4 KiB: not a ${what} file.`, {exitCode: ExitCode.invalidInput});
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    throw new UserError(`Cannot read the ${what} file ${file}: ${code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : String((err as Error).message)}.`, {
      exitCode: ExitCode.invalidInput,
    });
  }
  return text;
}

/** The passphrase named by option `name` (default --passphrase-file), or undefined when not given. */
export async function passphraseFrom(values: Record<string, unknown>, name = 'passphrase-file'): Promise<string | undefined> {
  const file = values[name];
  return typeof file === 'string' ? readPassphraseFile(file) : undefined;
}

/** The S3 credentials (--s3-credentials) when `path` is an S3 repository and they were given. */
export async function s3CredentialsFor(path: string, values: Record<string, unknown>): Promise<S3Credentials | undefined> {
  const file = values['s3-credentials'];
  return isS3Url(path) && typeof file === 'string' ? readS3CredentialsFile(file) : undefined;
}

/** How to log in to the far appliance when `path` is an SSH repository (ssh://…). */
export function sshAccessFor(path: string, values: Record<string, unknown>): SshRepositoryAccess | undefined {
  if (!isSshUrl(path)) return undefined;
  const home = join(homedir(), '.ssh');
  const identityFile = typeof values['ssh-key'] === 'string' ? values['ssh-key'] : join(home, 'id_ed25519');
  const knownHostsFile = typeof values['ssh-known-hosts'] === 'string' ? values['ssh-known-hosts'] : join(home, 'known_hosts');
  if (!existsSync(identityFile)) {
    throw new UserError(`The SSH key file ${identityFile} does not exist.`, {hint: 'Give the key that may log in to the far appliance with --ssh-key FILE.', exitCode: ExitCode.usage});
  }
  if (!existsSync(knownHostsFile)) {
    throw new UserError(`The known_hosts file ${knownHostsFile} does not exist: the far machine's host key cannot be checked.`, {
      hint: "Give a known_hosts file that holds the far machine's key with --ssh-known-hosts FILE (check the key's fingerprint on that machine first).",
      exitCode: ExitCode.usage,
    });
  }
  const remote = values['remote-vmbackup'];
  if (remote !== undefined && (typeof remote !== 'string' || !isAbsolute(remote) || !/^[A-Za-z0-9._/+-]+$/.test(remote))) {
    throw new UserError(`--remote-vmbackup must be an absolute path (letters, digits, . _ / + -), not "${String(remote)}".`, {exitCode: ExitCode.usage});
  }
  return {identityFile, knownHostsFile, ...(typeof remote === 'string' ? {command: [remote]} : {})};
}

/** Opens the repository at `path` with the passphrase given by option `name`, if any (and the S3 credentials or SSH login its kind needs). */
export async function openRepo(path: string, values: Record<string, unknown>, name = 'passphrase-file'): Promise<Repository> {
  const passphrase = await passphraseFrom(values, name);
  const s3 = await s3CredentialsFor(path, values);
  const ssh = sshAccessFor(path, values);
  return openRepository(path, {...(passphrase !== undefined ? {passphrase} : {}), ...(s3 ? {s3} : {}), ...(ssh ? {ssh} : {})});
}
