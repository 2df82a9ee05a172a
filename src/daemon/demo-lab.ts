/**
 * The demo lab (POST /demo-lab): a newcomer's first minutes. appliance/demo-lab.sh does the
 * privileged part (libvirt + QEMU installed and running, two small VMs with data, the oVirt
 * simulator running on 127.0.0.1 with a generated password); this module then saves a
 * repository, a Morpheus connection to the local KVM host and an oVirt connection to the
 * simulator through the daemon's own create/update paths (same validation as the API), reads
 * both inventories, and says what it made.
 *
 * Contract: idempotent (what exists is kept; the oVirt connection follows the simulator's
 * password and CA, which is new after each simulator restart); calls are serialized; a failing
 * step is a UserError naming the step and what to do, and nothing saved before it is undone.
 */
import {existsSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {z} from 'zod';
import {parseConfig} from '../config/parse.js';
import {absolutePath, whole} from '../config/fields.js';
import type {ConnectionConfig} from '../config/schema.js';
import {describeCa} from '../platforms/ovirt/fetch-ca.js';
import {ExitCode, isUserError, UserError} from '../util/errors.js';
import type {ConfigStore} from '../config/store.js';
import type {ConfigurationService} from './configuration.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';

/** What setting up the lab needs of the daemon. */
export interface DemoLabDeps {
  store: ConfigStore;
  configuration: Pick<ConfigurationService, 'create' | 'update'>;
  resources: Pick<Resources, 'inventory'>;
  log: DaemonLog;
}
import type {DemoLabResult, DemoLabVm} from '../api/contract.js';

const SCRIPT = fileURLToPath(new URL('../../appliance/demo-lab.sh', import.meta.url));

export const DEMO_NAMES = {
  repository: 'Demo repository',
  libvirt: 'Demo KVM host',
  ovirt: 'Demo oVirt engine',
  cluster: 'demo',
  host: 'local',
} as const;

/** Where the lab goes; every field has the appliance's default, tests give their own. */
export const demoLabOptionsSchema = z
  .object({
    /** Prefix of the libvirt VM names: "<prefix>web", "<prefix>db". */
    prefix: z.string({error: 'must be text'}).regex(/^[a-z][a-z0-9-]{0,20}$/, {error: 'must be lowercase letters, digits and -, starting with a letter'}).default('demo-'),
    vmDir: absolutePath().default('/var/lib/vmbackup-demo'),
    simPort: whole(1024, 65535).default(8443),
    repositoryPath: absolutePath().default('/srv/vmbackup/demo-repo'),
    /** Install missing Debian packages (apt-get); false fails with a hint instead. */
    packages: z.boolean({error: 'must be true or false'}).default(true),
    /** Set up the lab even though the appliance has real connections (it asks first otherwise). */
    confirm: z.boolean({error: 'must be true or false'}).default(false),
  })
  .strict()
  .prefault({});
export type DemoLabOptions = z.output<typeof demoLabOptionsSchema>;

interface ScriptOutput {
  libvirt: {vms: string[]; kvm: boolean};
  ovirt: {url: string; user: string; passwordFile: string; caFile: string};
}

const running = new WeakMap<ConfigStore, Promise<unknown>>();

/** Serialized per daemon: two clicks on "Set up a demo lab" run one after the other. */
export function createDemoLab(d: DemoLabDeps, input: unknown): Promise<DemoLabResult> {
  const before = running.get(d.store) ?? Promise.resolve();
  const p = before.catch(() => {}).then(() => build(d, input));
  running.set(d.store, p.catch(() => {}));
  return p;
}

async function build(d: DemoLabDeps, input: unknown): Promise<DemoLabResult> {
  const opts = parseConfig(demoLabOptionsSchema, input ?? {}, 'demo-lab');
  const simDir = join(d.store.stateDir, 'demo');
  // The lab installs packages, defines VMs and runs a simulator as root: on an appliance that
  // already protects real VMs that happens only when the administrator says so explicitly.
  const real = d.store.list('connections').filter((c) => c.name !== DEMO_NAMES.libvirt && c.name !== DEMO_NAMES.ovirt);
  if (real.length > 0 && !opts.confirm) {
    throw new UserError(
      `This appliance has real connections (${real.map((c) => c.name).join(', ')}): the demo lab would install packages, define two VMs and start an oVirt simulator on it.`,
      {hint: 'If you do want it here, run "vmbackup demo-lab --yes" (API: {"confirm": true}); otherwise try it on a spare machine.', exitCode: ExitCode.invalidInput},
    );
  }
  const step = (msg: string) => d.log('info', `Demo lab: ${msg}`);
  step(`starting (VMs ${opts.prefix}web and ${opts.prefix}db under ${opts.vmDir}, oVirt simulator on 127.0.0.1:${opts.simPort})`);
  const out = await runScript(opts, simDir, step);

  const changed: string[] = [];
  step(`repository ${DEMO_NAMES.repository} at ${opts.repositoryPath}`);
  let repo = d.store.list('repositories').find((r) => r.name === DEMO_NAMES.repository || r.path === opts.repositoryPath);
  if (!repo) {
    const made = (await d.configuration.create('repositories', {name: DEMO_NAMES.repository, path: opts.repositoryPath})) as {id: string};
    repo = d.store.get('repositories', made.id);
    changed.push(`repository ${DEMO_NAMES.repository}`);
  }

  step(`connection ${DEMO_NAMES.libvirt} (cluster ${DEMO_NAMES.cluster}, host ${DEMO_NAMES.host} = this machine)`);
  const libvirtBody = {kind: 'morpheus', name: DEMO_NAMES.libvirt, clusters: [{name: DEMO_NAMES.cluster, hosts: [{name: DEMO_NAMES.host, connection: {kind: 'local'}}]}]};
  const libvirt = await ensureConnection(d, libvirtBody, (c) => c.kind === 'morpheus', changed);

  step(`connection ${DEMO_NAMES.ovirt} (${out.ovirt.url})`);
  const password = (await readFile(out.ovirt.passwordFile, 'utf8')).trim();
  // This CA comes from the file the simulator we just started wrote on this machine, not
  // over the network, so it is trusted without asking (a real engine's CA is confirmed).
  const ca = describeCa(await readFile(out.ovirt.caFile, 'utf8'));
  const ovirtBody = {kind: 'ovirt', name: DEMO_NAMES.ovirt, url: out.ovirt.url, user: out.ovirt.user, password, caPem: ca.pem, caFingerprint: ca.fingerprint};
  const ovirt = await ensureConnection(
    d,
    ovirtBody,
    (c) => c.kind === 'ovirt' && c.url === ovirtBody.url && c.password === password && c.caPem === ca.pem && c.user === ovirtBody.user,
    changed,
  );

  step('reading both inventories');
  const libvirtVms = (await inventory(d, libvirt, 'the local KVM host')).filter((v) => out.libvirt.vms.includes(v.name));
  const ovirtVms = await inventory(d, ovirt, 'the oVirt simulator');
  if (libvirtVms.length !== out.libvirt.vms.length) {
    throw new UserError(`The demo VMs ${out.libvirt.vms.join(', ')} are not all in the inventory of ${DEMO_NAMES.libvirt}.`, {
      hint: 'Check them with "virsh -c qemu:///system list --all"; run "vmbackup demo-lab" again to recreate what is missing.',
      exitCode: ExitCode.platformFailed,
    });
  }
  const summary =
    `Demo lab ready: ${libvirtVms.length} libvirt VMs (${libvirtVms.map((v) => v.name).join(', ')}), ${ovirtVms.length} oVirt VMs, ` +
    `repository ${repo.name} (${repo.path}); next: create a job`;
  step(summary);
  return {
    repository: {id: repo.id, name: repo.name, path: repo.path},
    libvirt: {connection: libvirt, name: DEMO_NAMES.libvirt, vms: libvirtVms, kvm: out.libvirt.kvm},
    ovirt: {connection: ovirt, name: DEMO_NAMES.ovirt, url: out.ovirt.url, caFingerprint: ca.fingerprint, vms: ovirtVms},
    changed,
    summary,
  };
}

/** Creates the connection by name, or updates it when `current` says the stored one is stale. */
async function ensureConnection(d: DemoLabDeps, body: {name: string; kind: string}, current: (c: ConnectionConfig) => boolean, changed: string[]): Promise<string> {
  const found = d.store.list('connections').find((c) => c.name === body.name);
  if (found && current(found)) return found.id;
  if (found && found.kind !== body.kind) {
    throw new UserError(`A connection named "${body.name}" exists and is not the demo lab's (it is a ${found.kind} connection).`, {
      hint: 'Rename or remove that connection, then set up the demo lab again.',
      exitCode: ExitCode.invalidInput,
    });
  }
  if (found) await d.configuration.update('connections', found.id, body);
  const id = found ? found.id : ((await d.configuration.create('connections', body)) as {id: string}).id;
  changed.push(`connection ${body.name}`);
  return id;
}

async function inventory(d: DemoLabDeps, connection: string, what: string): Promise<DemoLabVm[]> {
  try {
    return (await d.resources.inventory(connection, true)).vms.map((v) => ({id: v.id, name: v.name}));
  } catch (err) {
    throw new UserError(`The demo lab is set up but ${what} does not answer: ${err instanceof Error ? err.message : String(err)}`, {
      hint: isUserError(err) && err.hint ? err.hint : 'Run "vmbackup demo-lab" again; it restarts what is not running.',
      exitCode: isUserError(err) ? err.exitCode : ExitCode.platformFailed,
      cause: err,
    });
  }
}

/**
 * Runs appliance/demo-lab.sh up. Under systemd the daemon is sandboxed (read-only /usr, no
 * apt), so the script runs as a transient unit outside the sandbox (systemd-run --wait --pipe).
 */
async function runScript(opts: DemoLabOptions, simDir: string, step: (msg: string) => void): Promise<ScriptOutput> {
  const args = [SCRIPT, 'up', '--prefix', opts.prefix, '--dir', opts.vmDir, '--sim-dir', simDir, '--sim-port', String(opts.simPort)];
  if (!opts.packages) args.push('--no-packages');
  const underSystemd = process.env.INVOCATION_ID !== undefined && existsSync('/run/systemd/system');
  const argv = underSystemd ? ['systemd-run', '--wait', '--pipe', '--quiet', '--collect', `--unit=vmbackup-demo-lab-${process.pid}-${Date.now()}`, '--', 'bash', ...args] : ['bash', ...args];
  const child = execa(argv[0]!, argv.slice(1), {reject: false, stdin: 'ignore', env: {DEBIAN_FRONTEND: 'noninteractive'}});
  const tail: string[] = [];
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '').replace(/^==> /, '').trim();
      if (!line) continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      step(line);
    }
  });
  const r = await child;
  if (partial.trim()) tail.push(partial.trim());
  if (r.exitCode !== 0) {
    const reason = tail.filter((l) => l.startsWith('error:')).at(-1)?.replace(/^error: /, '') ?? tail.at(-1) ?? `exit code ${r.exitCode}`;
    throw new UserError(`Setting up the demo lab failed: ${reason}`, {
      hint: `Run "${SCRIPT} up" by hand as root to see every step; the daemon log has the script's output.`,
      exitCode: ExitCode.platformFailed,
    });
  }
  try {
    const parsed = JSON.parse(String(r.stdout).trim().split('\n').at(-1) ?? '') as ScriptOutput;
    if (!parsed.ovirt?.url || !Array.isArray(parsed.libvirt?.vms)) throw new Error('fields missing');
    return parsed;
  } catch {
    throw new Error(`appliance/demo-lab.sh printed no result line: ${String(r.stdout).slice(0, 500)}`);
  }
}
