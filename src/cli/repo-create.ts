import {createRepository} from '../repository/index.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';
import {passphraseFrom, passphraseOptions, s3CredentialsFor, sshAccessFor} from './passphrase.js';

export function parseSize(text: string, what: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) throw new UserError(`${what} '${text}' is not a size.`, {hint: 'Write it as bytes or with a unit, e.g. 1M, 512K, 4MiB.', exitCode: ExitCode.usage});
  const unit = (m[2] ?? '').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * factor;
}

export const repoCreate: Command = {
  words: ['repo', 'create'],
  summary: 'Create a new repository in an empty or new directory, in an S3 bucket, or on another appliance over SSH',
  usage: '<path> [--chunk-size 1M] [--encrypt --passphrase-file F]',
  help:
    'Options:\n' +
    '  --chunk-size SIZE       chunk size, a power of two from 64K to 16M (default 1M; 4M in an S3 bucket)\n' +
    '  --encrypt               encrypt everything the repository holds (AES-256-GCM; needs --passphrase-file)\n' +
    '  --passphrase-file FILE  the passphrase: a file of one line (8 to 1024 characters), mode 0600\n' +
    '  --s3-credentials FILE   for a repository in an S3 bucket: lines access_key_id = …, secret_access_key = …,\n' +
    '                          region = … (default us-east-1), ca_file = … (a private CA); mode 0600\n' +
    '  --ssh-key FILE, --ssh-known-hosts FILE, --remote-vmbackup PATH\n' +
    '                          for a repository on another appliance (see "vmbackup repo serve --help")\n\n' +
    'In an S3 bucket the path is s3://HOST[:PORT]/BUCKET[/PREFIX] (HTTPS, certificate verified), or\n' +
    's3+http://HOST:PORT/BUCKET[/PREFIX] for a server on a trusted network; the bucket is made when missing.\n' +
    'On another vmbackup appliance the path is ssh://USER@HOST[:PORT]/PATH: that appliance keeps the files\n' +
    '(it runs "vmbackup repo serve PATH" for each SSH session); this one encrypts, deduplicates and sends.\n\n' +
    'An encrypted repository can be read only with its passphrase: keep it safe, and keep the key file\n' +
    '(vmbackup repo key export) apart from the repository. Every command that reads or writes it takes\n' +
    '--passphrase-file.\n\n' +
    'Examples:\n  vmbackup repo create /srv/backup/repo1\n  vmbackup repo create /mnt/offsite/repo --encrypt --passphrase-file /root/offsite.pass\n' +
    '  vmbackup repo create s3://s3.example.com/backups/site-a --s3-credentials /root/s3.cred --encrypt --passphrase-file /root/offsite.pass',
  options: {'chunk-size': {type: 'string'}, encrypt: {type: 'boolean'}, ...passphraseOptions},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const chunkSize = typeof values['chunk-size'] === 'string' ? parseSize(values['chunk-size'], 'Chunk size') : undefined;
    const passphrase = await passphraseFrom(values);
    if ((values.encrypt === true) !== (passphrase !== undefined)) {
      throw new UserError(values.encrypt === true ? '--encrypt needs --passphrase-file.' : '--passphrase-file is for an encrypted repository: add --encrypt.', {
        hint: 'vmbackup repo create PATH --encrypt --passphrase-file FILE',
        exitCode: ExitCode.usage,
      });
    }
    const s3 = await s3CredentialsFor(path!, values);
    const ssh = sshAccessFor(path!, values);
    const repo = await createRepository(path!, {...(chunkSize !== undefined ? {chunkSize} : {}), ...(passphrase !== undefined ? {passphrase} : {}), ...(s3 ? {s3} : {}), ...(ssh ? {ssh} : {})});
    ctx.out.result({path: repo.path, id: repo.id, chunkSize: repo.chunkSize, formatVersion: repo.formatVersion, encrypted: repo.encrypted}, () =>
      `Created ${repo.encrypted ? 'encrypted ' : ''}repository ${repo.path}\n  id          ${repo.id}\n  chunk size  ${formatBytes(repo.chunkSize)}\n  format      v${repo.formatVersion}` +
      (repo.encrypted ? `\n\nKeep the passphrase safe, and a copy of the key file apart from the repository:\n  vmbackup repo key export ${repo.path} --passphrase-file FILE > key.json` : ''),
    );
  },
};
