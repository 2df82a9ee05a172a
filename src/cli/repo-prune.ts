import {type RetentionPolicy} from '../repository/index.js';
import {warnDamagedPoints} from './repo-damage.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

const KEEPS = {
  'keep-last': 'keepLast',
  'keep-within': 'keepWithinDays',
  'keep-daily': 'keepDaily',
  'keep-weekly': 'keepWeekly',
  'keep-monthly': 'keepMonthly',
  'keep-yearly': 'keepYearly',
} as const;

export function parsePolicy(values: Record<string, unknown>): RetentionPolicy {
  const policy: RetentionPolicy = {};
  for (const [flag, field] of Object.entries(KEEPS)) {
    const raw = values[flag];
    if (typeof raw !== 'string') continue;
    const text = flag === 'keep-within' ? raw.replace(/d$/i, '') : raw;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) {
      throw new UserError(`--${flag} must be a whole number ≥ 0, not '${raw}'.`, {exitCode: ExitCode.usage, hint: flag === 'keep-within' ? 'Give days, e.g. --keep-within 14d.' : `For example --${flag} 7.`});
    }
    policy[field] = n;
  }
  if (Object.keys(policy).length === 0) {
    throw new UserError('No retention rule given: pruning would have nothing to keep.', {
      exitCode: ExitCode.usage,
      hint: 'Give at least one of --keep-last, --keep-within, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly.',
    });
  }
  return policy;
}

export const repoPrune: Command = {
  words: ['repo', 'prune'],
  summary: 'Apply retention: forget restore points the rules do not keep (space is freed by gc)',
  usage: '<path> [--keep-last N] [--keep-within Dd] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--vm <name or id>] [--dry-run]',
  help: 'Protected restore points are never removed and do not count against the rules.\nRun `vmbackup repo gc` afterwards to free the space.',
  options: {
    ...passphraseOptions,
    'keep-last': {type: 'string'},
    'keep-within': {type: 'string'},
    'keep-daily': {type: 'string'},
    'keep-weekly': {type: 'string'},
    'keep-monthly': {type: 'string'},
    'keep-yearly': {type: 'string'},
    vm: {type: 'string'},
    'dry-run': {type: 'boolean'},
  },
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    const policy = parsePolicy(values);
    const repo = await openRepo(path, values);
    await warnDamagedPoints(ctx.out, repo);
    let vmId: string | undefined;
    if (typeof values.vm === 'string') {
      const vm = values.vm;
      const match = (await repo.listRestorePoints()).find((p) => p.vmId === vm || p.vmName === vm);
      if (!match) throw new UserError(`No restore points of VM '${vm}' in ${repo.path}.`, {exitCode: ExitCode.notFound, hint: `Run 'vmbackup repo list ${repo.path}' to see the VMs.`});
      vmId = match.vmId;
    }
    const result = await repo.prune(policy, {vmId, dryRun: values['dry-run'] === true});
    ctx.out.result(result, () => {
      const verb = result.dryRun ? 'would remove' : 'removed';
      const lines = [
        ...result.kept.map((d) => `keep    ${d.id}  ${d.vmName}  ${formatTime(d.time)}  (${d.reasons.join(', ')})`),
        ...result.removed.map((d) => `${result.dryRun ? 'remove' : 'removed'} ${d.id}  ${d.vmName}  ${formatTime(d.time)}`),
        `${result.kept.length} kept, ${result.removed.length} ${verb}.${result.removed.length > 0 && !result.dryRun ? " Run 'vmbackup repo gc' to free the space." : ''}`,
      ];
      return lines.join('\n');
    });
  },
};
