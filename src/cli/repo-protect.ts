import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';

function protectCommand(value: boolean): Command {
  return {
    words: ['repo', value ? 'protect' : 'unprotect'],
    summary: value ? 'Protect a restore point: retention never removes it' : 'Remove the protection of a restore point',
    usage: '<path> <restore point id>',
    options: {...passphraseOptions},
    positionals: [2, 2],
    async run(ctx, values, [path, id]) {
      const repo = await openRepo(path, values);
      await repo.setProtected(id, value);
      ctx.out.result({id, protected: value}, () => `Restore point ${id} is ${value ? 'now protected' : 'no longer protected'}.`);
    },
  };
}

export const repoProtect = protectCommand(true);
export const repoUnprotect = protectCommand(false);
