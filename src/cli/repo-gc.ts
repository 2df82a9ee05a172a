import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {progressBar} from './output.js';

export const repoGc: Command = {
  words: ['repo', 'gc'],
  summary: 'Garbage collection: delete chunks no restore point references (safe during backups)',
  usage: '<path>',
  options: {...passphraseOptions},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const repo = await openRepo(path, values);
    const result = await repo.gc({onProgress: (p) => ctx.out.progress(`gc ${progressBar(p.total ? p.done / p.total : 0)} ${p.phase}`)});
    ctx.out.result(result, () =>
      [
        ...(result.interrupted ? [`note: ${result.interrupted}`] : []),
        `Removed ${result.removedChunks} chunks (${formatBytes(result.removedBytes)}), ${result.removedTempFiles} temporary files, ${result.removedPartialRestorePoints.length} unfinished restore points.`,
        `${result.referencedChunks} chunks in use; ${result.pendingChunks} unreferenced chunks (${formatBytes(result.pendingBytes)}) are newer than ${result.cutoff} and are kept for running backups.`,
        ...(result.missingChunks > 0 ? [`warning: ${result.missingChunks} referenced chunks are missing — run 'vmbackup repo verify ${repo.path}'.`] : []),
        ...result.damaged.map((d) => `warning: restore point ${d.restorePoint} is damaged (${d.detail}); its chunks were kept.`),
        ...(result.sweepSkipped ? [`warning: no chunk was removed: ${result.sweepSkipped}.`] : []),
      ].join('\n'),
    );
  },
};
