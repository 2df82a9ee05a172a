/**
 * Instant recovery on a libvirt host: a VM started from a restore point within seconds, its disks
 * qcow2 overlays on the host whose backing file is the appliance's NBD export of the restore
 * point (`nbd+unix:///<disk key>?socket=…`). QEMU reads what the guest has not written from the
 * appliance and writes into the overlays; the restore point never changes.
 *
 * - The VM is *transient* (`virsh create`) while it runs from the backup: nothing of it stays in
 *   libvirt's configuration when it is discarded or the host restarts.
 * - migrate(): `virsh blockcopy --pivot` copies each disk (overlay + backing, flattened) to a new
 *   image on production storage while the VM runs and switches the VM onto it; then the VM is
 *   made persistent (`virsh define` of its live XML, which names the new images) and the
 *   overlays are removed. The export is no longer needed after that.
 * - discard(): `virsh destroy` (a transient VM is then gone), the overlays and the varstore made
 *   for it are removed.
 *
 * The socket: QEMU (running as libvirt's QEMU user, e.g. libvirt-qemu on Debian) connects to it,
 * so it sits beside the overlays in the storage directory (which QEMU can reach), mode 0600,
 * owned by that user (the owner of /var/lib/libvirt/qemu). A local host gets the appliance's own
 * socket there; an SSH host gets a socket that `ssh -R` forwards to the appliance's.
 */
import {randomBytes, randomUUID} from 'node:crypto';
import {chown} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {ExitCode, UserError} from '../../util/errors.js';
import {assertName} from '../../util/names.js';
import {isNvramDisk, writePlainFile} from '../image/plain-file.js';
import {fileSafe} from '../targets/files.js';
import {chooseDisks} from '../targets/choose-disks.js';
import type {BootObservation, InstantStartSpec, InstantVm, InstantVmState, Logger} from '../types.js';
import {parseDomainXml} from './domain-xml.js';
import {domainFromOvf} from './domain-from-ovf.js';
import type {LibvirtHost} from './host.js';
import {locateDomain} from './inventory.js';
import type {LibvirtPlatform} from './platform.js';
import {rewriteDomainForRestore} from './restore-xml.js';
import {toPng} from '../../util/png.js';
import {compactStamp} from '../../util/format.js';

/** Names this appliance gives instant VMs (libvirt allows more; these are safe in paths and messages). */
export const INSTANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The longest path a unix socket may have (sun_path, 108 bytes with its NUL). */
const SOCKET_PATH_MAX = 107;

/** uid:gid of the user libvirt runs QEMU as on the host: the owner of its state directory. */
async function qemuOwner(host: LibvirtHost): Promise<{uid: number; gid: number}> {
  const r = await host.run(['stat', '-c', '%u %g', '--', '/var/lib/libvirt/qemu'], {allowFailure: true});
  const m = /^(\d+) (\d+)$/.exec(r.stdout.trim());
  return m ? {uid: Number(m[1]), gid: Number(m[2])} : {uid: 0, gid: 0};
}

/** Starts an instant VM (see the file's comment); on failure nothing it made is left on the host. */
export async function startLibvirtInstantVm(platform: LibvirtPlatform, spec: InstantStartSpec, log: Logger): Promise<InstantVm> {
  const source = spec.source;
  const kind = source.configuration?.kind;
  if (kind !== 'libvirt-domain-xml' && kind !== 'ovf') {
    throw new UserError(`The restore point of ${source.vmName} has no VM configuration (libvirt domain or oVirt OVF), so it cannot be started as a VM on a libvirt host.`, {
      hint: 'Restore its disks to files instead.',
      exitCode: ExitCode.invalidInput,
    });
  }
  if (!INSTANT_NAME.test(spec.name)) {
    throw new UserError(`'${spec.name}' cannot name a VM: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit).`, {exitCode: ExitCode.invalidInput});
  }
  for (const d of source.disks) assertName('diskKey', d.key, `the restore point of ${source.vmName}`);
  const wanted = chooseDisks(source.disks, spec.disks, `The restore point of ${source.vmName}`);
  const disks = wanted.filter((d) => !isNvramDisk(d));
  const nvramDisk = wanted.find((d) => isNvramDisk(d));
  if (disks.length === 0) throw new UserError('An instant VM needs at least one disk.', {exitCode: ExitCode.invalidInput});

  const host = spec.host ? platform.host(spec.host) : await locateDomain(platform.hosts, source.vmId).catch(() => platform.hosts[0]!);
  if ((await host.virsh(['domstate', spec.name], {allowFailure: true})).exitCode === 0) {
    throw new UserError(`A VM named ${spec.name} already exists on ${host.name}.`, {hint: 'Choose another name for the instant VM.', exitCode: ExitCode.invalidInput});
  }
  // A libvirt VM's own domain; an oVirt VM's from its OVF (cross-platform), checked before anything is made.
  const fromOvf = kind === 'ovf' ? domainFromOvf(source, {kvm: false, nvramPath: ''}) : undefined;
  const original = fromOvf ? undefined : parseDomainXml(source.configuration!.text);
  const firstFile = original?.disks.find((x) => x.type === 'file' && x.sourcePath)?.sourcePath;
  const storage = spec.storage ?? (firstFile ? dirname(firstFile) : '/var/lib/libvirt/images');
  if (!storage.startsWith('/') || storage.includes('\0')) throw new UserError(`The storage directory must be an absolute path, not '${storage}'.`, {exitCode: ExitCode.invalidInput});
  if ((await host.run(['test', '-d', storage], {allowFailure: true})).exitCode !== 0) {
    throw new UserError(`The storage directory ${storage} does not exist on ${host.name}.`, {
      hint: 'Choose an existing directory (a mounted datastore or storage pool path) for the instant VM.',
      exitCode: ExitCode.notFound,
    });
  }
  const stamp = compactStamp();
  const tag = randomBytes(3).toString('hex');
  const hostSocket = join(storage, `.vmbackup-nbd-${tag}.sock`);
  if (Buffer.byteLength(hostSocket) > SOCKET_PATH_MAX) {
    throw new UserError(`The socket path ${hostSocket} is longer than a unix socket may be (${SOCKET_PATH_MAX} bytes).`, {
      hint: 'Choose a storage directory with a shorter path, or a shorter name.',
      exitCode: ExitCode.invalidInput,
    });
  }
  const overlays = disks.map((d) => ({
    key: d.key,
    target: fromOvf ? fromOvf.targets.get(d.key)! : d.key,
    path: join(storage, `${fileSafe(spec.name)}-${fileSafe(d.key)}-instant-${stamp}-${tag}.qcow2`),
    format: (d.format === 'raw' ? 'raw' : 'qcow2') as 'qcow2' | 'raw',
    size: d.size,
  }));
  const state: InstantVmState = {
    host: host.name,
    name: spec.name,
    uuid: randomUUID(),
    storage,
    overlays: overlays.map(({size: _s, ...o}) => o),
    hostSocket,
    applianceSocket: '',
    // A UEFI VM from an OVF gets a fresh variable store (libvirt makes it from the firmware's template).
    ...(fromOvf?.uefi ? {nvramPath: join(storage, `${fileSafe(spec.name)}-instant-${stamp}-${tag}_VARS.fd`)} : {}),
  };
  await spec.onPrepared?.(state);
  const made: string[] = [];
  let way: {close(): Promise<void>} | undefined;
  try {
    way = await offerSocket(platform, host, state, spec.serve);
    for (const o of overlays) {
      // The backing is opened once here (qemu-img checks it), which proves the way to the export works.
      made.push(o.path);
      await host.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', `nbd+unix:///${encodeURIComponent(o.key)}?socket=${encodeURIComponent(hostSocket)}`, o.path, String(o.size)]);
    }
    let domain = source.configuration!.text;
    if (fromOvf) {
      const kvm = (await host.run(['test', '-c', '/dev/kvm'], {allowFailure: true})).exitCode === 0;
      domain = domainFromOvf(source, {kvm, nvramPath: state.nvramPath ?? ''}).xml;
      // libvirt makes the variable store when the VM starts: removed with the rest if that fails.
      if (state.nvramPath) made.push(state.nvramPath);
    }
    if (nvramDisk && spec.nvram && original?.nvram) {
      const path = join(storage, `${fileSafe(spec.name)}-instant-${stamp}-${tag}_VARS.fd`);
      await writePlainFile(host.runner, path, Buffer.from(spec.nvram), {exclusive: true, created: () => made.push(path)});
      state.nvramPath = path;
    }
    const xml = rewriteDomainForRestore(domain, {
      name: spec.name,
      uuid: state.uuid,
      disks: new Map(overlays.map((o) => [o.target, {path: o.path, format: 'qcow2', nbdBacking: {exportName: o.key, socket: hostSocket}}])),
      nvramPath: state.nvramPath,
      removeInterfaces: !spec.network,
      ensureVideo: spec.display,
    });
    const dir = await host.sessionDir('instant');
    try {
      await host.writeFile(join(dir, 'domain.xml'), xml);
      await host.virsh(['create', join(dir, 'domain.xml')]);
    } finally {
      await host.removeScratch(dir).catch(() => {});
    }
    log({severity: 'info', code: 'instant-started', message: `VM ${spec.name} started on ${host.name} from the backup (${overlays.map((o) => `${o.key}: ${o.path}`).join(', ')})${spec.network ? '' : ', without network'}`, vm: spec.name});
  } catch (err) {
    await way?.close().catch(() => {});
    for (const p of made) await host.run(['rm', '-f', '--', p], {allowFailure: true});
    throw err;
  }
  return new LibvirtInstantVm(host, state, way);
}

/** Re-attaches to an instant VM recorded earlier (after a restart of the daemon): the way to the export again. */
export async function resumeLibvirtInstantVm(platform: LibvirtPlatform, state: InstantVmState, serve?: (path: string) => Promise<void>): Promise<InstantVm> {
  const host = platform.host(state.host);
  const way = serve ? await offerSocket(platform, host, state, serve) : undefined;
  return new LibvirtInstantVm(host, state, way);
}

/**
 * Makes the export reachable at state.hostSocket on the host: the appliance serves there itself
 * (a local host) or on a socket of its own that `ssh -R` forwards to (an SSH host). Sets
 * state.applianceSocket.
 */
async function offerSocket(platform: LibvirtPlatform, host: LibvirtHost, state: InstantVmState, serve: (path: string) => Promise<void>): Promise<{close(): Promise<void>}> {
  const owner = await qemuOwner(host);
  if (!host.ssh) {
    state.applianceSocket = state.hostSocket;
    await serve(state.hostSocket);
    await chown(state.hostSocket, owner.uid, owner.gid);
    return {close: async () => {}};
  }
  state.applianceSocket ||= join(platform.localScratchDir, `instant-${randomBytes(6).toString('hex')}.sock`);
  await serve(state.applianceSocket);
  // A socket left by an earlier forward (a daemon that restarted) must not pass for the new one:
  // it would be chowned, then replaced by sshd's new socket that QEMU may not open.
  await host.run(['rm', '-f', '--', state.hostSocket]);
  const {openReverseSocketTunnel} = await import('../../transports/ssh-tunnel.js');
  const tunnel = await openReverseSocketTunnel({...host.ssh, controlDir: undefined}, state.hostSocket, state.applianceSocket, {
    exists: async () => (await host.run(['test', '-S', state.hostSocket], {allowFailure: true})).exitCode === 0,
  });
  try {
    await host.run(['chown', `${owner.uid}:${owner.gid}`, '--', state.hostSocket]);
  } catch (err) {
    await tunnel.close();
    throw err;
  }
  return {
    close: async () => {
      await tunnel.close();
      await host.run(['rm', '-f', '--', state.hostSocket], {allowFailure: true});
    },
  };
}

class LibvirtInstantVm implements InstantVm {
  constructor(
    private readonly host: LibvirtHost,
    readonly state: InstantVmState,
    private way: {close(): Promise<void>} | undefined,
  ) {}

  async running(): Promise<boolean> {
    const r = await this.host.virsh(['domstate', this.state.uuid], {allowFailure: true});
    return r.exitCode === 0 && /running|paused|blocked/.test(r.stdout);
  }

  private shape?: {agentConfigured: boolean; uefi: boolean};

  async observe(): Promise<BootObservation> {
    const h = this.host;
    const uuid = this.state.uuid;
    const stats = await h.virsh(['domstats', uuid, '--state', '--block'], {allowFailure: true});
    // A transient VM that shut down is gone: domstats then fails.
    const running = stats.exitCode === 0 && /^\s*state\.state=(1|3)\s*$/m.test(stats.stdout);
    let readBytes = 0;
    let readRequests = 0;
    for (const m of stats.stdout.matchAll(/^\s*block\.\d+\.rd\.(bytes|reqs)=(\d+)\s*$/gm)) {
      if (m[1] === 'bytes') readBytes += Number(m[2]);
      else readRequests += Number(m[2]);
    }
    if (!this.shape && running) {
      const xml = (await h.virsh(['dumpxml', uuid], {allowFailure: true})).stdout;
      if (xml) this.shape = {agentConfigured: /<target type=['"]virtio['"] name=['"]org\.qemu\.guest_agent\.0['"]/.test(xml), uefi: /<loader\b/.test(xml)};
    }
    const shape = this.shape ?? {agentConfigured: false, uefi: false};
    const agentAnswered =
      running && shape.agentConfigured && (await h.virsh(['qemu-agent-command', uuid, '{"execute":"guest-ping"}', '--timeout', '2'], {allowFailure: true, timeoutMs: 15_000})).exitCode === 0;
    return {running, readBytes, readRequests, ...shape, agentAnswered};
  }

  async screenshot(): Promise<Uint8Array | undefined> {
    const h = this.host;
    const dir = await h.sessionDir('screenshot');
    try {
      const file = join(dir, 'screen');
      if ((await h.virsh(['screenshot', this.state.uuid, file], {allowFailure: true, timeoutMs: 60_000})).exitCode !== 0) return undefined;
      // Text through the runner (local or SSH): the image as base64.
      const r = await h.run(['base64', '-w0', '--', file], {allowFailure: true, timeoutMs: 60_000});
      if (r.exitCode !== 0) return undefined;
      return toPng(Buffer.from(r.stdout.trim(), 'base64'));
    } finally {
      await h.removeScratch(dir).catch(() => {});
    }
  }

  async migrate(opts: {storage?: string; onProgress?: (done: number, total: number) => void; signal?: AbortSignal}): Promise<{files: string[]}> {
    const h = this.host;
    const s = this.state;
    const storage = opts.storage ?? s.storage;
    if ((await h.run(['test', '-d', storage], {allowFailure: true})).exitCode !== 0) {
      throw new UserError(`The storage directory ${storage} does not exist on ${h.name}.`, {hint: 'Choose an existing directory for the migrated disks.', exitCode: ExitCode.notFound});
    }
    if (!(await this.running())) {
      throw new UserError(`The instant VM ${s.name} is not running on ${h.name} any more, so its disks cannot be moved to storage.`, {
        hint: 'Stop (discard) this instant recovery and start a new one, or restore the VM instead.',
        exitCode: ExitCode.notFound,
      });
    }
    const stamp = compactStamp();
    const files = s.overlays.map((o) => join(storage, `${fileSafe(s.name)}-${fileSafe(o.key)}-${stamp}.${o.format}`));
    for (const f of files) {
      if ((await h.run(['test', '-e', f], {allowFailure: true})).exitCode === 0) throw new UserError(`${f} already exists on ${h.name}.`, {exitCode: ExitCode.invalidInput});
    }
    const sizes = await Promise.all(s.overlays.map(async (o) => Number(/Capacity:\s+(\d+)/.exec((await h.virsh(['domblkinfo', s.uuid, o.target])).stdout)?.[1] ?? 0)));
    const total = sizes.reduce((a, b) => a + b, 0);
    let before = 0;
    for (const [i, o] of s.overlays.entries()) {
      opts.signal?.throwIfAborted();
      let finished = false;
      const copy = h
        .virsh(['blockcopy', s.uuid, o.target, '--dest', files[i]!, '--format', o.format, '--wait', '--pivot', '--transient-job'], {timeoutMs: 24 * 3600_000})
        .finally(() => (finished = true));
      const abort = () => void h.virsh(['blockjob', s.uuid, o.target, '--abort'], {allowFailure: true});
      opts.signal?.addEventListener('abort', abort, {once: true});
      try {
        while (!finished) {
          await Promise.race([copy.catch(() => {}), sleep(1000)]);
          if (finished) break;
          const info = await h.virsh(['blockjob', s.uuid, o.target, '--info', '--bytes'], {allowFailure: true});
          const m = /(\d+)\/(\d+)/.exec(info.stdout);
          if (m) opts.onProgress?.(before + (Number(m[1]) / Math.max(1, Number(m[2]))) * sizes[i]!, total);
        }
        await copy;
      } catch (err) {
        await h.run(['rm', '-f', '--', files[i]!], {allowFailure: true});
        opts.signal?.throwIfAborted();
        throw err;
      } finally {
        opts.signal?.removeEventListener('abort', abort);
      }
      before += sizes[i]!;
      opts.onProgress?.(before, total);
    }
    // Persistent from now on: its live definition names the new images (and no backing chain).
    const dir = await h.sessionDir('instant-define');
    try {
      const live = (await h.virsh(['dumpxml', s.uuid, '--migratable'])).stdout;
      await h.writeFile(join(dir, 'domain.xml'), live);
      await h.virsh(['define', join(dir, 'domain.xml')]);
    } finally {
      await h.removeScratch(dir).catch(() => {});
    }
    for (const o of s.overlays) await h.run(['rm', '-f', '--', o.path], {allowFailure: true});
    await this.detach();
    return {files: [...files, ...(s.nvramPath ? [s.nvramPath] : [])]};
  }

  async discard(): Promise<void> {
    const h = this.host;
    const s = this.state;
    if (s.uuid) {
      const r = await h.virsh(['destroy', s.uuid], {allowFailure: true});
      if (r.exitCode !== 0 && (await h.virsh(['domstate', s.uuid], {allowFailure: true})).exitCode === 0 && (await this.running())) {
        throw new UserError(`The instant VM ${s.name} on ${h.name} could not be stopped: ${r.stderr.trim()}`, {exitCode: ExitCode.platformFailed});
      }
      // Made persistent meanwhile by someone else: then it is theirs, only its runtime ended.
    }
    for (const o of s.overlays) await h.run(['rm', '-f', '--', o.path], {allowFailure: true});
    if (s.nvramPath) await h.run(['rm', '-f', '--', s.nvramPath], {allowFailure: true});
    await this.detach();
    // The export's socket beside the overlays (left there by a daemon that was killed).
    if (s.hostSocket) await h.run(['rm', '-f', '--', s.hostSocket], {allowFailure: true});
  }

  async detach(): Promise<void> {
    const way = this.way;
    this.way = undefined;
    await way?.close();
  }
}
