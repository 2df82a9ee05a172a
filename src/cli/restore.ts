import {planRestoreVm, restoreVm} from '../engine/restore-vm.js';
import type {RestoreTarget} from '../platforms/types.js';
import {type Repository, type RestorePointSummary} from '../repository/index.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes, formatDuration, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {platformFromArgs, platformHelp, platformOptions} from './platform-args.js';
import {terminalProgress} from './progress-view.js';
import {onStopSignals} from './stop-signals.js';

/** The restore point named by --restore-point, or the newest one of --vm. */
export async function pickRestorePoint(repo: Repository, values: Record<string, unknown>): Promise<RestorePointSummary> {
  if (typeof values['restore-point'] === 'string') {
    // Opened, not looked up in the listing: a damaged manifest is named, not "no such point".
    return (await repo.openRestorePoint(values['restore-point'])).summary;
  }
  const all = await repo.listRestorePoints();
  if (typeof values.vm === 'string') {
    const vm = values.vm;
    const points = all.filter((p) => p.vmId === vm || p.vmName === vm);
    const rp = points.at(-1);
    if (!rp) throw new UserError(`Repository ${repo.path} has no restore points of VM '${vm}'.`, {exitCode: ExitCode.notFound, hint: `Run 'vmbackup repo list ${repo.path}' to see the VMs it holds.`});
    return rp;
  }
  throw new UserError('Say what to restore: --restore-point <id>, or --vm <name> for its newest restore point.', {exitCode: ExitCode.usage});
}

function targetFrom(values: Record<string, unknown>): RestoreTarget {
  const modes = ['to-files', 'as-vm', 'to-vm'].filter((k) => typeof values[k] === 'string');
  if (modes.length !== 1) {
    throw new UserError('Say where to restore to: exactly one of --to-files <dir>, --as-vm <new name>, --to-vm <existing VM id>.', {exitCode: ExitCode.usage});
  }
  const storage = typeof values.storage === 'string' ? values.storage : undefined;
  if (typeof values['to-files'] === 'string') {
    const format = (values.format ?? 'qcow2') as string;
    if (format !== 'qcow2' && format !== 'raw') throw new UserError(`--format must be qcow2 or raw, not '${format}'.`, {exitCode: ExitCode.usage});
    return {mode: 'disks-to-files', directory: values['to-files'], format};
  }
  if (typeof values['as-vm'] === 'string') {
    return {mode: 'vm', name: values['as-vm'], host: values['target-host'] as string | undefined, cluster: values.cluster as string | undefined, storage, overwrite: values.overwrite === true, removeReplaced: values['remove-replaced'] === true};
  }
  return {mode: 'disks-to-vm', vmId: values['to-vm'] as string, storage};
}

export const restore: Command = {
  words: ['restore'],
  summary: 'Restore a VM, or chosen disks, from a restore point',
  usage: '--repo <path> (--restore-point <id> | --vm <name>) (--to-files <dir> [--format qcow2|raw] | --as-vm <name> | --to-vm <vm id>) [--disk <key>]... [--dry-run] [platform options]',
  help:
    `What:\n  --restore-point ID      a restore point (see 'vmbackup repo list')\n  --vm NAME               the newest restore point of that VM (also a VM that no longer exists)\n  --disk KEY              only this disk (repeatable); a libvirt VM's UEFI variables are\n                          the disk 'nvram' (with --to-vm only restored when named)\n\n` +
    `  --dry-run               say what the restore would create and replace, and do nothing\n\n` +
    `Where to:\n  --to-files DIR          image files on this machine (--format qcow2, the default, or raw)\n  --as-vm NAME            a whole VM under a new name (new UUID/ids, new MACs)\n      [--storage DIR|DOMAIN] [--target-host NAME] [--cluster NAME] [--overwrite [--remove-replaced]]\n  --to-vm VMID            attach the disks to an existing VM\n\n` +
    `${platformHelp}\n  (--to-files needs no platform: it uses qemu-img and qemu-nbd on this machine.)\n\n` +
    `Examples:\n  vmbackup restore --repo /srv/backup/repo1 --vm web01 --to-files /var/tmp/restore\n  vmbackup restore --repo /srv/backup/repo1 --vm web01 --host local --as-vm web01-restored --storage /var/lib/libvirt/images`,
  options: {
    ...passphraseOptions,
    ...platformOptions,
    repo: {type: 'string'},
    'restore-point': {type: 'string'},
    vm: {type: 'string'},
    disk: {type: 'string', multiple: true},
    'to-files': {type: 'string'},
    'dry-run': {type: 'boolean'},
    format: {type: 'string'},
    'as-vm': {type: 'string'},
    'to-vm': {type: 'string'},
    storage: {type: 'string'},
    'target-host': {type: 'string'},
    cluster: {type: 'string'},
    overwrite: {type: 'boolean'},
    'remove-replaced': {type: 'boolean'},
  },
  async run(ctx, values) {
    if (typeof values.repo !== 'string') throw new UserError('Missing --repo <path>.', {exitCode: ExitCode.usage});
    const repository = await openRepo(values.repo, values);
    const rp = await pickRestorePoint(repository, values);
    const target = targetFrom(values);
    // Image files are written on this machine whatever the platform: no hypervisor needed.
    const platform = target.mode === 'disks-to-files' ? undefined : await platformFromArgs(values);
    if (values['dry-run'] === true) {
      try {
        const plan = await planRestoreVm({...(platform ? {platform} : {}), repository, restorePointId: rp.id, target, disks: values.disk as string[] | undefined});
        ctx.out.result({restorePoint: rp.id, plan}, () =>
          [
            `Restoring ${rp.vmName} from ${rp.id} (${rp.type}, ${formatTime(rp.time)}) to ${plan.target} would:`,
            ...plan.replaces.map((l) => `  replace: ${l}`),
            ...plan.creates.map((l) => `  create:  ${l}`),
            ...plan.notes.map((l) => `  note:    ${l}`),
            'Nothing was changed (--dry-run).',
          ].join('\n'),
        );
      } finally {
        await platform?.close();
      }
      return;
    }
    const stop = onStopSignals(ctx.out, 'restore');
    try {
      ctx.out.info(`Restoring ${rp.vmName} from ${rp.id} (${rp.type}, ${formatTime(rp.time)})`);
      const started = performance.now();
      const result = await restoreVm({
        ...(platform ? {platform} : {}),
        repository,
        restorePointId: rp.id,
        target,
        disks: values.disk as string[] | undefined,
        signal: stop.signal,
        onEvent: ctx.json ? undefined : terminalProgress(ctx.out),
      }).catch((err: unknown) => {
        if (!stop.received) throw err;
        throw new UserError(`The restore of ${rp.vmName} was stopped (${stop.received}); the files and exports it had made were removed.`, {
          hint: 'Run the restore again when you are ready.',
          exitCode: ExitCode.cancelled,
        });
      });
      const written = Object.values(result.disks).reduce((s, d) => s + d.writtenBytes, 0);
      ctx.out.result({restorePoint: rp.id, ...result}, () =>
        [
          `✔ Restored ${Object.keys(result.disks).length} disk(s) of ${rp.vmName}: ${formatBytes(written)} written in ${formatDuration(performance.now() - started)}`,
          ...(result.vmName ? [`  VM: ${result.vmName}${result.vmId ? ` (${result.vmId})` : ''}`] : []),
          ...(result.files ?? []).map((f) => `  file: ${f}`),
          ...(result.replacedFiles ?? []).map((f) => `  kept: ${f} (the replaced VM's image; remove it once the restored VM is checked, or use --remove-replaced)`),
        ].join('\n'),
      );
    } finally {
      await platform?.close();
      stop.dispose();
    }
  },
};
