/**
 * `vmbackup instant …`: instant recovery through the daemon. A VM starts from a restore point
 * within seconds (its disks are read from the repository while it runs), then moves to storage
 * while it keeps running (`finish`), or is discarded (`stop`).
 */
import {setTimeout as sleep} from 'node:timers/promises';
import type {InstantRecoveryInfo, RestorePointInfo} from '../api/contract.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes, formatTable, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

const instantStart: Command = {
  words: ['instant', 'start'],
  summary: 'Start a VM from a restore point at once, its disks read from the repository while it runs',
  usage: '<repository id> (--restore-point <id> | --vm <name>) [--name <new name>] [--host <host>] [--storage <dir>] [--no-network] [--disk <key>]... [--connection <id>] [--socket <path>]',
  help:
    'The VM runs on a libvirt host under a new name (default <vm>-instant) with new MAC addresses;\n' +
    'what it writes goes to qcow2 overlays in --storage (default: where its disks were), the\n' +
    "restore point never changes. --no-network starts it without network interfaces (so it cannot\n" +
    "clash with the original). Then 'vmbackup instant finish <id>' moves it to storage while it runs,\n" +
    "or 'vmbackup instant stop <id>' discards it.\n\n" +
    "An oVirt VM's restore point starts on the hosts of a libvirt connection (--connection): its CPUs,\n" +
    "memory, firmware, disks and network interfaces come from its OVF; interfaces join the host's\n" +
    "libvirt network 'default' (or none, with --no-network).\n\n" +
    'Examples:\n' +
    '  vmbackup instant start main --vm web01 --no-network\n' +
    '  vmbackup instant start main --vm erp01 --connection kvm --storage /var/lib/libvirt/images\n' +
    '  vmbackup instant start main --restore-point web01-20261207t020000z-1a2b3c --name web01 --host kvm02',
  options: {
    ...socketOption,
    'restore-point': {type: 'string'},
    vm: {type: 'string'},
    name: {type: 'string'},
    host: {type: 'string'},
    storage: {type: 'string'},
    'no-network': {type: 'boolean'},
    disk: {type: 'string', multiple: true},
    connection: {type: 'string'},
  },
  positionals: [1, 1],
  async run(ctx, values, [repository]) {
    const r = await withDaemon(ctx, values, async (d) => {
      let point = typeof values['restore-point'] === 'string' ? values['restore-point'] : undefined;
      if (!point) {
        if (typeof values.vm !== 'string') throw new UserError('Say which restore point: --restore-point <id>, or --vm <name> for its newest.', {exitCode: ExitCode.usage});
        const points = (await d.restorePoints<RestorePointInfo>(repository!)).filter((p) => p.vmName === values.vm || p.vmId === values.vm);
        if (points.length === 0) throw new UserError(`Repository ${repository} has no restore point of ${values.vm}.`, {exitCode: ExitCode.notFound, hint: `vmbackup point list ${repository} shows what it has.`});
        point = points.reduce((a, b) => (Date.parse(b.time) > Date.parse(a.time) ? b : a)).id;
      }
      return d.startInstant({
        repository,
        restorePointId: point,
        network: values['no-network'] !== true,
        ...(typeof values.name === 'string' ? {name: values.name} : {}),
        ...(typeof values.host === 'string' ? {host: values.host} : {}),
        ...(typeof values.storage === 'string' ? {storage: values.storage} : {}),
        ...(typeof values.connection === 'string' ? {connection: values.connection} : {}),
        ...(Array.isArray(values.disk) ? {disks: values.disk} : {}),
      });
    });
    ctx.out.result(r, () =>
      [
        `${r.name} runs on ${r.host} from the backup (${(r.startedInMs / 1000).toFixed(1)} s).`,
        `  vmbackup instant finish ${r.id}    moves it to storage while it runs`,
        `  vmbackup instant stop ${r.id}      discards it`,
      ].join('\n'),
    );
  },
};

function describe(i: InstantRecoveryInfo): string {
  const p = i.progress && i.progress.totalBytes > 0 ? ` ${Math.floor((i.progress.doneBytes / i.progress.totalBytes) * 100)} % of ${formatBytes(i.progress.totalBytes)}` : '';
  return `${i.phase}${p}${i.error ? ` (${i.error})` : ''}`;
}

const instantList: Command = {
  words: ['instant', 'list'],
  summary: 'The VMs running from a backup (instant recoveries)',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const list = await withDaemon(ctx, values, (d) => d.instantRecoveries());
    ctx.out.result(list, () =>
      list.length
        ? formatTable(['ID', 'VM', 'FROM', 'HOST', 'SINCE', 'STATE'], list.map((i) => [i.id, i.name, `${i.vmName} ${formatTime(i.restorePointTime)}`, i.host, formatTime(i.startedAt), describe(i)]))
        : 'No VM runs from a backup.',
    );
  },
};

const instantFinish: Command = {
  words: ['instant', 'finish'],
  summary: 'Move an instant VM to storage while it runs, and keep it (defined on its host)',
  usage: '<id> [--storage <dir>] [--wait] [--socket <path>]',
  help: '--storage: the directory on the host for its disks (default: where its overlays are).\n--wait: until the move has ended (else it goes on in the background; instant list shows it);\nfor one already moving, --wait only waits.',
  options: {...socketOption, storage: {type: 'string'}, wait: {type: 'boolean'}},
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const r = await withDaemon(ctx, values, async (d) => {
      // One already moving is only waited for (a second finish would be refused); one whose move
      // has already ended (a small disk moves in seconds) is told as finished.
      const now = (await d.instantRecoveries()).find((x) => x.id === id);
      if (!now && values.wait === true) {
        const s = await d.session(id!).catch(() => undefined);
        if (s?.state === 'success' && s.log.some((l) => l.code === 'instant-finished')) return {id, phase: 'finished' as const};
      }
      if (now?.phase !== 'migrating' || values.wait !== true) await d.finishInstant(id!, typeof values.storage === 'string' ? {storage: values.storage} : {});
      if (values.wait !== true) return {id, phase: 'migrating' as const};
      let last = '';
      for (;;) {
        await sleep(1000);
        const i = (await d.instantRecoveries()).find((x) => x.id === id);
        if (!i) {
          const s = await d.session(id!);
          const ok = s.state === 'success';
          if (!ok) throw new UserError(`Instant recovery ${id} ended ${s.state}: ${s.reason ?? ''}`, {exitCode: ExitCode.platformFailed});
          return {id, phase: 'finished' as const};
        }
        if (i.phase === 'running') throw new UserError(`Moving ${i.name} to storage failed: ${i.error ?? 'see the session log'}`, {exitCode: ExitCode.platformFailed, hint: 'It still runs from the backup; finish again, or stop it.'});
        const line = describe(i);
        if (line !== last) ctx.out.progress(`${i.name}: ${line}`);
        last = line;
      }
    });
    ctx.out.result(r, () => (r.phase === 'finished' ? `Instant recovery ${id}: moved to storage; the VM keeps running from its own disks.` : `Instant recovery ${id}: moving to storage (vmbackup instant list shows how far).`));
  },
};

const instantStop: Command = {
  words: ['instant', 'stop'],
  summary: 'Stop and discard an instant VM (what it wrote is lost; the restore point is unchanged)',
  usage: '<id> [--socket <path>]',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const r = await withDaemon(ctx, values, (d) => d.stopInstant(id!));
    ctx.out.result(r, () => `Instant recovery ${id}: the VM was stopped and discarded.`);
  },
};

export const instantCommands: Command[] = [instantStart, instantList, instantFinish, instantStop];
