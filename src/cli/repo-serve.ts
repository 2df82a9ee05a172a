import {serveRepositoryDirectory} from '../repository/index.js';
import type {Command} from './command.js';

export const repoServe: Command = {
  words: ['repo', 'serve'],
  summary: 'Serve a repository directory to another appliance over this SSH session (its stdin/stdout)',
  usage: '<path>',
  help:
    'The far end of a repository at ssh://USER@HOST[:PORT]/PATH: another appliance that copies restore\n' +
    'points here (a copy job, "vmbackup repo copy") starts this command through SSH and speaks to it on\n' +
    'stdin/stdout; it is not meant to be run by hand. It serves PATH only (never a file outside it), holds\n' +
    "the other appliance's locks while the session lasts, and ends with the session. The repository is an\n" +
    'ordinary one of this appliance: restore from it here with the usual commands.\n\n' +
    'Set it up once on this appliance, as root: a user of its own, the directory, and the other\n' +
    "appliance's key (vmbackup appliance ssh-key there) pinned to this command and directory:\n" +
    '  useradd --system --create-home --shell /bin/sh vmbackup-copy && usermod -p \'*\' vmbackup-copy\n' +
    '  install -d -o vmbackup-copy -g vmbackup-copy -m 0700 /srv/vmbackup/copy\n' +
    '  install -d -o vmbackup-copy -g vmbackup-copy -m 0700 ~vmbackup-copy/.ssh\n' +
    '  echo \'command="vmbackup repo serve /srv/vmbackup/copy",restrict ssh-ed25519 AAAA… vmbackup@appliance-a\' \\\n' +
    '    >> ~vmbackup-copy/.ssh/authorized_keys && chown vmbackup-copy: ~vmbackup-copy/.ssh/authorized_keys\n' +
    '(usermod -p \'*\': a system user\'s "!" password makes an sshd without PAM refuse even its keys.)\n\n' +
    'Example (on appliance A, with B as above):\n' +
    '  vmbackup repo create ssh://vmbackup-copy@b.example.com/srv/vmbackup/copy\n' +
    '  vmbackup repo copy /srv/vmbackup/main ssh://vmbackup-copy@b.example.com/srv/vmbackup/copy',
  options: {},
  positionals: [1, 1],
  async run(_ctx, _values, [path]) {
    await serveRepositoryDirectory(path!, process.stdin, process.stdout);
  },
};
