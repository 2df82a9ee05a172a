import {backupVm} from '../engine/backup-vm.js';
import {ExitCode, isUserError, UserError} from '../util/errors.js';
import {formatBytes, formatDuration, formatRatio} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {findVm, platformFromArgs, platformHelp, platformOptions} from './platform-args.js';
import {terminalProgress} from './progress-view.js';
import {onStopSignals} from './stop-signals.js';

export const backup: Command = {
  words: ['backup'],
  summary: 'Back up one VM into a repository now (incremental when possible)',
  usage: '(--host <local|user@host> | --engine <url> ...) --vm <name or id> --repo <path> [--full] [--disk <key>]... [--guest-consistency] [--worker auto|off]',
  help: `${platformHelp}\n\nOptions:\n  --full                 read every disk in full (an active full)\n  --disk KEY             back up only this disk (repeatable; libvirt target like vda, oVirt disk id)\n  --guest-consistency    freeze the guest's file systems through the guest agent\n  --worker auto|off      auto (default): on a host reached over SSH, a worker deployed there reads\n                         the disks and sends only new, compressed chunks; off: read them here\n\nExample:\n  vmbackup backup --host local --vm web01 --repo /srv/backup/repo1`,
  options: {
    ...passphraseOptions,
    ...platformOptions,
    vm: {type: 'string'},
    repo: {type: 'string'},
    full: {type: 'boolean'},
    disk: {type: 'string', multiple: true},
    'guest-consistency': {type: 'boolean'},
    worker: {type: 'string'},
  },
  async run(ctx, values) {
    if (typeof values.vm !== 'string' || typeof values.repo !== 'string') {
      throw new UserError('Missing --vm or --repo.', {exitCode: ExitCode.usage, hint: 'vmbackup backup --host local --vm <name> --repo <path>'});
    }
    const worker = values.worker ?? 'auto';
    if (worker !== 'auto' && worker !== 'off') throw new UserError(`--worker: auto or off, not '${String(worker)}'.`, {exitCode: ExitCode.usage});
    const repository = await openRepo(values.repo, values);
    const platform = await platformFromArgs(values);
    const stop = onStopSignals(ctx.out, 'backup');
    try {
      // What an earlier run left on the host (a CLI killed with -9, a dropped session): its backup
      // job, the qemu-nbd holding an image lock, its scratch directory. Only sessions whose
      // process is gone; checkpoints are left alone (the CLI does not know every repository).
      if ((await import('../platforms/registry.js')).platformNamed(platform.kind)?.cliCleansLeftovers) {
        await platform.cleanupLeftovers((e) => ctx.out.info(`cleaned up: ${e.message}`));
      }
      const vm = await findVm(platform, values.vm);
      // Only this repository is known here: retire the checkpoint its newest restore point built
      // on (the new one supersedes it) and leave the appliance's other checkpoints alone, which
      // another repository (a daemon job) may still build on.
      const base = (await repository.listRestorePoints({vmId: vm.id})).at(-1)?.checkpoint?.id;
      const result = await backupVm({
        signal: stop.signal,
        keepCheckpoint: (id) => id !== base,
        platform,
        repository,
        vmId: vm.id,
        vmName: vm.name,
        full: values.full === true,
        disks: values.disk as string[] | undefined,
        guestConsistency: values['guest-consistency'] === true,
        workers: worker,
        onEvent: ctx.json ? undefined : terminalProgress(ctx.out),
      });
      if (result.status === 'failed') {
        const err = result.error;
        if (stop.received) {
          const unclean = result.events.filter((e) => e.code === 'cleanup-failed').map((e) => e.message);
          const cleaned = unclean.length === 0 ? 'its backup job on the host was cleaned up' : `cleaning up on the host failed: ${unclean.join('; ')}`;
          throw new UserError(`The backup of ${vm.name} was stopped (${stop.received}); nothing was committed and ${cleaned}.`, {
            hint: unclean.length === 0 ? 'Run the backup again when you are ready.' : 'The next vmbackup backup of this VM (or the daemon when it starts) removes what is left; run it when you are ready.',
            exitCode: ExitCode.cancelled,
          });
        }
        if (isUserError(err)) throw err;
        throw new UserError(`The backup of ${vm.name} failed: ${err instanceof Error ? err.message : String(err)}`, {exitCode: ExitCode.platformFailed, cause: err});
      }
      const figures = Object.values(result.disks);
      const read = figures.reduce((s, f) => s + f.readBytes, 0);
      const stored = figures.reduce((s, f) => s + f.storedBytes, 0);
      const ms = Date.parse(result.endedAt) - Date.parse(result.startedAt);
      // Nothing stored (an empty or unchanged disk) has no dedup ratio worth printing.
      const healed = figures.reduce((s, f) => s + (f.healedChunks ?? 0), 0);
      const dedup = stored === 0 ? 'nothing new to store' : `dedup ${formatRatio(read / stored)} overall`;
      ctx.out.result(
        {status: result.status, restorePoint: result.restorePoint, incremental: result.incremental, healedChunks: healed, disks: result.disks, warnings: result.events.filter((e) => e.severity === 'warning')},
        () =>
          [
            `${result.status === 'success' ? '✔' : '⚠'} ${vm.name}: restore point ${result.restorePoint!.id} (${result.incremental ? 'incremental' : 'full'})`,
            `  read ${formatBytes(read)}, stored ${formatBytes(stored)} new, in ${formatDuration(ms)}; ${dedup}`,
            ...(healed > 0 ? [`  healed: ${healed} damaged chunk(s) in the repository were set aside and written again`] : []),
          ].join('\n'),
      );
      // A backup with warnings still produced a good restore point: exit 0, the warnings are printed.
      return ExitCode.ok;
    } finally {
      await platform.close();
      stop.dispose();
    }
  },
};
