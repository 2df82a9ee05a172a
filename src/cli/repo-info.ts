import {warnDamagedPoints} from './repo-damage.js';
import {formatBytes, formatRatio} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

export const repoInfo: Command = {
  words: ['repo', 'info'],
  summary: 'Show a repository: restore points, stored size, deduplication, free space',
  usage: '<path>',
  options: {...passphraseOptions},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const repo = await openRepo(path, values);
    await warnDamagedPoints(ctx.out, repo);
    const stats = await repo.stats();
    const vms = new Set((await repo.listRestorePoints()).map((p) => p.vmId)).size;
    ctx.out.result({path: repo.path, id: repo.id, chunkSize: repo.chunkSize, formatVersion: repo.formatVersion, encrypted: repo.encrypted, vms, ...stats}, () =>
      [
        `Repository ${repo.path}`,
        `  id                 ${repo.id}`,
        `  format             v${repo.formatVersion}, chunk size ${formatBytes(repo.chunkSize)}`,
        `  encryption         ${repo.encrypted ? 'AES-256-GCM, keyed chunk ids (HMAC-SHA-256), key from the passphrase (scrypt)' : 'none'}`,
        `  restore points     ${stats.restorePoints} of ${vms} VM(s)`,
        `  logical data       ${formatBytes(stats.logicalBytes)}`,
        `  stored             ${formatBytes(stats.storedBytes)} in ${stats.chunks} chunks`,
        `  deduplication      ${formatRatio(stats.dedupRatio)}`,
        `  compression        ${formatRatio(stats.compressionRatio)}`,
        `  free space         ${formatBytes(stats.freeBytes)} of ${formatBytes(stats.totalBytes)}`,
      ].join('\n'),
    );
  },
};
