/**
 * The passphrase of an encrypted repository on the command line: `--passphrase-file FILE`, a
 * file of one line that only its owner may read (a passphrase never goes on the command line,
 * where `ps` shows it to everyone). Every command that opens a repository takes it.
 */
import {open} from 'node:fs/promises';
import {checkPassphrase, openRepository, type Repository} from '../repository/index.js';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import type {OptionSpec} from './command.js';

export const passphraseOptions: OptionSpec = {'passphrase-file': {type: 'string'}};

export const passphraseHelp = '  --passphrase-file FILE  the passphrase of an encrypted repository: a file of one line, mode 0600';

/** Reads a passphrase file: a regular file of at most 4 KiB that group and others cannot read. */
export async function readPassphraseFile(file: string): Promise<string> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new UserError(`The passphrase file ${file} is not a regular file.`, {exitCode: ExitCode.invalidInput});
      if ((st.mode & 0o077) !== 0) {
        throw new UserError(`The passphrase file ${file} can be read by others (mode ${(st.mode & 0o777).toString(8)}).`, {
          hint: `Make it private first: chmod 600 ${file}`,
          exitCode: ExitCode.invalidInput,
        });
      }
      if (st.size > 4096) throw new UserError(`The passphrase file ${file} is larger than 4 KiB: not a passphrase file.`, {exitCode: ExitCode.invalidInput});
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    throw new UserError(`Cannot read the passphrase file ${file}: ${code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : String((err as Error).message)}.`, {
      exitCode: ExitCode.invalidInput,
    });
  }
  return checkPassphrase(text, `The passphrase in ${file}`);
}

/** The passphrase named by option `name` (default --passphrase-file), or undefined when not given. */
export async function passphraseFrom(values: Record<string, unknown>, name = 'passphrase-file'): Promise<string | undefined> {
  const file = values[name];
  return typeof file === 'string' ? readPassphraseFile(file) : undefined;
}

/** Opens the repository at `path` with the passphrase given by option `name`, if any. */
export async function openRepo(path: string, values: Record<string, unknown>, name = 'passphrase-file'): Promise<Repository> {
  const passphrase = await passphraseFrom(values, name);
  return openRepository(path, passphrase !== undefined ? {passphrase} : {});
}
