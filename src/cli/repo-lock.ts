import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

export const repoLock: Command = {
  words: ['repo', 'lock'],
  summary: 'Set the retention lock: no restore point younger than N days can be forgotten or pruned',
  usage: '<path> --days <N>',
  help:
    'The lock holds for every way in — this CLI, the daemon, the console — and for --force too. It can be\n' +
    'raised, never lowered or removed by vmbackup. Without --days it shows the lock. On a local disk root\n' +
    'can still delete files; only object storage with Object Lock is immutable against that (an S3\n' +
    'repository\'s bucket is probed for it, and the answer says what holds).\n\n' +
    'Examples:\n' +
    '  vmbackup repo lock /srv/vmbackup/main --days 30\n' +
    '  vmbackup repo lock /srv/vmbackup/main',
  options: {...passphraseOptions, days: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const repo = await openRepo(path!, values);
    if (values.days === undefined) {
      const lock = await repo.retentionLock();
      const scope = await repo.retentionLockScope();
      ctx.out.result({lock: lock ?? null, ...scope}, () => (lock ? `${repo.path} is locked for ${lock.days} days (since ${lock.setAt}).\n${scope.note}` : `${repo.path} has no retention lock.`));
      return;
    }
    const raw = String(values.days);
    if (!/^\d{1,5}$/.test(raw)) throw new UserError(`--days: a whole number of days, not '${raw}'.`, {exitCode: ExitCode.usage});
    const lock = await repo.setRetentionLock(Number(raw));
    const scope = await repo.retentionLockScope();
    ctx.out.result({lock, ...scope}, () => `${repo.path} is locked for ${lock.days} days: no restore point younger than that can be forgotten or pruned.\n${scope.note}`);
  },
};
