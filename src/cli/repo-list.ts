import {warnDamagedPoints} from './repo-damage.js';
import {formatBytes, formatTable, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

export const repoList: Command = {
  words: ['repo', 'list'],
  summary: 'List the restore points of a repository (optionally of one VM)',
  usage: '<path> [--vm <name or id>]',
  options: {...passphraseOptions, vm: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const repo = await openRepo(path, values);
    await warnDamagedPoints(ctx.out, repo);
    let points = await repo.listRestorePoints();
    const vm = values.vm;
    if (typeof vm === 'string') points = points.filter((p) => p.vmId === vm || p.vmName === vm);
    ctx.out.result(points, () => {
      if (points.length === 0) return typeof vm === 'string' ? `No restore points of VM '${vm}'.` : 'No restore points yet.';
      return formatTable(
        ['ID', 'VM', 'TIME', 'TYPE', 'DISKS', 'SIZE', 'STORED', ''],
        points.map((p) => [
          p.id,
          p.vmName,
          formatTime(p.time),
          p.type,
          String(p.disks.length),
          formatBytes(p.logicalSize),
          formatBytes(p.storedSize),
          p.protected ? 'protected' : '',
        ]),
      );
    });
  },
};
