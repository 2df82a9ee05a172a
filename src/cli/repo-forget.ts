import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

export const repoForget: Command = {
  words: ['repo', 'forget'],
  summary: 'Remove one restore point (also one whose manifest is damaged); gc then frees its chunks',
  usage: '<path> <restore point id> [--force]',
  help:
    'Every restore point is complete on its own: forgetting one never affects the others.\n' +
    'A protected restore point is kept unless --force is given.',
  options: {...passphraseOptions, force: {type: 'boolean'}},
  positionals: [2, 2],
  async run(ctx, values, [path, id]) {
    const repo = await openRepo(path, values);
    const r = await repo.forget(id!, {force: values.force === true});
    ctx.out.result(r, () => `Forgot restore point ${id}${r.damaged ? ' (its manifest was damaged)' : ''}. Run "vmbackup repo gc ${repo.path}" to free the space only it used.`);
  },
};
