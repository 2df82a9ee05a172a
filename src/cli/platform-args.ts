/**
 * Builds a platform adapter from CLI flags, for the commands that talk to a hypervisor directly
 * (backup, restore). The daemon builds the same adapters from its saved connections.
 *
 *   libvirt:  --host local | --host user@host[:port] --identity KEY --known-hosts FILE
 *   oVirt:    --engine URL --user USER --password-file FILE --ca-file PEM
 */
import {readFile} from 'node:fs/promises';
import {existsSync} from 'node:fs';
import {homedir} from 'node:os';
import {join} from 'node:path';
import type {ConnectionConfig, MorpheusConnectionConfig} from '../config/schema.js';
import type {InventoryVm, PlatformAdapter} from '../platforms/types.js';
import {ExitCode, UserError} from '../util/errors.js';
import type {OptionSpec} from './command.js';

export const platformOptions: OptionSpec = {
  host: {type: 'string'},
  identity: {type: 'string'},
  'known-hosts': {type: 'string'},
  engine: {type: 'string'},
  user: {type: 'string'},
  'password-file': {type: 'string'},
  'ca-file': {type: 'string'},
};

export const platformHelp = [
  'Where the VM runs (one of):',
  '  --host local                          libvirt on this machine',
  '  --host USER@HOST[:PORT]               a libvirt/KVM host over SSH (key authentication;',
  '        [--identity KEY]                default ~/.ssh/id_ed25519; the host key must be in',
  '        [--known-hosts FILE]            FILE, default ~/.ssh/known_hosts)',
  '  --engine URL --user USER              an OLVM/oVirt engine, e.g. https://engine.example/ovirt-engine',
  '        --password-file FILE --ca-file PEM   (the engine CA; see `vmbackup ovirt ca URL`)',
].join('\n');

type Values = Record<string, unknown>;

export function parseSshHost(text: string): {user: string; host: string; port?: number} {
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(text);
  if (!m) {
    throw new UserError(`--host '${text}' is neither 'local' nor USER@HOST[:PORT].`, {
      hint: 'For example --host root@kvm01.example.com or --host local.',
      exitCode: ExitCode.usage,
    });
  }
  return {user: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : undefined};
}

/**
 * The connection the flags describe, as the daemon would have it saved; built by the platform
 * registry like every other adapter.
 */
export async function platformFromArgs(values: Values): Promise<PlatformAdapter> {
  const cfg = await connectionFromArgs(values);
  // Loaded on demand so that commands without a hypervisor start fast.
  const {buildPlatform} = await import('../platforms/registry.js');
  // Root may point the host-side scratch directory elsewhere (default /var/tmp/vmbackup).
  const scratch = process.env['VMBACKUP_HOST_SCRATCH'];
  return buildPlatform(cfg, scratch && scratch.startsWith('/') ? {scratchDir: scratch} : {});
}

async function connectionFromArgs(values: Values): Promise<ConnectionConfig> {
  const host = values.host;
  const engine = values.engine;
  if (typeof host === 'string' && typeof engine === 'string') {
    throw new UserError('Give either --host (libvirt) or --engine (oVirt), not both.', {exitCode: ExitCode.usage});
  }
  if (typeof host === 'string') {
    const one = (name: string, connection: MorpheusConnectionConfig['clusters'][number]['hosts'][number]['connection']): ConnectionConfig => ({
      id: 'cli',
      kind: 'morpheus',
      name: 'command line',
      clusters: [{name: 'command line', hosts: [{name, connection}]}],
    });
    if (host === 'local') return one('local', {kind: 'local'});
    const {user, host: address, port} = parseSshHost(host);
    const ssh = join(homedir(), '.ssh');
    const identityFile = typeof values.identity === 'string' ? values.identity : join(ssh, 'id_ed25519');
    if (!existsSync(identityFile)) {
      throw new UserError(`The SSH key file ${identityFile} does not exist.`, {
        hint: typeof values.identity === 'string' ? 'Check the path given with --identity.' : 'Give the private key that logs in to the host with --identity <file>, or create ~/.ssh/id_ed25519 (ssh-keygen -t ed25519) and add its .pub to the host.',
        exitCode: ExitCode.notFound,
      });
    }
    const knownHostsFile = typeof values['known-hosts'] === 'string' ? values['known-hosts'] : join(ssh, 'known_hosts');
    return one(address, {kind: 'ssh', host: address, port: port ?? 22, user, identityFile, knownHostsFile});
  }
  if (typeof engine === 'string') {
    const need = ['user', 'password-file', 'ca-file'].filter((k) => typeof values[k] !== 'string');
    if (need.length > 0) {
      throw new UserError(`An oVirt engine also needs ${need.map((k) => `--${k}`).join(', ')}.`, {exitCode: ExitCode.usage, hint: platformHelp});
    }
    const password = (await readSecretFile(values['password-file'] as string, 'password file')).trim();
    const caPem = await readSecretFile(values['ca-file'] as string, 'CA file');
    return {id: 'cli', kind: 'ovirt', name: 'command line', url: engine, user: values.user as string, password, caPem};
  }
  throw new UserError('Say where the VM runs: --host (libvirt/KVM) or --engine (oVirt/OLVM).', {exitCode: ExitCode.usage, hint: platformHelp});
}

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read the ${what} ${path}: ${(err as Error).message}`, {exitCode: ExitCode.invalidInput, cause: err});
  }
}

/**
 * Finds a VM by name or id, describing that VM only (its cost does not grow with the other VMs
 * there); an unknown name lists the VMs there are (only then is the whole inventory read).
 */
export async function findVm(platform: PlatformAdapter, nameOrId: string): Promise<InventoryVm> {
  const vm = await platform.findVm(nameOrId);
  if (vm) return vm;
  const names = (await platform.inventory()).map((v) => v.name).sort();
  const {platformNamed} = await import('../platforms/registry.js');
  throw new UserError(`There is no VM '${nameOrId}' on this ${platformNamed(platform.kind)?.place ?? 'platform'}.`, {
    hint: names.length > 0 ? `VMs there: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''}.` : 'That host has no VMs.',
    exitCode: ExitCode.notFound,
  });
}
