import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {openRepo, passphraseFrom, passphraseHelp, passphraseOptions} from './passphrase.js';

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

export const repoKeyChange: Command = {
  words: ['repo', 'key', 'change'],
  summary: 'Change the passphrase of an encrypted repository',
  usage: '<path> --passphrase-file OLD --new-passphrase-file NEW',
  help:
    'Wraps the repository\'s key under the new passphrase and writes its configuration; from then on it\n' +
    'opens with the new passphrase only. The data is not encrypted again: a key file exported before\n' +
    '(vmbackup repo key export) still opens with the old passphrase, so destroy old key files, and export\n' +
    'a new one. To shut out someone who knew the old passphrase and kept a key file, make a new encrypted\n' +
    'repository and copy the restore points into it (vmbackup repo copy). A daemon that keeps the old\n' +
    'passphrase for this repository needs the new one (console: Repositories, or the API).\n\n' +
    'Options:\n' +
    '  --passphrase-file OLD      the passphrase now (one line, mode 0600)\n' +
    '  --new-passphrase-file NEW  the new passphrase (one line, 8 to 1024 characters, mode 0600)\n\n' +
    'Example:\n  vmbackup repo key change /mnt/offsite/repo --passphrase-file /root/old.pass --new-passphrase-file /root/new.pass',
  options: {...passphraseOptions, 'new-passphrase-file': {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    if (typeof values['passphrase-file'] !== 'string' || typeof values['new-passphrase-file'] !== 'string') {
      throw new UserError('Give both the passphrase now (--passphrase-file) and the new one (--new-passphrase-file).', {exitCode: ExitCode.usage});
    }
    const next = await passphraseFrom(values, 'new-passphrase-file');
    const repo = await openRepo(path!, values);
    await repo.changePassphrase(next!);
    ctx.out.result({path: repo.path, changed: true}, () => `The passphrase of ${repo.path} is changed. Export a new key file now (vmbackup repo key export) and destroy the old ones.`);
  },
};
