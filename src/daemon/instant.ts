/**
 * Instant recoveries run by the daemon: a VM started from a restore point within seconds, its
 * disks read from the repository over NBD while it runs (platforms/libvirt/instant.ts), then
 * moved onto production storage while it keeps running ("finish"), or discarded ("stop").
 *
 * The daemon serves each instant VM's export itself (transports/nbd/server.ts, one server per
 * instant VM, export names = disk keys) and holds its restore point (prune keeps it, forget
 * refuses it). Each instant recovery is a session in the history (job id `restore`, trigger
 * `instant`), running until it is finished or stopped, with what happened in its log.
 *
 * Restarts: the instant VMs are recorded in `instant-recoveries.json` (0600) in the state
 * directory. A daemon that stops leaves the VMs running (their reads wait or fail until the
 * export is back: QEMU's NBD client reconnects on its own); the next start serves the exports
 * again at the same sockets and keeps the sessions running. An instant VM that is gone by then
 * (the host rebooted, someone destroyed it) is cleaned up and its session closed as failed.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, readdir, rm, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {watchBoot, type BootVerification} from '../engine/verify-boot.js';
import {restoreInput} from '../engine/restore-vm.js';
import {DurableJsonFile} from '../config/durable-json-file.js';
import {INSTANT_NAME} from '../platforms/libvirt/instant.js';
import type {InstantRecovery, InstantStartSpec, InstantVm, InstantVmState, Logger, PlatformAdapter} from '../platforms/types.js';
import {isNvramDisk} from '../platforms/image/plain-file.js';
import type {Repository} from '../repository/index.js';
import {NbdServer} from '../transports/nbd/server.js';
import {ExitCode, UserError} from '../util/errors.js';
import type {SessionRecord} from '../api/session-model.js';
import type {InstantRecoveryInfo} from '../api/contract.js';
import type {EventHub} from './event-hub.js';
import type {History} from './history.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';
import {bad, diskKeys, type Restores} from './restores.js';
import {compactStamp} from '../util/format.js';

const FILE = 'instant-recoveries.json';

interface Recorded {
  id: string;
  repository: string;
  restorePointId: string;
  connection: string;
  vmName: string;
  restorePointTime: string;
  startedAt: string;
  network: boolean;
  vm: InstantVmState;
  /** A restore verification's throw-away VM: never resumed, discarded at the next start. */
  purpose?: 'verification';
}

interface Live {
  rec: Recorded;
  vm?: InstantVm;
  server?: NbdServer;
  hold?: {release(): Promise<void>};
  phase: InstantRecoveryInfo['phase'];
  progress?: {doneBytes: number; totalBytes: number};
  error?: string;
  /** The move to storage running now, and how to stop it. */
  busy?: Promise<unknown>;
  abort?: AbortController;
}

export interface InstantStartRequest {
  repository: string;
  restorePointId: string;
  connection?: string;
  name?: string;
  host?: string;
  storage?: string;
  network: boolean;
  disks?: string[];
}

function optString(r: Record<string, unknown>, field: string): string | undefined {
  const v = r[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad(field, 'a string');
  return v.trim() || undefined;
}

export function parseInstantRequest(input: unknown): InstantStartRequest {
  const r = (input ?? {}) as Record<string, unknown>;
  if (typeof r.repository !== 'string' || !r.repository) throw bad('repository', 'choose a repository');
  if (typeof r.restorePointId !== 'string' || !r.restorePointId) throw bad('restorePointId', 'choose a restore point');
  const name = optString(r, 'name');
  if (name !== undefined && !INSTANT_NAME.test(name)) throw bad('name', "letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)");
  const storage = optString(r, 'storage');
  if (storage !== undefined && !storage.startsWith('/')) throw bad('storage', 'an absolute directory path on the host');
  if (r.network !== undefined && typeof r.network !== 'boolean') throw bad('network', 'true or false');
  const disks = diskKeys(r.disks);
  return {
    repository: r.repository,
    restorePointId: r.restorePointId,
    connection: optString(r, 'connection'),
    name,
    host: optString(r, 'host'),
    storage,
    network: r.network !== false,
    ...(disks ? {disks} : {}),
  };
}

/** What verify() did: the verdict (engine/verify-boot.ts) and where it ran; the screenshot saved. */
export interface VerifyOutcome extends Omit<BootVerification, 'screenshot'> {
  connection: string;
  host: string;
  vmName: string;
  /** The screenshot's file name in screenshotDir(stateDir), when there was a screen. */
  screenshot?: string;
}

/** File names of screenshots: only these are written to or read back from the screenshot directory. */
export const SCREENSHOT_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.png$/;
/** Screenshots older than this are removed when a new one is saved. */
const SCREENSHOT_KEEP_MS = 90 * 24 * 3600_000;

/** Where restore verification screenshots are kept (0700; files 0600). */
export function screenshotDir(stateDir: string): string {
  return join(stateDir, 'screenshots');
}

async function removeOldScreenshots(dir: string): Promise<void> {
  const cutoff = Date.now() - SCREENSHOT_KEEP_MS;
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!SCREENSHOT_FILE.test(f)) continue;
    const st = await stat(join(dir, f)).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) await rm(join(dir, f), {force: true});
  }
}

export class InstantRecoveries {
  private readonly live = new Map<string, Live>();
  /** Restore verifications' VMs while they boot (not listed, not in the history: their backup session tells). */
  private readonly verifying = new Map<string, Live>();
  private readonly file: DurableJsonFile<{instant: Recorded[]}>;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {stateDir: string; resources: Resources; restores: Pick<Restores, 'connectionFor'>; history: History; hub: EventHub; log: DaemonLog},
  ) {
    this.file = new DurableJsonFile(join(deps.stateDir, FILE));
  }

  /** The recorded instant recoveries' session ids (reconciliation leaves those sessions running). */
  async recordedSessions(): Promise<string[]> {
    return ((await this.file.read())?.instant ?? []).map((r) => r.id);
  }

  list(): InstantRecoveryInfo[] {
    return [...this.live.values()].map((l) => ({
      id: l.rec.id,
      name: l.rec.vm.name,
      vmName: l.rec.vmName,
      host: l.rec.vm.host,
      connection: l.rec.connection,
      repository: l.rec.repository,
      restorePointId: l.rec.restorePointId,
      restorePointTime: l.rec.restorePointTime,
      startedAt: l.rec.startedAt,
      network: l.rec.network,
      storage: l.rec.vm.storage,
      disks: l.rec.vm.overlays.map((o) => ({key: o.key, overlay: o.path})),
      phase: l.phase,
      ...(l.progress ? {progress: l.progress} : {}),
      ...(l.error ? {error: l.error} : {}),
    }));
  }

  private get(id: string): Live {
    const l = this.live.get(id);
    if (!l) throw new UserError(`There is no instant recovery ${id}.`, {exitCode: ExitCode.notFound, hint: 'vmbackup instant list shows the running ones.'});
    return l;
  }

  /** Serves the restore point's disks (not its varstore) on a new NBD server, holding the point. */
  private async serve(l: Live, repo: Repository): Promise<(path: string) => Promise<void>> {
    const point = await repo.openRestorePoint(l.rec.restorePointId);
    l.hold = await repo.holdRestorePoint(l.rec.restorePointId, `instant recovery ${l.rec.vm.name || l.rec.id}`);
    const exports = [];
    for (const d of point.summary.disks.filter((x) => !isNvramDisk(x))) {
      const reader = await point.openDisk(d.key);
      exports.push({name: d.key, description: `${l.rec.vmName} ${d.key} (${l.rec.restorePointTime})`, source: reader, preferredBlockSize: reader.chunkSize});
    }
    l.server = new NbdServer({exports, log: (line) => this.deps.log('warn', `instant ${l.rec.id}: ${line}`)});
    const server = l.server;
    return (path) => server.listenUnix(path);
  }

  /**
   * Serves the point of `l` and starts its VM (with its UEFI variable store, when it has one);
   * the VM is recorded before anything is made on the host (onPrepared), so a daemon killed in
   * the middle finds what to clean up.
   */
  private async launch(l: Live, repo: Repository, instant: InstantRecovery, spec: Omit<InstantStartSpec, 'source' | 'serve' | 'onPrepared' | 'nvram'>, log: Logger): Promise<InstantVm> {
    const {source, reader} = await restoreInput({repository: repo, restorePointId: l.rec.restorePointId, disks: spec.disks});
    const nvramKey = source.disks.find((d) => isNvramDisk(d))?.key;
    let nvram: Uint8Array | undefined;
    if (nvramKey) {
      const r = await reader.openDisk(nvramKey);
      nvram = await r.read(0, r.size);
    }
    const serve = await this.serve(l, repo);
    const onPrepared = async (state: InstantVmState) => {
      l.rec.vm = state;
      await this.persist();
    };
    const vm = await instant.start({...spec, source, serve, onPrepared, ...(nvram ? {nvram} : {})}, log);
    l.vm = vm;
    l.rec.vm = vm.state;
    return vm;
  }

  private async release(l: Live): Promise<void> {
    await l.server?.close().catch(() => {});
    l.server = undefined;
    await l.hold?.release().catch(() => {});
    l.hold = undefined;
  }

  private persist(): Promise<void> {
    const data = {instant: [...this.live.values(), ...this.verifying.values()].filter((l) => l.rec.vm.uuid).map((l) => l.rec)};
    this.saving = this.saving.then(() => this.file.write(data)).catch((err: unknown) => this.deps.log('warn', `The list of instant recoveries could not be saved: ${err instanceof Error ? err.message : String(err)}`));
    return this.saving;
  }

  private publish(record: SessionRecord): void {
    const {log: _log, ...summary} = record;
    this.deps.hub.emit({type: 'session', session: summary});
  }

  private notes: Promise<void> = Promise.resolve();

  /** Adds a line to the instant recovery's session (and ends it); one at a time, so none is lost. */
  private note(id: string, severity: 'info' | 'warning' | 'error', code: string, message: string, end?: {state: SessionRecord['state']; reason?: string}): Promise<void> {
    this.notes = this.notes.then(() => this.writeNote(id, severity, code, message, end)).catch((err: unknown) => this.deps.log('warn', `The session ${id} could not be saved: ${err instanceof Error ? err.message : String(err)}`));
    return this.notes;
  }

  private async writeNote(id: string, severity: 'info' | 'warning' | 'error', code: string, message: string, end?: {state: SessionRecord['state']; reason?: string}): Promise<void> {
    const s = await this.deps.history.get(id);
    if (!s) return;
    const now = new Date().toISOString();
    s.log.push({time: now, severity, code, message, vm: s.vms[0]?.name});
    if (end) {
      s.state = end.state;
      if (end.reason) s.reason = end.reason;
      s.endedAt = now;
      const v = s.vms[0];
      if (v) {
        v.state = end.state === 'success' ? 'success' : 'failed';
        v.endedAt = now;
        if (end.reason) v.reason = end.reason;
      }
      s.totals = {...s.totals, durationMs: Date.parse(now) - Date.parse(s.startedAt)};
    }
    await this.deps.history.save(s);
    this.publish(s);
  }

  /** Starts an instant VM; resolves once it runs (seconds), with how long that took. */
  async start(input: unknown): Promise<{id: string; name: string; host: string; startedInMs: number}> {
    const t0 = Date.now();
    const req = parseInstantRequest(input);
    const repo = await this.deps.resources.repository(req.repository);
    const summary = (await repo.listRestorePoints()).find((p) => p.id === req.restorePointId);
    if (!summary) throw new UserError(`The repository has no restore point ${req.restorePointId}.`, {exitCode: ExitCode.notFound, hint: 'Pick one from the list of restore points.'});
    const {platform, connectionId} = this.deps.restores.connectionFor(req.connection, summary.platform, summary.sessionId);
    if (!platform.instant) {
      throw new UserError(`Instant recovery needs a libvirt (Morpheus VM Essentials) connection; ${connectionId} cannot start VMs from a backup.`, {
        hint: 'Choose a libvirt connection, or restore the VM instead.',
        exitCode: ExitCode.invalidInput,
      });
    }
    const name = req.name ?? `${summary.vmName.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50) || 'vm'}-instant`;
    if ([...this.live.values()].some((l) => l.rec.vm.name === name)) throw bad('name', `an instant VM named ${name} is already running`);
    const id = `instant-${compactStamp()}-${randomBytes(3).toString('hex')}`;
    const now = new Date().toISOString();
    const record: SessionRecord = {
      id,
      jobId: 'restore',
      jobName: `Instant recovery of ${summary.vmName}`,
      state: 'running',
      trigger: 'instant',
      attempt: 1,
      startedAt: now,
      repository: req.repository,
      vms: [{id: summary.vmId, name: summary.vmName, state: 'running', attempts: 1, restorePointId: summary.id, startedAt: now}],
      log: [],
      totals: {sizeBytes: summary.logicalSize, readBytes: 0, transferredBytes: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, durationMs: 0, rateBytesPerSec: 0},
    };
    await this.deps.history.save(record);
    this.publish(record);
    const rec: Recorded = {
      id,
      repository: req.repository,
      restorePointId: summary.id,
      connection: connectionId,
      vmName: summary.vmName,
      restorePointTime: summary.time,
      startedAt: now,
      network: req.network,
      vm: {host: '', name, uuid: '', storage: '', overlays: [], hostSocket: '', applianceSocket: ''},
    };
    const l: Live = {rec, phase: 'starting'};
    this.live.set(id, l);
    try {
      const vm = await this.launch(
        l,
        repo,
        platform.instant,
        {name, network: req.network, ...(req.host ? {host: req.host} : {}), ...(req.storage ? {storage: req.storage} : {}), ...(req.disks ? {disks: req.disks} : {})},
        (e) => void this.note(id, e.severity === 'error' ? 'error' : e.severity === 'warning' ? 'warning' : 'info', e.code, e.message),
      );
      l.phase = 'running';
      await this.persist();
      const ms = Date.now() - t0;
      await this.note(id, 'info', 'instant-running', `${name} runs on ${vm.state.host} from restore point ${summary.id} (${summary.time}), ${(ms / 1000).toFixed(1)} s after the request; its writes go to ${vm.state.overlays.map((o) => o.path).join(', ')}. Finish moves it to storage; stop discards it.`);
      this.deps.log('info', `instant recovery ${id}: ${name} runs on ${vm.state.host} from ${summary.id}`);
      return {id, name, host: vm.state.host, startedInMs: ms};
    } catch (err) {
      this.live.delete(id);
      await this.release(l);
      await this.persist();
      const message = err instanceof Error ? err.message : String(err);
      await this.note(id, 'error', 'instant-failed', message, {state: 'failed', reason: message});
      throw err;
    }
  }

  /**
   * Restore verification: starts the restore point as an isolated instant VM (no network, a
   * display adapter) on a libvirt connection (the one named, else the one its VM came from),
   * watches it boot (engine/verify-boot.ts), saves its screenshot as `<screenshotName>.png`, and
   * discards it. Recorded while it runs, so a daemon that dies meanwhile discards it at its next start.
   */
  async verify(o: {repository: string; restorePointId: string; connection?: string; timeoutMs: number; screenshotName: string; signal?: AbortSignal}): Promise<VerifyOutcome> {
    if (!SCREENSHOT_FILE.test(`${o.screenshotName}.png`)) throw new Error(`not a screenshot file name: ${o.screenshotName}.png`);
    const repo = await this.deps.resources.repository(o.repository);
    const summary = (await repo.listRestorePoints()).find((p) => p.id === o.restorePointId);
    if (!summary) throw new UserError(`The repository has no restore point ${o.restorePointId}.`, {exitCode: ExitCode.notFound});
    const {platform, connectionId} = this.deps.restores.connectionFor(o.connection, summary.platform, summary.sessionId);
    if (!platform.instant) {
      throw new UserError(`${connectionId} cannot start VMs from a backup: a restore point is verified on a libvirt (Morpheus VM Essentials) host.`, {
        hint: "Name a libvirt connection for the job's restore verification.",
        exitCode: ExitCode.invalidInput,
      });
    }
    const tag = randomBytes(3).toString('hex');
    const name = `${summary.vmName.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 40) || 'vm'}-verify-${tag}`;
    const id = `verify-${compactStamp()}-${tag}`;
    const rec: Recorded = {
      id,
      repository: o.repository,
      restorePointId: summary.id,
      connection: connectionId,
      vmName: summary.vmName,
      restorePointTime: summary.time,
      startedAt: new Date().toISOString(),
      network: false,
      purpose: 'verification',
      vm: {host: '', name, uuid: '', storage: '', overlays: [], hostSocket: '', applianceSocket: ''},
    };
    const l: Live = {rec, phase: 'starting'};
    this.verifying.set(id, l);
    try {
      o.signal?.throwIfAborted();
      const vm = await this.launch(l, repo, platform.instant, {name, network: false, display: true}, (e) => this.deps.log('info', `verification ${id}: ${e.message}`));
      await this.persist();
      const seen = await watchBoot(vm, {timeoutMs: o.timeoutMs, signal: o.signal});
      let screenshot: string | undefined;
      if (seen.screenshot) {
        screenshot = `${o.screenshotName}.png`;
        const dir = screenshotDir(this.deps.stateDir);
        await mkdir(dir, {recursive: true, mode: 0o700});
        await writeFile(join(dir, screenshot), seen.screenshot, {mode: 0o600});
        await removeOldScreenshots(dir);
      }
      const {screenshot: _png, ...verdict} = seen;
      return {...verdict, connection: connectionId, host: vm.state.host, vmName: name, ...(screenshot ? {screenshot} : {})};
    } finally {
      // Whatever happened (an abort too): nothing of the throw-away VM stays on the host.
      try {
        if (l.vm) await l.vm.discard();
        this.verifying.delete(id);
      } catch (err) {
        this.deps.log('warn', `verification ${id}: ${name} could not be discarded (${err instanceof Error ? err.message : String(err)}); the next start of the daemon tries again`);
      }
      await this.release(l);
      await this.persist();
    }
  }

  /** Moves the instant VM onto storage while it runs; resolves when asked (the copy goes on in the background). */
  finish(id: string, input: unknown): {id: string; phase: 'migrating'} {
    const l = this.get(id);
    const storage = optString((input ?? {}) as Record<string, unknown>, 'storage');
    if (storage !== undefined && !storage.startsWith('/')) throw bad('storage', 'an absolute directory path on the host');
    if (l.phase !== 'running' || !l.vm) throw new UserError(`Instant recovery ${id} is ${l.phase}, not running.`, {exitCode: ExitCode.invalidInput});
    const vm = l.vm;
    l.phase = 'migrating';
    l.error = undefined;
    const abort = (l.abort = new AbortController());
    void this.note(id, 'info', 'instant-migrating', `Moving ${vm.state.name} to storage (${storage ?? vm.state.storage}) while it runs.`);
    l.busy = (async () => {
      try {
        const {files} = await vm.migrate({
          ...(storage ? {storage} : {}),
          signal: abort.signal,
          onProgress: (done, total) => {
            l.progress = {doneBytes: done, totalBytes: total};
          },
        });
        this.live.delete(id);
        await this.release(l);
        await this.persist();
        await this.note(id, 'info', 'instant-finished', `${vm.state.name} runs on ${vm.state.host} from its own disks now (${files.join(', ')}) and is defined there; the export ended.`, {state: 'success'});
        this.deps.log('info', `instant recovery ${id}: ${vm.state.name} moved to storage`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        l.phase = 'running';
        l.progress = undefined;
        l.error = abort.signal.aborted ? 'The move to storage was stopped because the daemon stopped; finish again.' : message;
        await this.note(id, 'error', 'instant-migrate-failed', `Moving ${vm.state.name} to storage failed: ${message}. It still runs from the backup; try again, or stop it.`);
        this.deps.log('warn', `instant recovery ${id}: moving to storage failed: ${message}`);
      }
    })().finally(() => {
      l.abort = undefined;
      l.busy = undefined;
    });
    return {id, phase: 'migrating'};
  }

  /** Discards the instant VM: stopped, its overlays removed, the export ended. */
  async stop(id: string): Promise<{id: string; stopped: true}> {
    const l = this.get(id);
    if (l.phase === 'migrating') throw new UserError(`Instant recovery ${id} is being moved to storage; it cannot be discarded now.`, {exitCode: ExitCode.invalidInput, hint: 'Wait until the move ends.'});
    if (l.phase === 'starting') throw new UserError(`Instant recovery ${id} is still starting.`, {exitCode: ExitCode.invalidInput, hint: 'Try again in a few seconds.'});
    if (l.vm) await l.vm.discard();
    else await this.discardRecorded(l.rec);
    this.live.delete(id);
    await this.release(l);
    await this.persist();
    await this.note(id, 'info', 'instant-discarded', `${l.rec.vm.name} was stopped and discarded; its writes are gone, the restore point is unchanged.`, {state: 'success'});
    this.deps.log('info', `instant recovery ${id}: ${l.rec.vm.name} discarded`);
    return {id, stopped: true};
  }

  /** Without a live handle (resume failed): remove what the record names, through the platform. */
  private async discardRecorded(rec: Recorded): Promise<void> {
    const platform = this.deps.resources.platform(rec.connection);
    if (!platform.instant) return;
    const vm = await platform.instant.resume(rec.vm);
    await vm.discard();
  }

  /** A restore verification's VM left by a daemon that stopped mid-way: discarded (kept recorded when that fails). */
  private async discardVerification(rec: Recorded): Promise<void> {
    try {
      await this.discardRecorded(rec);
      this.deps.log('info', `verification ${rec.id}: ${rec.vm.name}, left running by an earlier start of the daemon, was discarded`);
    } catch (err) {
      this.verifying.set(rec.id, {rec, phase: 'running'});
      this.deps.log('warn', `verification ${rec.id}: ${rec.vm.name} on ${rec.vm.host} could not be discarded (${err instanceof Error ? err.message : String(err)}); trying again at the next start`);
    }
  }

  /** Daemon start: serves the recorded instant VMs' exports again (or cleans up the ones that are gone). */
  async resumeAll(): Promise<void> {
    const recorded = (await this.file.read())?.instant ?? [];
    for (const rec of recorded) {
      if (rec.purpose === 'verification') {
        await this.discardVerification(rec);
        continue;
      }
      const l: Live = {rec, phase: 'running'};
      this.live.set(rec.id, l);
      try {
        const platform: PlatformAdapter = this.deps.resources.platform(rec.connection);
        if (!platform.instant) throw new Error(`connection ${rec.connection} has no instant recovery`);
        const repo = await this.deps.resources.repository(rec.repository);
        const serve = await this.serve(l, repo);
        l.vm = await platform.instant.resume(rec.vm, serve);
        if (!(await l.vm.running())) {
          await l.vm.discard();
          this.live.delete(rec.id);
          await this.release(l);
          const reason = `${rec.vm.name} was no longer running on ${rec.vm.host} when the daemon started again (the host restarted, or it was stopped there); what was left of it was removed.`;
          await this.note(rec.id, 'error', 'instant-gone', reason, {state: 'failed', reason});
          continue;
        }
        await this.note(rec.id, 'info', 'instant-resumed', `The daemon started again and serves ${rec.vm.name}'s disks again.`);
        this.deps.log('info', `instant recovery ${rec.id}: serving ${rec.vm.name} again`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        l.error = `The export could not be served again: ${message}`;
        await this.release(l);
        this.deps.log('warn', `instant recovery ${rec.id}: ${l.error}`);
        await this.note(rec.id, 'error', 'instant-resume-failed', `${l.error}. Stop it to discard the VM.`);
      }
    }
    await this.persist();
  }

  /** Daemon stop: the instant VMs keep running (and stay recorded); their exports and tunnels close. */
  async shutdown(): Promise<void> {
    for (const l of this.live.values()) l.abort?.abort(new UserError('The daemon is stopping.', {exitCode: ExitCode.cancelled}));
    await Promise.allSettled([...this.live.values()].map((l) => l.busy));
    for (const l of this.live.values()) {
      await l.vm?.detach().catch(() => {});
      await this.release(l);
    }
    await this.saving;
    await this.notes;
  }
}
