import {copyRestorePoints} from '../repository/index.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';
import {progressBar} from './output.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {onStopSignals} from './stop-signals.js';

export const repoCopy: Command = {
  words: ['repo', 'copy'],
  summary: 'Copy restore points to another repository (a second copy): only what it lacks, resumable',
  usage: '<source path> <target path> [--vm <name or id>] [--restore-point <id>]... [--passphrase-file F] [--target-passphrase-file F]',
  help:
    'Every restore point of the source (or of one VM, or the ones named) that the target does not have\n' +
    'is written there with the same id and time, oldest first. Only chunks the target lacks are stored;\n' +
    "each point's manifest is written last, so an interrupted copy leaves nothing half-visible and the\n" +
    'next run goes on where it stopped. Every chunk read from the source is checked against its id.\n' +
    'Restores work from either repository. The target must exist (vmbackup repo create).\n' +
    'An encrypted target gets new ids for the copies (ids there name no VM); the next copy finds them.\n\n' +
    'Options:\n' +
    '  --passphrase-file F         the passphrase of an encrypted source\n' +
    '  --target-passphrase-file F  the passphrase of an encrypted target\n\n' +
    'Examples:\n' +
    '  vmbackup repo copy /srv/vmbackup/main /mnt/offsite/main\n' +
    '  vmbackup repo copy /srv/vmbackup/main /mnt/offsite/main --vm web01',
  options: {...passphraseOptions, 'target-passphrase-file': {type: 'string'}, vm: {type: 'string'}, 'restore-point': {type: 'string', multiple: true}},
  positionals: [2, 2],
  async run(ctx, values, [from, to]) {
    const source = await openRepo(from!, values);
    const target = await openRepo(to!, values, 'target-passphrase-file');
    const stop = onStopSignals(ctx.out, 'copy');
    let result;
    try {
      result = await copyRestorePoints(source, target, {
        ...(typeof values.vm === 'string' ? {vm: values.vm} : {}),
        ...(values['restore-point'] ? {restorePoints: values['restore-point'] as string[]} : {}),
        signal: stop.signal,
        onProgress: (p) => ctx.out.progress(`copy ${p.vmName} ${progressBar(p.totalBytes ? p.doneBytes / p.totalBytes : 1)} ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}`),
      });
    } catch (err) {
      if (stop.received) {
        throw new UserError(`The copy was stopped (${stop.received}); the restore points copied so far are in the target, the one being copied is not.`, {
          hint: 'Run the same command again: it goes on where it stopped and stores only what the target lacks.',
          exitCode: ExitCode.cancelled,
        });
      }
      throw err;
    } finally {
      stop.dispose();
    }
    ctx.out.result(result, () =>
      [
        ...result.copied.map((c) => `✔ ${c.id}${c.targetId ? ` → ${c.targetId}` : ''} (${c.vmName}): ${formatBytes(c.readBytes)} read, ${c.newChunks} new chunks (${formatBytes(c.newStoredBytes)}) stored`),
        ...(result.present.length ? [`${result.present.length} restore point(s) were there already.`] : []),
        `Copied ${result.copied.length} restore point(s) from ${source.path} to ${target.path}.`,
      ].join('\n'),
    );
  },
};
