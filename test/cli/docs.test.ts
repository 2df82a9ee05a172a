/**
 * Manual pages and bash completion generated from the command table (src/cli/docgen.ts),
 * checked with the real tools: every page rendered by man-db's `man -l` with groff's warnings on,
 * and the completion script sourced into a real bash and asked as Tab would ask it.
 */
import {mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {commands} from '../../src/cli/commands.js';
import {pageName} from '../../src/cli/docgen.js';
import {EXIT_CODE_MEANINGS} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-docs-'));
});
afterAll(async () => rm(dir, {recursive: true, force: true}));

/** A page as man shows it: plain text, no warnings allowed. */
async function render(file: string): Promise<string> {
  const r = await execa('man', ['--warnings=all', '-l', file], {env: {MANWIDTH: '100', MAN_KEEP_FORMATTING: '', LC_ALL: 'C.UTF-8'}, stdin: 'ignore'});
  expect(r.stderr, `groff warnings for ${file}`).toBe('');
  // Undo man's bold/underline overstrikes and hyphenation at line ends.
  return r.stdout.replace(/.\x08/g, '').replace(/‐\n\s*/g, '');
}

describe('manual pages', () => {
  it('vmbackup man --out writes one page per command and vmbackup(1)', async () => {
    const r = await vmbackup(['man', '--out', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(['vmbackup.1', ...commands.map((c) => `${pageName(c)}.1`)].sort());
  });

  it('every page renders without a warning and names its words, every option and every exit code', async () => {
    for (const c of commands) {
      const text = await render(join(dir, `${pageName(c)}.1`));
      expect(text).toMatch(/^NAME$/m);
      expect(text).toContain(`vmbackup ${c.words.join(' ')}`);
      for (const name of Object.keys(c.options)) expect(text, `${pageName(c)}: --${name}`).toContain(`--${name}`);
      const codes = c.exitCodes?.map(([n]) => n) ?? Object.keys(EXIT_CODE_MEANINGS).map(Number);
      const status = text.slice(text.indexOf('EXIT STATUS'));
      for (const n of codes) expect(status, `${pageName(c)}: exit ${n}`).toMatch(new RegExp(`^\\s+${n}\\s`, 'm'));
    }
  }, 120_000);

  it('vmbackup(1) lists every command; `vmbackup man repo create` prints that page; a wrong name is a clear error', async () => {
    const overview = await render(join(dir, 'vmbackup.1'));
    for (const c of commands) expect(overview).toContain(`vmbackup ${c.words.join(' ')}`);
    const one = await vmbackup(['man', 'repo', 'create']);
    expect(one.exitCode).toBe(0);
    expect(one.stdout).toMatch(/^\.TH VMBACKUP-REPO-CREATE 1/);
    expect(one.stdout).toContain('chunk size, a power of two');
    const bad = await vmbackup(['man', 'repo', 'explode']);
    expect(bad.exitCode).toBe(16);
    expect(bad.stderr).toContain('No command "vmbackup repo explode"');
  });
});

describe('bash completion', () => {
  let script: string;
  beforeAll(async () => {
    const r = await vmbackup(['completion', 'bash']);
    expect(r.exitCode, r.stderr).toBe(0);
    script = join(dir, 'vmbackup.bash');
    await (await import('node:fs/promises')).writeFile(script, r.stdout);
  });

  /** What Tab offers after `line` (the last word is the one being completed). */
  async function complete(...words: string[]): Promise<string[]> {
    const r = await execa('bash', ['--norc', '--noprofile', '-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _vmbackup; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, 'vmbackup', ...words], {cwd: dir, stdin: 'ignore'});
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter(Boolean);
  }

  it('completes command words level by level, options of the command named, and file names', async () => {
    expect(await complete('re')).toEqual(expect.arrayContaining(['repo', 'restore']));
    expect(await complete('repo', 'c')).toEqual(['copy', 'create']);
    expect(await complete('repo', 'create', '--ch')).toEqual(['--chunk-size']);
    expect(await complete('--')).toEqual(['--help', '--version']);
    expect(await complete('repo', 'create', 'vmbackup.b')).toEqual(['vmbackup.bash']);
  });

  it('offers every command from its first words and every option of every command', async () => {
    for (const c of commands) {
      for (let i = 0; i < c.words.length; i++) expect(await complete(...c.words.slice(0, i), c.words[i]!.slice(0, 2)), c.words.join(' ')).toContain(c.words[i]);
      const offered = await complete(...c.words, '--');
      for (const name of Object.keys(c.options)) expect(offered, `${c.words.join(' ')} --${name}`).toContain(`--${name}`);
    }
  }, 120_000);

  it('refuses a shell it does not support', async () => {
    const r = await vmbackup(['completion', 'fish']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('only bash is supported');
  });
});
