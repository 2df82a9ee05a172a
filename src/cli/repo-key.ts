import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {openRepo, passphraseHelp, passphraseOptions} from './passphrase.js';

export const repoKeyExport: Command = {
  words: ['repo', 'key', 'export'],
  summary: "Print an encrypted repository's key file, to keep apart from the repository (or on paper)",
  usage: '<path> --passphrase-file F',
  help:
    'Prints the key file: the repository configuration with the master key wrapped under the passphrase.\n' +
    'It is checked to open with the passphrase first. Keep it apart from the repository (printed, or on\n' +
    'another medium): if vmbackup-repository.json is lost or damaged, put this file back in its place\n' +
    'and the repository opens again with the same passphrase. Without the passphrase it reveals nothing.\n\n' +
    `Options:\n${passphraseHelp}\n\nExample:\n  vmbackup repo key export /mnt/offsite/repo --passphrase-file /root/offsite.pass > offsite-key.json`,
  options: {...passphraseOptions},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    if (typeof values['passphrase-file'] !== 'string') {
      throw new UserError('The key file is printed only once the passphrase opens it: give --passphrase-file.', {exitCode: ExitCode.usage});
    }
    const repo = await openRepo(path!, values);
    const keyFile = repo.keyFile();
    ctx.out.result(JSON.parse(keyFile) as unknown, () => keyFile.trimEnd());
  },
};
