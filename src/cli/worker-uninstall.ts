import {LibvirtPlatform} from '../platforms/libvirt/index.js';
import {ExitCode, UserError} from '../util/errors.js';
import {removeWorker} from '../worker/deploy.js';
import type {Command} from './command.js';
import {platformFromArgs, platformOptions} from './platform-args.js';

/** `vmbackup worker uninstall`: takes the appliance's worker off a KVM host (docs/architecture.md "Workers on the hosts"). */
export const workerUninstall: Command = {
  words: ['worker', 'uninstall'],
  summary: 'Remove the worker this appliance deployed onto a KVM host (every version of it)',
  usage: '--host USER@HOST[:PORT] [--identity KEY] [--known-hosts FILE]',
  help:
    'A worker is copied onto a host the first time a backup reads a disk there (its own runtime and\n' +
    'code, about 130 MiB, in the appliance\'s scratch directory on the host) and runs only while a\n' +
    'backup needs it. This removes its files; the next backup that places a disk task on the host\n' +
    'copies it again.\n\n' +
    'Example:\n  vmbackup worker uninstall --host root@kvm01.example.com',
  options: {host: platformOptions.host!, identity: platformOptions.identity!, 'known-hosts': platformOptions['known-hosts']!},
  async run(ctx, values) {
    if (typeof values.host !== 'string' || values.host === 'local') {
      throw new UserError('Name the KVM host the worker is on: --host USER@HOST[:PORT].', {
        hint: 'The appliance reads the disks of its own host itself; workers run only on hosts reached over SSH.',
        exitCode: ExitCode.usage,
      });
    }
    const platform = await platformFromArgs(values);
    try {
      const host = platform instanceof LibvirtPlatform ? platform.hosts[0]?.workerAccess() : undefined;
      if (!host) throw new UserError(`${values.host} is not a KVM host reached over SSH.`, {exitCode: ExitCode.usage});
      const removed = await removeWorker(host);
      ctx.out.result({host: host.hostName, removed}, () => (removed.length > 0 ? `Removed from ${host.hostName}:\n${removed.map((r) => `  ${r}`).join('\n')}` : `${host.hostName} has no worker of this appliance.`));
    } finally {
      await platform.close();
    }
  },
};
