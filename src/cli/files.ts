/**
 * `vmbackup files ls|get`: the files of a restore point without restoring its disks (file-level
 * restore, engine/guest-files.ts): libguestfs reads the file systems on the point's disks, served
 * over NBD straight from the repository.
 *
 *   vmbackup files ls  --repo R (--restore-point ID | --vm NAME) [--disk KEY]... [--filesystem DEV] [PATH]
 *   vmbackup files get --repo R (--restore-point ID | --vm NAME) [--disk KEY]... [--filesystem DEV] PATH... --to DIR
 */
import {openRepo, passphraseOptions} from './passphrase.js';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {rm} from 'node:fs/promises';
import {checkDestinations, copyOut, modeString, openRestorePointFiles, type RestorePointFiles} from '../engine/guest-files.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes, formatTable, formatTime, terminalSafe} from '../util/format.js';
import {privateTempDirSync} from '../util/private-dir.js';
import type {Command, CommandContext, OptionSpec} from './command.js';
import {pickRestorePoint} from './restore.js';
import {onStopSignals} from './stop-signals.js';

const options: OptionSpec = {
  ...passphraseOptions,
  repo: {type: 'string'},
  'restore-point': {type: 'string'},
  vm: {type: 'string'},
  disk: {type: 'string', multiple: true},
  filesystem: {type: 'string'},
};

const COMMON_HELP =
  'The restore point\'s disks are read where they are (nothing is restored first); libguestfs\n' +
  'starts its appliance once (15–20 s without KVM). Paths are the guest\'s own when an operating\n' +
  'system is found (its fstab mounts); otherwise a single file system is at /, several are at\n' +
  '/<device> (e.g. /sda1, /vg0-data). --filesystem DEV puts just that one at /.';

/** Opens the point's files for the command, runs `fn`, and always closes (the export, the hold, guestfish). */
async function withFiles<T>(ctx: CommandContext, values: Record<string, unknown>, fn: (f: RestorePointFiles, scratch: string) => Promise<T>): Promise<T> {
  if (typeof values.repo !== 'string') throw new UserError('Give the repository: --repo <path>.', {exitCode: ExitCode.usage});
  const repo = await openRepo(values.repo, values);
  const summary = await pickRestorePoint(repo, values);
  const scratch = privateTempDirSync(join(tmpdir(), `vmbackup-${process.getuid?.() ?? 0}`), 'files-');
  const stop = onStopSignals(ctx.out, 'files');
  let files: RestorePointFiles | undefined;
  try {
    ctx.out.progress(`Starting libguestfs on ${summary.vmName} (${summary.time}) …`);
    files = await openRestorePointFiles({
      repository: repo,
      restorePointId: summary.id,
      ...(Array.isArray(values.disk) ? {disks: values.disk as string[]} : {}),
      ...(typeof values.filesystem === 'string' ? {filesystem: values.filesystem} : {}),
      scratchDir: scratch,
    });
    ctx.out.progress(undefined);
    const opened = files;
    return await Promise.race([
      fn(opened, scratch),
      new Promise<never>((_, reject) => stop.signal.addEventListener('abort', () => reject(new UserError('Stopped.', {exitCode: ExitCode.cancelled})), {once: true})),
    ]);
  } finally {
    ctx.out.progress(undefined);
    await files?.close();
    await rm(scratch, {recursive: true, force: true});
    stop.dispose();
  }
}

const filesLs: Command = {
  words: ['files', 'ls'],
  summary: 'List files of a restore point without restoring it (file-level restore)',
  usage: '--repo <path> (--restore-point <id> | --vm <name>) [--disk <key>]... [--filesystem <device>] [<path>]',
  help: `${COMMON_HELP}\n\nExamples:\n  vmbackup files ls --repo /srv/vmbackup/main --vm web01 /etc\n  vmbackup files ls --repo /srv/vmbackup/main --vm web01 --json /var/www`,
  options,
  positionals: [0, 1],
  async run(ctx, values, [path]) {
    const dir = path ?? '/';
    const r = await withFiles(ctx, values, async (f) => ({
      restorePoint: f.point.id,
      vm: f.point.vmName,
      time: f.point.time,
      layout: f.fs.layout,
      path: dir,
      entries: await f.fs.ls(dir),
    }));
    ctx.out.result(r, () => {
      const where = r.layout.kind === 'os' ? `${r.layout.os ?? 'an OS'}` : r.layout.mounts.map((m) => `${m.mountpoint} = ${m.device}${m.type ? ` (${m.type})` : ''}`).join(', ');
      const head = `${r.vm} at ${formatTime(r.time)} (${r.restorePoint}): ${terminalSafe(r.path)}   [${terminalSafe(where)}]`;
      if (r.entries.length === 0) return `${head}\n(empty)`;
      return `${head}\n${formatTable(
        ['MODE', 'OWNER', 'SIZE', 'MODIFIED', 'NAME'],
        r.entries.map((e) => [modeString(e), `${e.uid}:${e.gid}`, e.type === 'dir' ? '' : formatBytes(e.size), formatTime(e.mtime), terminalSafe(e.type === 'link' ? `${e.name} -> ${e.target ?? ''}` : e.type === 'dir' ? `${e.name}/` : e.name, {oneLine: true})]),
      )}`;
    });
  },
};

const filesGet: Command = {
  words: ['files', 'get'],
  summary: 'Copy files and directories out of a restore point, with owners, modes and times',
  usage: '--repo <path> (--restore-point <id> | --vm <name>) [--disk <key>]... [--filesystem <device>] <path>... --to <dir>',
  help:
    `Each path lands as <dir>/<its name>: a directory with everything below it. Owners (numeric),\n` +
    `modes, times, symbolic links, extended attributes and ACLs are kept; nothing is overwritten.\n\n${COMMON_HELP}\n\n` +
    'Examples:\n  vmbackup files get --repo /srv/vmbackup/main --vm web01 /etc/nginx /var/www/index.html --to /var/tmp/web01-files',
  options: {...options, to: {type: 'string'}},
  positionals: [1, 64],
  async run(ctx, values, paths) {
    if (typeof values.to !== 'string') throw new UserError('Say where to put the files: --to <directory>.', {exitCode: ExitCode.usage});
    const to = values.to;
    // Refused before libguestfs starts (it takes a while): a missing directory, a name already there.
    await checkDestinations(paths, to);
    const r = await withFiles(ctx, values, async (f, scratch) => ({restorePoint: f.point.id, vm: f.point.vmName, ...(await copyOut(f, paths, to, scratch))}));
    ctx.out.result(r, () =>
      [
        ...r.copied.map((c) => `${c.type === 'dir' ? 'directory' : c.type === 'link' ? 'link' : 'file'} ${terminalSafe(c.path)} → ${terminalSafe(c.to)}`),
        ...r.skipped.map((s) => `skipped ${terminalSafe(s)} (not a file, directory or link)`),
      ].join('\n'),
    );
  },
};

export const filesCommands: Command[] = [filesLs, filesGet];
