/**
 * `vmbackup demo-lab`: asks the daemon to set up the demo lab (POST /demo-lab: two libvirt VMs
 * on this machine, the oVirt simulator, a repository and both connections) and prints what it
 * made. Idempotent, like the endpoint: run it again after a reboot to restart what stopped.
 */
import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';
import type {DemoLabResult} from '../api/contract.js';

export const demoLab: Command = {
  words: ['demo-lab'],
  summary: 'Set up a demo lab: two small libvirt VMs here, an oVirt simulator with VMs, a repository and both connections',
  usage: '[--repository <path>] [--sim-port <port>] [--prefix <name->] [--vm-dir <path>] [--no-packages] [--yes] [--socket <path>]',
  help: [
    'Runs appliance/demo-lab.sh as root through the daemon (installs libvirt and QEMU when missing),',
    'then saves "Demo repository" (default /srv/vmbackup/demo-repo), "Demo KVM host" and "Demo oVirt engine".',
    'Running it again keeps what exists and restarts what stopped.',
    '  --repository <path>  where the demo repository goes',
    '  --sim-port <port>    the oVirt simulator\'s port on 127.0.0.1 (default 8443)',
    '  --prefix <name->     prefix of the VM names (default demo-: demo-web, demo-db)',
    '  --vm-dir <path>      where the VMs\' disks go (default /var/lib/vmbackup-demo)',
    '  --no-packages        never run apt-get; fail with a hint when a package is missing',
    '  --yes                set it up even though this appliance has real connections',
  ].join('\n'),
  options: {...socketOption, repository: {type: 'string'}, 'sim-port': {type: 'string'}, prefix: {type: 'string'}, 'vm-dir': {type: 'string'}, 'no-packages': {type: 'boolean'}, yes: {type: 'boolean'}},
  positionals: [0, 0],
  async run(ctx, values) {
    const body: Record<string, unknown> = {};
    if (typeof values.repository === 'string') body.repositoryPath = values.repository;
    if (typeof values.prefix === 'string') body.prefix = values.prefix;
    if (typeof values['vm-dir'] === 'string') body.vmDir = values['vm-dir'];
    if (typeof values['sim-port'] === 'string') {
      const port = Number(values['sim-port']);
      if (!Number.isInteger(port)) throw new UserError(`--sim-port: must be a port number, not '${values['sim-port']}'.`, {hint: 'For example --sim-port 18443.', exitCode: ExitCode.usage});
      body.simPort = port;
    }
    if (values['no-packages']) body.packages = false;
    if (values.yes) body.confirm = true;
    ctx.out.info('Setting up the demo lab (installing libvirt and QEMU may take a few minutes the first time)…');
    const lab = await withDaemon(ctx, values, (c) =>
      c.demoLab(body).catch(async (err: unknown) => {
        throw (await import('../api/contract.js')).stillSettingUp(err);
      }),
    );
    ctx.out.result(lab, () => describeDemoLab(lab));
  },
};

export function describeDemoLab(lab: DemoLabResult): string {
  return [
    lab.summary,
    `  repository        ${lab.repository.name}  ${lab.repository.path}`,
    `  ${lab.libvirt.name.padEnd(17)} ${lab.libvirt.vms.map((v) => v.name).join(', ')}${lab.libvirt.kvm ? '' : '  (no /dev/kvm: QEMU emulates, slower)'}`,
    `  ${lab.ovirt.name.padEnd(17)} ${lab.ovirt.url}  ${lab.ovirt.vms.map((v) => v.name).join(', ')}`,
    lab.changed.length ? `  changed: ${lab.changed.join('; ')}` : '  everything was there already',
  ].join('\n');
}
