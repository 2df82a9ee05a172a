/**
 * The session runner: one session per job run, one at a time per job. A session resolves the
 * job's VMs from the inventory, backs each VM up (engine/backup-vm.ts) once the VM is free
 * (one operation per VM across all jobs: vm-locks.ts) and a worker has a slot (workers.ts),
 * under the job's bandwidth limit (throttle.ts). It records per-VM status with the reason, a log
 * with every warning, and figures; retries failed VMs only (count, wait); and can be stopped:
 * VMs that already committed keep their restore points, the others are aborted cleanly.
 *
 * History is saved when the session starts, after each VM and at the end (history.ts), so a
 * daemon that dies mid-session leaves a "running" record that start-up reconciliation closes.
 */
import {randomBytes} from 'node:crypto';
import type {Clock} from '../notify/clock.js';
import {copySourceOf, vmSourceOf, type JobConfig, type VmSource} from '../config/schema.js';
import type {ConfigStore} from '../config/store.js';
import {backupVm, checkpointsNeededElsewhere, message} from '../engine/backup-vm.js';
import type {EngineEvent} from '../engine/events.js';
import type {WorkerMode} from '../engine/placement.js';
import type {SessionEvent} from '../platforms/types.js';
import {ExitCode, UserError} from '../util/errors.js';
import type {EventHub} from './event-hub.js';
import {sessionTotals, vmFigures} from './figures.js';
import type {History} from './history.js';
import type {DaemonLog} from './log.js';
import type {Resources} from './resources.js';
import {selectVms, type SelectedVm} from './selection.js';
import {MAX_LOG_LINES, type LogLine, type SessionRecord} from '../api/session-model.js';
import {tokenBucket} from './throttle.js';
import type {VmLocks} from './vm-locks.js';
import type {InstantRecoveries} from './instant.js';
import {affinity, type ResourceScheduler, type WorkRequest} from './workers.js';
import {WEEKDAYS} from '../config/fields.js';
import {runCopySession} from './copy-session.js';
import {retryFailed} from './retries.js';

export interface SessionHooks {
  /** After a session ended (retention, notification); errors are logged into the session. */
  afterSession?: (record: SessionRecord, job: JobConfig) => Promise<void>;
  /** VM ids whose next backup must read everything (health check found damage). */
  needsFull?: (vmId: string) => boolean;
  /** Called after a VM's backup committed in full. */
  vmHealed?: (vmId: string) => void;
}

interface Running {
  record: SessionRecord;
  controller: AbortController;
  done: Promise<void>;
}

export class SessionManager {
  private readonly running = new Map<string, Running>();
  private closed = false;
  /** Sessions wait for this before touching a platform (start-up cleanup must finish first). */
  private gate: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      store: ConfigStore;
      resources: Resources;
      history: History;
      hub: EventHub;
      locks: VmLocks;
      workers: ResourceScheduler;
      clock: Clock;
      log: DaemonLog;
      hooks?: SessionHooks;
      /** Restore verification (instant.ts): boots a restore point in isolation and says what it saw. */
      verify?: InstantRecoveries['verify'];
    },
  ) {}

  /** Holds every session's platform work until `p` settles. */
  holdUntil(p: Promise<unknown>): void {
    this.gate = p.catch(() => {});
  }

  /** Sessions in progress. */
  list(): SessionRecord[] {
    return [...this.running.values()].map((r) => r.record);
  }

  runningForJob(jobId: string): SessionRecord | undefined {
    return this.list().find((s) => s.jobId === jobId);
  }

  /** The live record of a running session, else the one in the history (with its log). */
  async get(id: string): Promise<SessionRecord | undefined> {
    return this.running.get(id)?.record ?? (await this.deps.history.get(id));
  }

  /** Starts a session of the job; only the given VM ids when `only` is set (retry-failed). */
  start(jobId: string, trigger: string, only?: string[]): SessionRecord {
    if (this.closed) throw new UserError('The daemon is shutting down.', {hint: 'Start the job again once vmbackupd is back.', exitCode: ExitCode.cancelled});
    const job = this.deps.store.get('jobs', jobId);
    const busy = this.runningForJob(jobId);
    if (busy) {
      throw new UserError(`Job ${job.name} is already running (session ${busy.id}).`, {
        hint: 'Wait for it to finish, or stop it first (vmbackup job stop).',
        exitCode: ExitCode.locked,
      });
    }
    const now = new Date(this.deps.clock.now()).toISOString();
    const record: SessionRecord = {
      id: `${now.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`,
      jobId,
      jobName: job.name,
      state: 'running',
      trigger,
      attempt: 1,
      startedAt: now,
      repository: job.repository,
      vms: [],
      log: [],
      totals: sessionTotals([], now, now),
    };
    const controller = new AbortController();
    const entry: Running = {record, controller, done: Promise.resolve()};
    this.running.set(record.id, entry);
    entry.done = this.run(entry, job, only).catch((err: unknown) => {
      this.deps.log('error', `Session ${record.id} crashed: ${message(err)}`, {stack: err instanceof Error ? err.stack : undefined});
    });
    return record;
  }

  /** Stops the running session (by session or job id). Resolves when it has ended. */
  async stop(id: string, reason = 'Stopped by the operator.'): Promise<SessionRecord> {
    const entry = this.running.get(id) ?? [...this.running.values()].find((r) => r.record.jobId === id);
    if (!entry) {
      throw new UserError(`No running session with id ${id}.`, {hint: 'List running sessions with vmbackup status.', exitCode: ExitCode.notFound});
    }
    entry.record.reason = reason;
    entry.controller.abort(new UserError(reason, {exitCode: ExitCode.cancelled}));
    await entry.done;
    return entry.record;
  }

  /** Stops every session and refuses new ones (SIGTERM). */
  async shutdown(reason: string): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.keys()].map((id) => this.stop(id, reason).catch(() => {})));
  }

  /** The VMs that failed in the job's last finished session. */
  /** The placement kind of a worker ('appliance', 'cluster', 'host'); the appliance's when unknown. */
  private workerPlacement(workerId: string): string {
    const w = this.deps.store.list('workers').find((x) => x.id === workerId);
    return w?.placement.kind ?? 'appliance';
  }

  /**
   * Whether the VM's disks may be read by a worker on its host (engine/placement.ts): the worker
   * the scheduler granted is placed on the VM's host or in its cluster. Otherwise the appliance
   * reads them, and the reason says why.
   */
  private hostWorkers(workerId: string, req: WorkRequest): {workers: WorkerMode; workersOffReason?: string} {
    const w = this.deps.store.list('workers').find((x) => x.id === workerId);
    if (!w || w.placement.kind === 'appliance') return {workers: 'off', workersOffReason: `its disk tasks run on the appliance's worker "${w?.name ?? workerId}"`};
    if ((affinity(w.placement, req) ?? 2) >= 2) {
      return {workers: 'off', workersOffReason: `its disk tasks got slots of worker "${w.name}", which is placed on ${w.placement.kind === 'host' ? `host ${w.placement.host}` : `cluster ${w.placement.cluster}`}, not where the VM runs`};
    }
    return {workers: 'auto'};
  }

  lastFailedVms(jobId: string): string[] {
    const last = this.deps.history
      .list()
      .filter((s) => s.jobId === jobId && s.state !== 'running')
      .at(-1);
    return last ? last.vms.filter((v) => v.state === 'failed' || v.state === 'stopped').map((v) => v.id) : [];
  }

  private async run(entry: Running, job: JobConfig, only?: string[]): Promise<void> {
    const {record, controller} = entry;
    const {signal} = controller;
    const log = (line: Omit<LogLine, 'time'>) => this.addLog(record, line);
    /** Set when restore verification follows the backups: the session's rate is over the backups alone. */
    let backupsEndedAt: string | undefined;
    this.publish(record);
    await this.save(record);
    await this.gate;
    try {
      const copy = copySourceOf(job);
      if (copy) {
        const throttle = job.bandwidthLimitMBps ? abortable(tokenBucket(job.bandwidthLimitMBps * 1_000_000), signal) : undefined;
        await runCopySession(
          {
            repository: (id) => this.deps.resources.repository(id),
            log: (r, line) => this.addLog(r, line),
            changed: async (r, save) => {
              this.publish(r);
              if (save) await this.save(r);
            },
            now: () => this.deps.clock.now(),
            sleep: (ms, sig) => this.sleep(ms, sig),
          },
          record,
          job,
          copy,
          {signal, ...(only ? {only} : {}), ...(throttle ? {throttle} : {})},
        );
      } else {
        await this.runBackups(record, job, vmSourceOf(job)!, only, signal, log);
      }
      if (job.restoreVerification.enabled && !signal.aborted && !copy) {
        backupsEndedAt = new Date().toISOString();
        await this.verifyPoints(record, job, signal);
      }
    } catch (err) {
      if (!signal.aborted) {
        record.reason = message(err);
        log({severity: 'error', code: 'session-failed', message: message(err)});
      }
    }
    const final = this.finish(record, signal.aborted, backupsEndedAt);
    if (this.deps.hooks?.afterSession) {
      try {
        // The record says 'running' until retention and the report are done, so a client that
        // waits for the end can start the job again at once. (vms and log are shared arrays.)
        await this.deps.hooks.afterSession({...record, state: final}, job);
      } catch (err) {
        log({severity: 'warning', code: 'after-session-failed', message: `After-session work failed: ${message(err)}`});
      }
    }
    record.state = final;
    this.running.delete(record.id);
    await this.save(record);
    this.publish(record);
    this.deps.log('info', `Session ${record.id} of job ${job.name} ended: ${record.state}`, {session: record.id, job: job.id, state: record.state});
  }

  /** A backup job's VMs: selected from the connection's inventory, backed up in parallel (worker slots), failed ones retried. */
  private async runBackups(record: SessionRecord, job: JobConfig, source: VmSource, only: string[] | undefined, signal: AbortSignal, log: (line: Omit<LogLine, 'time'>) => void): Promise<void> {
    const sel = await this.select(source, log);
    for (const m of sel.missing) {
      record.vms.push({id: m.id, name: m.name ?? m.id, state: 'failed', reason: 'The VM is no longer in the inventory (deleted or moved).', attempts: 0});
      log({severity: 'error', code: 'vm-not-found', message: `VM ${m.name ?? m.id} was not found on the connection.`, vm: m.name ?? m.id});
    }
    let vms = sel.vms;
    if (only) vms = vms.filter((v) => only.includes(v.id));
    if (vms.length === 0 && sel.missing.length === 0) log({severity: 'warning', code: 'no-vms', message: 'The job selects no VM at the moment.'});
    for (const v of vms) record.vms.push({id: v.id, name: v.name, state: 'pending', attempts: 0});
    // Saved now, so a daemon that dies mid-session leaves the list of VMs it was working on.
    this.publish(record);
    await this.save(record);
    const repo = await this.deps.resources.repository(job.repository);
    const throttle = job.bandwidthLimitMBps ? abortable(tokenBucket(job.bandwidthLimitMBps * 1_000_000), signal) : undefined;
    const activeFull = job.activeFullDays.includes(WEEKDAYS[new Date(this.deps.clock.now()).getDay()]!);

    await retryFailed(record, job.retries, vms, (todo) => Promise.all(todo.map((vm) => this.runVm(record, job, source.connection, vm, repo, {signal, throttle, activeFull}))).then(() => undefined), {
      signal,
      log,
      waiting: () => this.publish(record),
      sleep: (ms, sig) => this.sleep(ms, sig),
    });
  }

  /**
   * Restore verification of the session's new restore points, one VM at a time (each boots a VM on
   * a host). A point that does not boot makes its VM a warning: the backup is there, but an
   * administrator must look before trusting it. What was seen is the row's `verification` and a
   * log line (the report and the console show both), not its `reason`, which stays the backup's.
   */
  private async verifyPoints(record: SessionRecord, job: JobConfig, signal: AbortSignal): Promise<void> {
    const opt = job.restoreVerification;
    const jobConnection = this.deps.store.list('connections').find((c) => c.id === vmSourceOf(job)?.connection);
    const connection = opt.connection ?? (jobConnection?.kind === 'morpheus' ? jobConnection.id : undefined);
    for (const row of record.vms) {
      if (signal.aborted) return;
      if ((row.state !== 'success' && row.state !== 'warning') || !row.restorePointId) continue;
      if (!this.deps.verify || !connection) {
        const why = !connection
          ? "restore points of this job's connection are verified on a libvirt host: name a libvirt (Morpheus) connection for the restore verification"
          : 'this daemon cannot start VMs from a backup';
        row.verification = {result: 'skipped', message: `not verified: ${why}`};
        this.addLog(record, {severity: 'warning', code: 'verify-skipped', message: `The restore point of ${row.name} was not verified: ${why}.`, vm: row.name});
        continue;
      }
      row.verification = {result: 'running', message: 'booting the restore point in an isolated VM', connection};
      this.addLog(record, {severity: 'info', code: 'verify-started', message: `Verifying the restore point of ${row.name}: starting it without network on ${connection} (at most ${opt.timeoutSeconds} s).`, vm: row.name});
      this.publish(record);
      try {
        const v = await this.deps.verify({
          repository: job.repository,
          restorePointId: row.restorePointId,
          connection,
          timeoutMs: opt.timeoutSeconds * 1000,
          screenshotName: `${record.id}-${row.restorePointId}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 140),
          signal,
        });
        row.verification = {result: v.result, message: v.message, ...(v.signal ? {signal: v.signal} : {}), connection: v.connection, host: v.host, vmName: v.vmName, readBytes: v.readBytes, durationMs: v.durationMs, ...(v.screenshot ? {screenshot: v.screenshot} : {})};
        const where = `${v.vmName} on ${v.host}`;
        if (v.result === 'passed') {
          this.addLog(record, {severity: 'info', code: 'verify-passed', message: `The restore point of ${row.name} boots: ${v.message} (${where}, discarded).`, vm: row.name});
        } else {
          row.state = 'warning';
          this.addLog(record, {severity: v.result === 'failed' ? 'error' : 'warning', code: v.result === 'failed' ? 'verify-failed' : 'verify-warning', message: `The restore point of ${row.name} ${v.result === 'failed' ? 'did not boot' : 'booted only in part'}: ${v.message} (${where}, discarded).`, vm: row.name});
        }
      } catch (err) {
        if (signal.aborted) {
          row.verification = {result: 'skipped', message: 'not verified: the session was stopped', connection};
          return;
        }
        row.verification = {result: 'failed', message: `the verification could not run: ${message(err)}`, connection};
        row.state = 'warning';
        this.addLog(record, {severity: 'warning', code: 'verify-error', message: `The restore point of ${row.name} could not be verified: ${message(err)}`, vm: row.name});
      }
      this.publish(record);
      await this.save(record);
    }
  }

  /**
   * The checkpoints of `vmId` that repositories other than `repositoryId` build on: the backup
   * keeps them (a VM in two jobs stays incremental in both). A repository that cannot be opened
   * keeps every checkpoint.
   */
  private async neededElsewhere(repositoryId: string, vmId: string): Promise<(id: string) => boolean> {
    const others = [];
    for (const r of this.deps.store.list('repositories')) {
      if (r.id === repositoryId) continue;
      const repo = await this.deps.resources.repository(r.id).catch(() => undefined);
      if (!repo) return () => true;
      others.push(repo);
    }
    return checkpointsNeededElsewhere(others, vmId);
  }

  /**
   * The job's VMs. A job that picks VMs by id describes those VMs only (one VM costs one VM,
   * however many others the hosts run); one that picks clusters, hosts or tags reads a fresh
   * inventory. When the inventory cannot be read (one broken VM on a host can fail it) and the
   * job picks VMs only by id, those are backed up anyway: the platform finds each VM by id when
   * it opens the backup.
   */
  private async select(s: VmSource, log: (line: Omit<LogLine, 'time'>) => void) {
    const byIdOnly = s.clusters.length + s.hosts.length + s.tags.length === 0;
    if (byIdOnly) {
      const picks = s.vms.filter((v) => !s.exclude.includes(v.id));
      const {vms, failed} = await this.deps.resources.findVms(s.connection, picks.map((v) => v.id));
      const sel = selectVms(s, vms);
      for (const f of failed) {
        const pick = picks.find((v) => v.id === f.id)!;
        log({severity: 'warning', code: 'inventory-failed', message: `VM ${pick.name ?? pick.id} could not be described (${message(f.error)}); backing it up by id.`, vm: pick.name ?? pick.id});
        sel.missing = sel.missing.filter((m) => m.id !== f.id);
        sel.vms.push({id: pick.id, name: pick.name ?? pick.id, disks: pick.disks, diskCount: pick.disks?.length ?? 1});
      }
      return sel;
    }
    try {
      const inv = await this.deps.resources.inventory(s.connection, true);
      return selectVms(s, inv.vms);
    } catch (err) {
      if (s.clusters.length + s.hosts.length + s.tags.length > 0) throw err;
      log({severity: 'warning', code: 'inventory-failed', message: `The inventory could not be read (${message(err)}); backing up the VMs picked by id.`});
      return {vms: s.vms.filter((v) => !s.exclude.includes(v.id)).map((v) => ({id: v.id, name: v.name ?? v.id, disks: v.disks, diskCount: v.disks?.length ?? 1})), missing: []};
    }
  }

  private async runVm(
    record: SessionRecord,
    job: JobConfig,
    connection: string,
    vm: SelectedVm,
    repo: Awaited<ReturnType<Resources['repository']>>,
    o: {signal: AbortSignal; throttle?: (bytes: number) => Promise<void>; activeFull: boolean},
  ): Promise<void> {
    const row = record.vms.find((r) => r.id === vm.id)!;
    row.attempts++;
    row.reason = undefined;
    const key = `${connection}/${vm.id}`;
    let release: (() => void) | undefined;
    let grant: Awaited<ReturnType<ResourceScheduler['acquire']>> | undefined;
    try {
      const holder = this.deps.locks.holder(key);
      if (holder) {
        row.state = 'waiting';
        this.addLog(record, {severity: 'info', code: 'vm-busy', message: `VM ${vm.name} is busy in session ${holder}; waiting for it.`, vm: vm.name});
        this.publish(record);
      }
      release = await this.deps.locks.acquire(key, record.id, o.signal);
      const req = {connection, host: vm.host, cluster: vm.cluster, want: Math.max(1, vm.diskCount)};
      grant = await this.deps.workers.acquire(req, o.signal);
      const full = o.activeFull || (this.deps.hooks?.needsFull?.(vm.id) ?? false);
      row.state = 'running';
      row.worker = grant.worker;
      row.full = full;
      row.startedAt = new Date().toISOString();
      this.publish(record);
      const platform = this.deps.resources.platform(connection);
      const keepCheckpoint = await this.neededElsewhere(job.repository, vm.id);
      const result = await backupVm({
        keepCheckpoint,
        platform,
        repository: repo,
        vmId: vm.id,
        vmName: vm.name,
        sessionId: record.id,
        jobId: job.id,
        ...(job.retentionLockDays !== undefined ? {lockDays: job.retentionLockDays} : {}),
        guestConsistency: job.guestConsistency,
        disks: vm.disks,
        full,
        parallelDisks: grant.slots,
        // The appliance's own worker reads through the manager (oVirt engine proxy); a worker
        // placed in the VM's cluster or host reads from the host (imageio transfer_url).
        dataPath: this.workerPlacement(grant.worker) === 'appliance' ? 'proxy' : 'host',
        ...this.hostWorkers(grant.worker, req),
        throttle: o.throttle,
        signal: o.signal,
        onEvent: (event) => this.onEngineEvent(record, event),
      });
      row.endedAt = result.endedAt;
      row.incremental = result.incremental;
      row.figures = vmFigures(result.disks, Date.parse(result.endedAt) - Date.parse(row.startedAt));
      row.restorePointId = result.restorePoint?.id;
      if (result.status === 'failed') {
        row.state = o.signal.aborted ? 'stopped' : 'failed';
        row.reason = o.signal.aborted ? record.reason ?? 'Stopped.' : message(result.error);
      } else {
        row.state = result.status;
        if (full) this.deps.hooks?.vmHealed?.(vm.id);
      }
    } catch (err) {
      row.state = o.signal.aborted ? 'stopped' : 'failed';
      row.reason = o.signal.aborted ? record.reason ?? 'Stopped.' : message(err);
      row.endedAt = new Date().toISOString();
      if (!o.signal.aborted) this.addLog(record, {severity: 'error', code: 'vm-backup-failed', message: message(err), vm: vm.name});
    } finally {
      grant?.release();
      release?.();
    }
    this.publish(record);
    await this.save(record);
  }

  private onEngineEvent(record: SessionRecord, event: EngineEvent): void {
    if (event.type === 'log') this.addLog(record, event.event, event.time);
    this.deps.hub.emit({type: 'engine', sessionId: record.id, jobId: record.jobId, event});
  }

  private addLog(record: SessionRecord, e: SessionEvent | Omit<LogLine, 'time'>, time = new Date().toISOString()): void {
    if (record.log.length >= MAX_LOG_LINES) {
      // Keep the first half and the newest lines; note the cut once.
      const cut = record.log.findIndex((l) => l.code === 'log-truncated');
      if (cut < 0) record.log.splice(MAX_LOG_LINES / 2, 0, {time, severity: 'info', code: 'log-truncated', message: 'Lines were left out here to keep the log short.'});
      record.log.splice(MAX_LOG_LINES / 2 + 1, 1);
    }
    record.log.push({time, severity: e.severity, code: e.code, message: e.message, vm: e.vm, disk: e.disk});
  }

  /** Closes the VMs and figures of the record and returns its final state (not yet set). */
  private finish(record: SessionRecord, stopped: boolean, backupsEndedAt?: string): SessionRecord['state'] {
    record.endedAt = new Date(Math.max(this.deps.clock.now(), Date.now())).toISOString();
    for (const v of record.vms) {
      if (v.state === 'pending' || v.state === 'waiting' || v.state === 'running') {
        v.state = stopped ? 'stopped' : 'failed';
        v.reason ??= stopped ? record.reason ?? 'Stopped.' : 'Not started.';
      }
    }
    record.totals = sessionTotals(record.vms, record.startedAt, record.endedAt, backupsEndedAt);
    if (stopped) return 'stopped';
    if (record.reason || record.vms.some((v) => v.state === 'failed')) return 'failed';
    if (record.vms.some((v) => v.state === 'warning') || record.log.some((l) => l.severity === 'warning')) return 'warning';
    return 'success';
  }

  private publish(record: SessionRecord): void {
    const {log: _log, ...rest} = record;
    this.deps.hub.emit({type: 'session', session: structuredClone(rest)});
  }

  private async save(record: SessionRecord): Promise<void> {
    try {
      await this.deps.history.save(record);
    } catch (err) {
      this.deps.log('error', `Cannot save the session history: ${message(err)}`);
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimer(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        timer.cancel();
        resolve();
      };
      signal.addEventListener('abort', onAbort, {once: true});
    });
  }
}

/** A throttle that gives up waiting as soon as the session is stopped. */
function abortable(throttle: (bytes: number) => Promise<void>, signal: AbortSignal): (bytes: number) => Promise<void> {
  const stopped = new Promise<never>((_, reject) => {
    const fail = () => reject(signal.reason ?? new Error('Stopped.'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, {once: true});
  });
  stopped.catch(() => {});
  return async (bytes) => {
    await Promise.race([throttle(bytes), stopped]);
    if (signal.aborted) throw signal.reason ?? new Error('Stopped.');
  };
}
