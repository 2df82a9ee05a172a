import {createRepository} from '../repository/index.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';

export function parseSize(text: string, what: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) throw new UserError(`${what} '${text}' is not a size.`, {hint: 'Write it as bytes or with a unit, e.g. 1M, 512K, 4MiB.', exitCode: ExitCode.usage});
  const unit = (m[2] ?? '').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * factor;
}

export const repoCreate: Command = {
  words: ['repo', 'create'],
  summary: 'Create a new repository in an empty or new directory',
  usage: '<path> [--chunk-size 1M]',
  help: 'Options:\n  --chunk-size SIZE   chunk size, a power of two from 64K to 16M (default 1M)\n\nExample:\n  vmbackup repo create /srv/backup/repo1',
  options: {'chunk-size': {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const chunkSize = typeof values['chunk-size'] === 'string' ? parseSize(values['chunk-size'], 'Chunk size') : undefined;
    const repo = await createRepository(path, {chunkSize});
    ctx.out.result({path: repo.path, id: repo.id, chunkSize: repo.chunkSize, formatVersion: repo.formatVersion}, () =>
      `Created repository ${repo.path}\n  id          ${repo.id}\n  chunk size  ${formatBytes(repo.chunkSize)}\n  format      v${repo.formatVersion}`,
    );
  },
};
