/**
 * `vmbackup man` and `vmbackup completion bash`: the manual pages and the bash completion,
 * generated from the command table (docgen.ts). The installer runs both.
 */
import {mkdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {allPages, bashCompletion, commandPage, overviewPage} from './docgen.js';

/** The table, loaded when run (commands.ts imports this file). */
async function table(): Promise<{commands: Command[]; version: string}> {
  const [{commands}, {VERSION}] = await Promise.all([import('./commands.js'), import('./run.js')]);
  return {commands, version: VERSION};
}

export const manCommand: Command = {
  words: ['man'],
  summary: 'Print a manual page, or write them all to a directory',
  usage: '[COMMAND WORDS...] [--out DIR]',
  help: [
    'Without --out, prints the roff source of vmbackup(1), or of the page of the command named',
    '(e.g. "vmbackup man repo create"), for man -l - to show. With --out DIR, writes every page',
    '(vmbackup.1, vmbackup-repo-create.1, ...) into DIR, as the installer does into',
    '/usr/local/share/man/man1.',
    '',
    'Options:',
    '  --out DIR   write every page into DIR (created when missing)',
  ].join('\n'),
  options: {out: {type: 'string'}},
  positionals: [0, 4],
  async run(ctx, values, words) {
    const {commands, version} = await table();
    if (typeof values.out === 'string') {
      if (words.length > 0) throw new UserError('Give either command words or --out, not both.', {exitCode: ExitCode.usage});
      await mkdir(values.out, {recursive: true});
      const pages = allPages(commands, version);
      for (const [file, text] of pages) await writeFile(join(values.out, file), text, {mode: 0o644});
      ctx.out.result({directory: values.out, pages: [...pages.keys()]}, () => `Wrote ${pages.size} manual pages to ${values.out}.`);
      return;
    }
    if (words.length === 0) {
      const page = overviewPage(commands, version);
      ctx.out.result({page}, () => page);
      return;
    }
    const c = commands.find((x) => x.words.join(' ') === words.join(' '));
    if (!c) throw new UserError(`No command "vmbackup ${words.join(' ')}".`, {hint: "Run 'vmbackup --help' for the list of commands.", exitCode: ExitCode.notFound});
    const page = commandPage(c, version);
    ctx.out.result({page}, () => page);
  },
};

export const completionCommand: Command = {
  words: ['completion'],
  summary: 'Print the bash completion script',
  usage: 'bash',
  help: 'Prints the completion script for bash; the installer writes it to\n/usr/share/bash-completion/completions/vmbackup. To try it in a shell:\n  source <(vmbackup completion bash)',
  options: {},
  positionals: [1, 1],
  async run(ctx, _values, [shell]) {
    if (shell !== 'bash') throw new UserError(`No completion for "${shell}": only bash is supported.`, {exitCode: ExitCode.usage});
    const {commands} = await table();
    const script = bashCompletion(commands);
    ctx.out.result({script}, () => script);
  },
};
