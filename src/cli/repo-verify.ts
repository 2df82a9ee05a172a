import {ExitCode} from '../util/errors.js';
import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {progressBar} from './output.js';

export const repoVerify: Command = {
  words: ['repo', 'verify'],
  summary: 'Re-read and re-hash every chunk of the chosen restore points; quarantine damage',
  usage: '<path> [--restore-point <id>]... [--vm <name or id>]',
  help:
    'Damaged chunks are moved to quarantine so that the next backup of the affected VMs writes\n' +
    'them again. Exit code 14 when anything is damaged or missing.',
  options: {...passphraseOptions, 'restore-point': {type: 'string', multiple: true}, vm: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const repo = await openRepo(path, values);
    let ids = values['restore-point'] as string[] | undefined;
    if (typeof values.vm === 'string') {
      const vm = values.vm;
      ids = (await repo.listRestorePoints()).filter((p) => p.vmId === vm || p.vmName === vm).map((p) => p.id);
    }
    const report = await repo.verify({
      restorePoints: ids,
      onProgress: (p) => ctx.out.progress(`verify ${progressBar(p.total ? p.done / p.total : 0)} ${p.phase}`),
    });
    ctx.out.result(report, () => {
      const lines = [
        `Checked ${report.checkedChunks} chunks (${formatBytes(report.checkedBytes)}) in ${report.restorePoints.length} restore point(s).`,
      ];
      for (const p of report.manifestProblems) lines.push(`✖ restore point ${p.restorePoint}: ${p.detail}`);
      for (const p of report.indexProblems) lines.push(`✖ index of disk ${p.disk} in ${p.restorePoint} (${p.file}): ${p.detail}`);
      for (const p of report.problems) {
        lines.push(`✖ chunk ${p.chunk} is ${p.problem}: ${p.detail}${p.quarantinedTo ? ` (moved to ${p.quarantinedTo})` : ''}`);
        for (const r of p.references) lines.push(`    used by ${r.vmName} disk ${r.disk}, restore point ${r.restorePoint}`);
      }
      lines.push(
        report.ok
          ? '✔ All restore points are intact.'
          : '✖ Damage found. The next backup of each affected VM reads the damaged ranges again and heals the repository.',
      );
      return lines.join('\n');
    });
    return report.ok ? ExitCode.ok : ExitCode.verifyFailed;
  },
};
