/**
 * Restores run by the daemon, for the console's restore wizard and the CLI: list the restore
 * points of a repository, and start a restore that runs in the background.
 *
 * A restore is recorded like a session (kind 'restore' in the trigger, job id `restore`), so
 * it appears in the history, survives a daemon restart as a record (reconciliation marks an
 * interrupted one failed), and its progress reaches the console as the engine's events tagged
 * with the restore's id. A restore over the original VM takes that VM's lock, so it never runs
 * while a backup of the same VM does.
 *
 * Which platform restores: the connection named in the request; else the connection of the
 * job whose session wrote the restore point; else the only connection of the restore point's
 * platform. Disks to image files need no hypervisor: they are written on the appliance with
 * qemu-img and qemu-nbd (a local libvirt adapter does exactly that).
 */
import {randomBytes} from 'node:crypto';
import {planRestoreVm, restoreVm} from '../engine/restore-vm.js';
import type {PlatformAdapter, RestorePlan, RestoreTarget} from '../platforms/types.js';
import type {ConfigStore} from '../config/store.js';
import {ExitCode, UserError} from '../util/errors.js';
import type {EventHub} from './event-hub.js';
import type {History} from './history.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';
import type {SessionRecord} from '../api/session-model.js';
import type {VmLocks} from './vm-locks.js';
import type {RestorePointInfo} from '../api/contract.js';
import {platformNamed} from '../platforms/registry.js';
import {chooseDisks} from '../platforms/targets/choose-disks.js';
import {restorePlanReply} from '../api/contract.js';
import {compactStamp} from '../util/format.js';

/** How long a listing of restore points waits for an inventory before it leaves vmExists out. */
const INVENTORY_WAIT_MS = 5000;

export type RestoreRequestTarget =
  | {kind: 'original'; removeReplaced?: boolean}
  | {kind: 'new'; name: string; host?: string; cluster?: string; storageDomain?: string}
  | {kind: 'existing-vm'; vmId: string}
  | {kind: 'files'; directory: string; format?: 'qcow2' | 'raw'};

export interface RestoreRequest {
  restorePointId: string;
  repository: string;
  connection?: string;
  target: RestoreRequestTarget;
  disks?: string[];
}

/** A request field that is wrong: the API answers it with `field` set (the console marks that field). */
export function bad(field: string, message: string): UserError {
  const err = new UserError(`${field}: ${message}`, {exitCode: ExitCode.invalidInput});
  (err as UserError & {field?: string}).field = field;
  return err;
}

/** A request's optional `disks`: a list of disk keys, or undefined. */
export function diskKeys(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((d) => typeof d !== 'string')) throw bad('disks', 'a list of disk keys');
  return v as string[];
}

/** Checks the request's shape and turns its target into the platform's restore target. */
export function parseRestoreRequest(input: unknown): RestoreRequest {
  const r = (input ?? {}) as Record<string, unknown>;
  if (typeof r.restorePointId !== 'string' || !r.restorePointId) throw bad('restorePointId', 'choose a restore point');
  if (typeof r.repository !== 'string' || !r.repository) throw bad('repository', 'choose a repository');
  const t = (r.target ?? {}) as Record<string, unknown>;
  let target: RestoreRequestTarget;
  switch (t.kind) {
    case 'original':
      if (t.removeReplaced !== undefined && typeof t.removeReplaced !== 'boolean') throw bad('target.removeReplaced', 'true or false');
      target = {kind: 'original', ...(t.removeReplaced === true ? {removeReplaced: true} : {})};
      break;
    case 'new':
      if (typeof t.name !== 'string' || !t.name.trim()) throw bad('target.name', 'give the new VM a name');
      target = {kind: 'new', name: t.name.trim(), host: str(t.host), cluster: str(t.cluster), storageDomain: str(t.storageDomain)};
      break;
    case 'existing-vm':
      if (typeof t.vmId !== 'string' || !t.vmId) throw bad('target.vmId', 'choose the VM to attach the disks to');
      target = {kind: 'existing-vm', vmId: t.vmId};
      break;
    case 'files':
      if (typeof t.directory !== 'string' || !t.directory.startsWith('/')) throw bad('target.directory', 'give an absolute directory path on the appliance');
      if (t.format !== undefined && t.format !== 'qcow2' && t.format !== 'raw') throw bad('target.format', 'qcow2 or raw');
      target = {kind: 'files', directory: t.directory, format: (t.format as 'qcow2' | 'raw' | undefined) ?? 'qcow2'};
      break;
    default:
      throw bad('target.kind', "one of 'original', 'new', 'existing-vm', 'files'");
  }
  return {restorePointId: r.restorePointId, repository: r.repository, connection: str(r.connection), target, disks: diskKeys(r.disks)};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

export function toRestoreTarget(t: RestoreRequestTarget, vmName: string): RestoreTarget {
  switch (t.kind) {
    case 'original':
      return {mode: 'vm', name: vmName, overwrite: true, ...(t.removeReplaced ? {removeReplaced: true} : {})};
    case 'new':
      return {mode: 'vm', name: t.name, host: t.host, cluster: t.cluster, storage: t.storageDomain};
    case 'existing-vm':
      return {mode: 'disks-to-vm', vmId: t.vmId};
    case 'files':
      return {mode: 'disks-to-files', directory: t.directory, format: t.format ?? 'qcow2'};
  }
}

export class Restores {
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly deps: {store: ConfigStore; resources: Resources; history: History; hub: EventHub; locks: VmLocks; log: DaemonLog},
  ) {}

  async restorePoints(repositoryId: string): Promise<RestorePointInfo[]> {
    const repo = await this.deps.resources.repository(repositoryId);
    const points = await repo.listRestorePoints();
    // One fresh inventory per connection the points came from: a cached one may predate a deletion.
    const inventories = new Map<string, Promise<Set<string> | undefined>>();
    const vmIdsOf = (connectionId: string) => {
      let p = inventories.get(connectionId);
      if (!p) {
        p = withTimeout(this.deps.resources.inventory(connectionId, true), INVENTORY_WAIT_MS).then(
          (inv) => (inv ? new Set(inv.vms.map((v) => v.id)) : undefined),
          () => undefined,
        );
        inventories.set(connectionId, p);
      }
      return p;
    };
    return Promise.all(
      points.map(async (p) => {
        const connectionId = this.sourceConnection(p.platform, p.sessionId);
        const ids = connectionId ? await vmIdsOf(connectionId) : undefined;
        return {
          id: p.id,
          vmId: p.vmId,
          vmName: p.vmName,
          time: p.time,
          type: p.type,
          sizeBytes: p.logicalSize,
          storedBytes: p.storedSize,
          protected: p.protected,
          platform: p.platform,
          disks: p.disks,
          ...(ids ? {vmExists: ids.has(p.vmId)} : {}),
        };
      }),
    );
  }

  /** A request checked against the repository: its restore point, and the platform of a VM target. */
  private async resolve(input: unknown) {
    const req = parseRestoreRequest(input);
    const repo = await this.deps.resources.repository(req.repository);
    const point = (await repo.listRestorePoints()).find((p) => p.id === req.restorePointId);
    if (!point) throw new UserError(`The repository has no restore point ${req.restorePointId}.`, {exitCode: ExitCode.notFound, hint: 'Pick one from the list of restore points.'});
    try {
      chooseDisks(point.disks, req.disks, `restore point ${point.id}`);
    } catch (err) {
      throw bad('disks', (err as Error).message.replace(/\.$/, ''));
    }
    return {req, repo, point, ...this.platformFor(req, point.platform, point.sessionId)};
  }

  /** What the restore would do (shown before the administrator confirms); changes nothing. */
  async plan(input: unknown): Promise<RestorePlan> {
    const {req, repo, point, platform} = await this.resolve(input);
    return restorePlanReply.parse(await planRestoreVm({...(platform ? {platform} : {}), repository: repo, restorePointId: point.id, target: toRestoreTarget(req.target, point.vmName), disks: req.disks}));
  }

  /** Validates the request, then runs the restore in the background; returns its id at once. */
  async start(input: unknown): Promise<{id: string; state: 'running'}> {
    const {req, repo, point, platform, connectionId} = await this.resolve(input);

    const id = `restore-${compactStamp()}-${randomBytes(3).toString('hex')}`;
    const record: SessionRecord = {
      id,
      jobId: 'restore',
      jobName: `Restore of ${point.vmName}`,
      state: 'running',
      trigger: 'restore',
      attempt: 1,
      startedAt: new Date().toISOString(),
      repository: req.repository,
      vms: [{id: point.vmId, name: point.vmName, state: 'running', attempts: 1, restorePointId: point.id, startedAt: new Date().toISOString()}],
      log: [],
      totals: {sizeBytes: point.logicalSize, readBytes: 0, transferredBytes: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, durationMs: 0, rateBytesPerSec: 0},
    };
    await this.deps.history.save(record);
    this.publish(record);
    const controller = new AbortController();
    this.running.set(id, controller);
    void this.run(record, {repo, ...(platform ? {platform} : {}), point, req, connectionId, signal: controller.signal}).finally(() => this.running.delete(id));
    return {id, state: 'running'};
  }

  stop(id: string): boolean {
    const c = this.running.get(id);
    c?.abort(new UserError('The restore was stopped by the administrator.', {exitCode: ExitCode.cancelled}));
    return c !== undefined;
  }

  /** The platform a VM target is on; none for image files, which are written on the appliance whatever the platform. */
  private platformFor(req: RestoreRequest, platformKind: string, sessionId: string | undefined): {platform?: PlatformAdapter; connectionId?: string} {
    if (req.target.kind === 'files') return {};
    return this.connectionFor(req.connection, platformKind, sessionId);
  }

  /** The connection (and its platform) a restore point's VM goes back to: the one named, else the one it came from. */
  connectionFor(connection: string | undefined, platformKind: string, sessionId: string | undefined): {platform: PlatformAdapter; connectionId: string} {
    const req = {connection};
    const connections = this.deps.store.list('connections') as {id: string; kind: string}[];
    const id = req.connection ?? this.sourceConnection(platformKind, sessionId);
    if (!id) {
      const def = platformNamed(platformKind);
      if (!def) throw bad('connection', `the restore point was written from a platform this appliance does not know (${platformKind}); restore its disks to files`);
      throw bad('connection', connections.some((c) => c.kind === def.connectionKind)
        ? 'several connections could take this VM: choose one'
        : `no ${def.label} is configured to restore this VM to; add one, or restore the disks to files`);
    }
    if (!connections.some((c) => c.id === id)) throw bad('connection', `there is no connection ${id}`);
    return {platform: this.deps.resources.platform(id), connectionId: id};
  }

  /**
   * The connection a restore point's VM came from: the connection of the job whose session wrote
   * it, else the only configured connection of that platform kind; undefined when neither tells.
   */
  private sourceConnection(platformKind: string, sessionId: string | undefined): string | undefined {
    const connections = this.deps.store.list('connections') as {id: string; kind: string}[];
    if (sessionId) {
      const jobId = this.deps.history.list().find((s) => s.id === sessionId)?.jobId;
      const job = (this.deps.store.list('jobs') as {id: string; source?: {connection?: string}}[]).find((j) => j.id === jobId);
      const id = job?.source?.connection;
      if (id && connections.some((c) => c.id === id)) return id;
    }
    const kind = platformNamed(platformKind)?.connectionKind;
    const candidates = connections.filter((c) => c.kind === kind);
    return candidates.length === 1 ? candidates[0]!.id : undefined;
  }

  private publish(record: SessionRecord): void {
    const {log: _log, ...summary} = record;
    this.deps.hub.emit({type: 'session', session: summary});
  }

  private async run(
    record: SessionRecord,
    o: {
      repo: Awaited<ReturnType<Resources['repository']>>;
      platform?: PlatformAdapter;
      point: {id: string; vmId: string; vmName: string};
      req: RestoreRequest;
      connectionId?: string;
      signal: AbortSignal;
    },
  ): Promise<void> {
    const vm = record.vms[0];
    const overwrites = o.req.target.kind === 'original' || o.req.target.kind === 'existing-vm';
    const lockKey = o.req.target.kind === 'existing-vm' ? `${o.connectionId}/${o.req.target.vmId}` : `${o.connectionId}/${o.point.vmId}`;
    let release: (() => void) | undefined;
    try {
      if (overwrites && o.connectionId) release = await this.deps.locks.acquire(lockKey, record.id, o.signal);
      const result = await restoreVm({
        ...(o.platform ? {platform: o.platform} : {}),
        repository: o.repo,
        restorePointId: o.point.id,
        target: toRestoreTarget(o.req.target, o.point.vmName),
        disks: o.req.disks,
        signal: o.signal,
        onEvent: (event) => {
          if (event.type === 'log') record.log.push({time: event.time, ...event.event});
          this.deps.hub.emit({type: 'engine', sessionId: record.id, jobId: 'restore', event});
        },
      });
      vm.state = 'success';
      const written = Object.values(result.disks).reduce((sum, d) => sum + d.writtenBytes, 0);
      const ms = Date.now() - Date.parse(record.startedAt);
      record.totals = {...record.totals, readBytes: written, transferredBytes: written, durationMs: ms, rateBytesPerSec: ms > 0 ? (written * 1000) / ms : 0};
      const where = result.files?.length ? `files ${result.files.join(', ')}` : `VM ${result.vmName ?? ''}${result.vmId ? ` (${result.vmId})` : ''}`;
      record.log.push({time: new Date().toISOString(), severity: 'info', code: 'restore-finished', message: `Restored ${o.point.vmName} from ${o.point.id} to ${where}.`, vm: o.point.vmName});
      record.state = result.events.some((e) => e.severity === 'warning') ? 'warning' : 'success';
      this.deps.log('info', `restore ${record.id} finished: ${where}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      vm.state = o.signal.aborted ? 'stopped' : 'failed';
      vm.reason = message;
      record.state = o.signal.aborted ? 'stopped' : 'failed';
      record.reason = message;
      record.log.push({time: new Date().toISOString(), severity: 'error', code: 'restore-failed', message, vm: o.point.vmName});
      this.deps.log('warn', `restore ${record.id} failed: ${message}`);
    } finally {
      release?.();
      vm.endedAt = record.endedAt = new Date().toISOString();
      await this.deps.history.save(record).catch(() => undefined);
      this.publish(record);
    }
  }
}

/** The promise's value, or undefined when it takes longer than `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
