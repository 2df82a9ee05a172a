/**
 * Manual pages and bash completion, generated from the command table (commands.ts), so that
 * what `man vmbackup-repo-create` and Tab say is what the CLI parses. Pure functions: the
 * `vmbackup man` and `vmbackup completion` commands print them, the installer writes them to
 * /usr/local/share/man/man1 and /usr/share/bash-completion/completions (appliance/install.sh).
 */
import {EXIT_CODE_MEANINGS} from '../util/errors.js';
import type {Command} from './command.js';

/** The page name of a command: vmbackup-repo-create. */
export function pageName(c: Command): string {
  return ['vmbackup', ...c.words].join('-');
}

/** Text for roff: backslashes and leading dots/quotes escaped, hyphens in options kept literal. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

/**
 * Each option with what the command's help says of it: the help's line that starts with the
 * option (e.g. "  --chunk-size SIZE   chunk size, ..."), split at the first run of 2+ spaces.
 */
function optionEntries(c: Command): {spec: string; text: string}[] {
  const helpLines = (c.help ?? '').split('\n');
  return Object.entries(c.options)
    .filter(([name]) => name !== 'json')
    .map(([name, o]) => {
      const line = helpLines.find((l) => new RegExp(`^\\s*--${name}(\\s|,|=|$)`).test(l));
      const m = line ? /^\s*(\S.*?)(?:\s{2,}(.*))?$/.exec(line) : null;
      const spec = m?.[1] ?? `--${name}${o.type === 'string' ? ' VALUE' : ''}`;
      return {spec: `${spec}${o.short ? `, -${o.short}` : ''}`, text: m?.[2] ?? 'See DESCRIPTION.'};
    });
}

function exitStatus(codes: [number | string, string][] = Object.entries(EXIT_CODE_MEANINGS)): string {
  return codes.map(([code, meaning]) => `.TP\n.B ${code}\n${roff(meaning)}`).join('\n');
}

function header(name: string, summary: string, version: string): string {
  // Left-adjusted, unhyphenated: synopses and option names are typed as printed.
  return [`.TH ${name.toUpperCase()} 1 "" "vmbackup ${version}" "vmbackup manual"`, '.ad l', '.nh', '.SH NAME', `${roff(name)} \\- ${roff(summary)}`].join('\n');
}

/** The page of one command. */
export function commandPage(c: Command, version: string): string {
  const name = pageName(c);
  const lines = [
    header(name, c.summary, version),
    '.SH SYNOPSIS',
    `.B vmbackup ${roff(c.words.join(' '))}`,
    roff(`${c.usage} [--json]`.trim()),
    '.SH DESCRIPTION',
    `${roff(c.summary)}.`,
  ];
  if (c.help) lines.push('.PP', '.nf', roff(c.help), '.fi');
  lines.push('.SH OPTIONS');
  for (const o of optionEntries(c)) lines.push('.TP', `.B ${roff(o.spec)}`, roff(o.text));
  lines.push('.TP', '.B \\-\\-json', 'Print the result as JSON (errors too, on standard error).', '.TP', '.B \\-\\-help, \\-h', 'Print the usage and options of this command.');
  lines.push('.SH EXIT STATUS', exitStatus(c.exitCodes), '.SH SEE ALSO', '.BR vmbackup (1)');
  return `${lines.join('\n')}\n`;
}

/** vmbackup(1): every command with its page. */
export function overviewPage(commands: Command[], version: string): string {
  const lines = [
    header('vmbackup', 'backup appliance for KVM virtualization (OLVM/oVirt, HPE Morpheus VM Essentials)', version),
    '.SH SYNOPSIS',
    '.B vmbackup',
    '\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\-\\-json]',
    '.br',
    '.B vmbackup',
    '\\-\\-version | \\-V | \\-\\-help',
    '.SH DESCRIPTION',
    'Backs up and restores the VMs of oVirt/OLVM engines and of KVM hosts with libvirt, into deduplicated, compressed repositories. The daemon vmbackupd runs jobs on schedules; this command configures it, runs and watches jobs, works on repositories directly and restores. The console (\\fBvmbackup console\\fR) does the same through walk-through screens.',
    '.SH COMMANDS',
  ];
  for (const c of commands) lines.push('.TP', `.B vmbackup ${roff(c.words.join(' '))}`, `${roff(c.summary)}. See \\fB${roff(pageName(c))}\\fR(1).`);
  lines.push('.SH EXIT STATUS', exitStatus(), '.SH SEE ALSO');
  lines.push(commands.map((c) => `.BR ${roff(pageName(c))} (1)`).join(',\n'));
  return `${lines.join('\n')}\n`;
}

/** Every page, by file name (vmbackup.1, vmbackup-repo-create.1, ...). */
export function allPages(commands: Command[], version: string): Map<string, string> {
  const pages = new Map<string, string>([['vmbackup.1', overviewPage(commands, version)]]);
  for (const c of commands) pages.set(`${pageName(c)}.1`, commandPage(c, version));
  return pages;
}

/** Single-quoted for bash: no expansion of anything inside. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The bash completion script: command words level by level, then the options of the command
 * the words name, then file names for positional arguments (and for option values).
 */
export function bashCompletion(commands: Command[]): string {
  // "repo create" → its options; and for every prefix of words, the words that may follow.
  const next = new Map<string, Set<string>>();
  for (const c of commands) {
    for (let i = 0; i < c.words.length; i++) {
      const prefix = c.words.slice(0, i).join(' ');
      if (!next.has(prefix)) next.set(prefix, new Set());
      next.get(prefix)!.add(c.words[i]!);
    }
  }
  const cases = [...next].map(([prefix, words]) => `    ${sq(prefix)}) words=${sq([...words].sort().join(' '))} ;;`);
  const optionCases = commands.map((c) => {
    const opts = Object.entries(c.options).map(([name, o]) => `--${name}${o.short ? ` -${o.short}` : ''}`);
    opts.push('--json', '--help');
    return `    ${sq(c.words.join(' '))}) opts=${sq(opts.join(' '))} ;;`;
  });
  return `# bash completion for vmbackup, generated from its command table (vmbackup completion bash).
_vmbackup() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  local path="" i w words opts
  # The command words typed so far (the longest run that names a command or a group).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && break
    case "\${path:+$path }$w" in
${[...next.keys()].filter((k) => k !== '').map((k) => `      ${sq(k)}) path=${sq(k)}; continue ;;`).join('\n')}
${commands.map((c) => `      ${sq(c.words.join(' '))}) path=${sq(c.words.join(' '))}; continue ;;`).filter((l, idx, all) => all.indexOf(l) === idx).join('\n')}
    esac
    break
  done
  words=""
  case "$path" in
${cases.join('\n')}
  esac
  opts=""
  case "$path" in
${optionCases.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    [[ -z $path ]] && opts="--help --version"
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n $words && $i -eq $COMP_CWORD ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _vmbackup vmbackup
`;
}
