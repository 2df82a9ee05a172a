/**
 * The platform registry: the one place that knows which platforms there are and builds an
 * adapter from a saved connection. The daemon (its connections), the CLI (its --host/--engine
 * flags, turned into a connection) and restores all come here, so a new platform is one new
 * entry (docs/architecture.md "Adding a platform"), never another `kind === …` branch.
 *
 * Names: a platform has one name, its `kind` ('libvirt', 'ovirt'), recorded in every restore
 * point and used in code. The configuration calls the libvirt platform's connections
 * 'morpheus' (what the administrator bought: HPE Morpheus VM Essentials); `connectionKind` is
 * that name, and the two functions below translate, so no other module has to.
 */
import type {ConnectionConfig} from '../config/schema.js';
import {ExitCode, UserError} from '../util/errors.js';
import {LibvirtPlatform, type LibvirtPlatformOptions} from './libvirt/platform.js';
import {OvirtPlatform} from './ovirt/platform.js';
import type {PlatformAdapter, PlatformKind} from './types.js';

/** What the appliance supplies to the adapters it builds (all optional: the CLI has less). */
export interface PlatformContext {
  /** The known_hosts file for a host of `connection` whose configuration names none. */
  knownHostsFile?: (connection: string, host: string) => string;
  checkpointPrefix?: string;
  /** Scratch directory on the KVM hosts. */
  scratchDir?: string;
  commandLog?: (line: string, connection: string) => void;
  trustedCheckpoints?: LibvirtPlatformOptions['trustedCheckpoints'];
}

export interface PlatformDefinition {
  /** The platform's name: the adapter's kind and what restore points record. */
  readonly kind: PlatformKind;
  /** The `kind` of its connections in the configuration. */
  readonly connectionKind: ConnectionConfig['kind'];
  /** The platform in the administrator's words ("OLVM/oVirt engine"). */
  readonly label: string;
  /** What one connection is, for messages: "engine", "host". */
  readonly place: string;
  /**
   * Whether a one-off CLI backup may clean up the appliance's leftovers on it first: true when
   * the adapter only touches leftovers of processes that are gone (so never a daemon's running
   * backup), as the libvirt adapter does with its session records.
   */
  readonly cliCleansLeftovers: boolean;
  build(cfg: ConnectionConfig, ctx: PlatformContext): PlatformAdapter;
}

const libvirt: PlatformDefinition = {
  kind: 'libvirt',
  connectionKind: 'morpheus',
  label: 'HPE Morpheus VM Essentials (KVM hosts with libvirt)',
  place: 'host',
  cliCleansLeftovers: true,
  build(cfg, ctx) {
    if (cfg.kind !== 'morpheus') throw wrongKind(cfg.kind, 'morpheus');
    return new LibvirtPlatform({
      hosts: cfg.clusters.flatMap((c) =>
        c.hosts.map((h) => ({
          name: h.name,
          connection:
            h.connection.kind === 'local'
              ? ({kind: 'local'} as const)
              : {
                  kind: 'ssh' as const,
                  host: h.connection.host,
                  port: h.connection.port,
                  user: h.connection.user,
                  identityFile: h.connection.identityFile,
                  knownHostsFile: h.connection.knownHostsFile ?? ctx.knownHostsFile?.(cfg.id, h.name) ?? missingKnownHosts(h.name),
                },
        })),
      ),
      ...(ctx.commandLog ? {commandLog: (line: string) => ctx.commandLog!(line, cfg.id)} : {}),
      ...(ctx.checkpointPrefix !== undefined ? {checkpointPrefix: ctx.checkpointPrefix} : {}),
      ...(ctx.scratchDir !== undefined ? {scratchDir: ctx.scratchDir} : {}),
      ...(ctx.trustedCheckpoints ? {trustedCheckpoints: ctx.trustedCheckpoints} : {}),
    });
  },
};

const ovirt: PlatformDefinition = {
  kind: 'ovirt',
  connectionKind: 'ovirt',
  label: 'OLVM/oVirt engine',
  place: 'engine',
  cliCleansLeftovers: false,
  build(cfg) {
    if (cfg.kind !== 'ovirt') throw wrongKind(cfg.kind, 'ovirt');
    return new OvirtPlatform({url: cfg.url, user: cfg.user, password: cfg.password, caPem: cfg.caPem});
  },
};

/** Every platform the appliance supports. */
export const PLATFORMS: readonly PlatformDefinition[] = [libvirt, ovirt];

/** The platform of a restore point's `platform` or an adapter's kind; undefined when unknown. */
export function platformNamed(kind: string): PlatformDefinition | undefined {
  return PLATFORMS.find((p) => p.kind === kind);
}

/** The platform whose connections have this configuration kind. */
export function platformOfConnection(connectionKind: string): PlatformDefinition {
  const p = PLATFORMS.find((x) => x.connectionKind === connectionKind);
  if (!p) throw new UserError(`Unknown connection kind ${JSON.stringify(connectionKind)}.`, {hint: `Known kinds: ${PLATFORMS.map((x) => x.connectionKind).join(', ')}.`, exitCode: ExitCode.invalidInput});
  return p;
}

/** Builds the adapter of a saved (or unsaved, being tested) connection. The caller closes it. */
export function buildPlatform(cfg: ConnectionConfig, ctx: PlatformContext = {}): PlatformAdapter {
  return platformOfConnection(cfg.kind).build(cfg, ctx);
}

function wrongKind(got: string, want: string): Error {
  return new Error(`a ${got} connection given to the ${want} platform`);
}

function missingKnownHosts(host: string): never {
  throw new UserError(`The SSH connection to ${host} names no known_hosts file.`, {
    hint: 'Give the host key or a known_hosts file for it: the appliance never trusts an unknown host key.',
    exitCode: ExitCode.invalidInput,
  });
}
