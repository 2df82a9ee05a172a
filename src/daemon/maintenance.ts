/**
 * Repository upkeep the daemon does on its own:
 * - after each session: retention (the job's policy, only the VMs of that session), a free-space
 *   check (a warning in the session below the threshold), and the email report;
 * - daily GC of every repository (and right after a session that left the disk low on space);
 * - prune on request (POST /repositories/:id/prune): each job's retention applied to that job's
 *   restore points, as after a session. A restore point belongs to the job recorded in it; older
 *   points, written before jobs were recorded, to the job of their session, else to the job that
 *   wrote the VM's newest point (or picks it by id). Points of no job (deleted jobs, imported
 *   repositories) are left alone and their VMs listed;
 * - the scheduled health check (verify) per repository: damaged chunks are quarantined by
 *   verify, and the VMs whose restore points used them are marked so that their next backup
 *   reads every disk in full (`full: true`), which writes the damaged chunks again.
 *
 * The "read in full next time" marks are kept in needs-full.json, so they survive restarts.
 */
import {readFile} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import type {Low} from 'lowdb';
import {copySourceOf, vmSourceOf, type JobConfig, type RetentionConfig} from '../config/schema.js';
import {openDocument, type ConfigStore} from '../config/store.js';
import {message} from '../engine/backup-vm.js';
import type {MailQueue} from '../notify/mail-queue.js';
import type {MailAttachment, OutgoingMail} from '../notify/transport.js';
import {buildSessionMail} from '../notify/policy.js';
import {sessionWebhooks, type WebhookQueue} from '../notify/webhooks.js';
import type {RestorePointSummary, RetentionPolicy, VerifyReport} from '../repository/index.js';
import type {EventHub} from './event-hub.js';
import type {DaemonLog} from './log.js';
import {screenshotCid, toSessionReport} from './report.js';
import {SCREENSHOT_FILE, screenshotDir} from './instant.js';
import type {Resources} from './resources.js';
import type {SessionRecord} from '../api/session-model.js';
import type {PruneReply} from '../api/contract.js';

/** A report mail carries at most this many screenshots, each at most this big (a text-mode screen is a few KB). */
const MAX_SCREENSHOTS_PER_MAIL = 10;
const MAX_SCREENSHOT_BYTES = 1024 * 1024;

export function retentionPolicy(r: RetentionConfig): RetentionPolicy {
  return {
    keepLast: r.restorePoints,
    keepWithinDays: r.days,
    keepWeekly: r.gfs?.weekly || undefined,
    keepMonthly: r.gfs?.monthly || undefined,
    keepYearly: r.gfs?.yearly || undefined,
  };
}

interface NeedsFullData {
  vms: Record<string, {reason: string; since: string}>;
}

/** The last health check of each repository (health-checks.json): for the appliance's health view. */
export interface HealthCheckRecord {
  at: string;
  ok: boolean;
  problems: number;
}

export class Maintenance {
  private constructor(
    private readonly deps: {
      store: ConfigStore;
      resources: Resources;
      hub: EventHub;
      log: DaemonLog;
      mail?: MailQueue;
      webhooks?: WebhookQueue;
      appVersion: string;
      /** The job of a session in the history (prune finds a VM's job by its newest restore point). */
      jobOfSession?: (sessionId: string) => string | undefined;
    },
    private readonly marks: Low<NeedsFullData>,
    private readonly checks: Low<{repositories: Record<string, HealthCheckRecord>}>,
  ) {}

  static async open(deps: Maintenance['deps']): Promise<Maintenance> {
    const marks = await openDocument<NeedsFullData>(join(deps.store.stateDir, 'needs-full.json'), {vms: {}});
    const checks = await openDocument<{repositories: Record<string, HealthCheckRecord>}>(join(deps.store.stateDir, 'health-checks.json'), {repositories: {}});
    return new Maintenance(deps, marks, checks);
  }

  /** When each repository was last checked, and what was found. */
  lastHealthCheck(repositoryId: string): HealthCheckRecord | undefined {
    return this.checks.data.repositories[repositoryId];
  }

  needsFull(vmId: string): boolean {
    return vmId in this.marks.data.vms;
  }

  fullMarks(): NeedsFullData['vms'] {
    return this.marks.data.vms;
  }

  healed(vmId: string): void {
    if (!(vmId in this.marks.data.vms)) return;
    delete this.marks.data.vms[vmId];
    void this.marks.write().catch((err: unknown) => this.deps.log('error', `Cannot save needs-full.json: ${message(err)}`));
  }

  async afterSession(record: SessionRecord, job: JobConfig): Promise<void> {
    const repoCfg = this.deps.store.get('repositories', job.repository);
    const repo = await this.deps.resources.repository(job.repository);
    const note = (severity: 'info' | 'warning', code: string, text: string) =>
      record.log.push({time: new Date().toISOString(), severity, code, message: text});
    // Retention: only the VMs this session backed up, the job's policy, the job's own points.
    for (const vm of record.vms) {
      if (vm.state !== 'success' && vm.state !== 'warning') continue;
      try {
        const mine = (p: RestorePointSummary) => pointJob(p, this.deps.jobOfSession ?? (() => undefined), job.id) === job.id;
        const r = await repo.prune(retentionPolicy(job.retention), {vmId: vm.id, only: mine});
        if (r.removed.length) note('info', 'retention', `Retention removed ${r.removed.length} restore point(s) of ${vm.name}.`);
      } catch (err) {
        note('warning', 'retention-failed', `Retention for ${vm.name} failed: ${message(err)}`);
      }
    }
    const stats = await repo.stats();
    const lowPercent = this.deps.store.data.settings.lowSpacePercent;
    if (stats.totalBytes > 0 && (stats.freeBytes / stats.totalBytes) * 100 < lowPercent) {
      note('warning', 'repository-low-space', `Repository ${repoCfg.name} has only ${Math.round((stats.freeBytes / stats.totalBytes) * 100)}% free space left (threshold ${lowPercent}%).`);
      void this.gc(job.repository).catch(() => {});
    }
    this.notify(record, job, {name: repoCfg.name, path: repoCfg.path, freeBytes: stats.freeBytes, totalBytes: stats.totalBytes});
  }

  /**
   * The report of a session the daemon closed at start-up because it died while the session ran
   * (crash, kill -9, power loss): mailed like any other, so the administrator learns of it from
   * the same inbox. A job removed since is skipped; the repository's figures are best effort.
   */
  async reportInterrupted(record: SessionRecord): Promise<void> {
    const job = this.deps.store.list('jobs').find((j) => j.id === record.jobId);
    if (!job) return;
    const repoCfg = this.deps.store.list('repositories').find((r) => r.id === job.repository);
    const space = (repoCfg ? await this.deps.resources.space(repoCfg.id) : undefined) ?? {freeBytes: 0, totalBytes: 0};
    this.notify(record, job, {name: repoCfg?.name ?? job.repository, path: repoCfg?.path ?? '', ...space});
  }

  private notify(record: SessionRecord, job: JobConfig, repository: {name: string; path: string; freeBytes: number; totalBytes: number}): void {
    const email = this.deps.store.data.email;
    const report = toSessionReport(record, {jobDescription: job.description || undefined, copy: copySourceOf(job) !== undefined, lastAttempt: true, repository, hostname: hostname(), appVersion: this.deps.appVersion});
    if (email && this.deps.mail) {
      const mail = buildSessionMail(report, job.notification, email);
      const queue = this.deps.mail;
      if (mail) void this.withScreenshots(record, mail).then((m) => queue.enqueue(m));
    }
    if (this.deps.webhooks) {
      for (const message of sessionWebhooks(report, job.notification, this.deps.store.list('webhooks'))) void this.deps.webhooks.enqueue(message);
    }
  }

  /** The restore verification screenshots the report's HTML shows, as inline attachments (those still on disk). */
  private async withScreenshots(record: SessionRecord, mail: OutgoingMail): Promise<OutgoingMail> {
    const attachments: MailAttachment[] = [];
    for (const v of record.vms) {
      const file = v.verification?.screenshot;
      if (!file || !SCREENSHOT_FILE.test(file) || attachments.length >= MAX_SCREENSHOTS_PER_MAIL) continue;
      const png = await readFile(join(screenshotDir(this.deps.store.stateDir), file)).catch(() => undefined);
      if (png && png.length <= MAX_SCREENSHOT_BYTES) attachments.push({filename: file, contentType: 'image/png', cid: screenshotCid(file), contentBase64: png.toString('base64')});
    }
    return attachments.length ? {...mail, attachments} : mail;
  }

  async gc(repositoryId: string): Promise<void> {
    const repo = await this.deps.resources.repository(repositoryId);
    this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'gc', state: 'started'});
    try {
      const r = await repo.gc();
      if (r.interrupted) this.deps.log('warn', `GC of repository ${repositoryId}: ${r.interrupted}`);
      this.deps.log('info', `GC of repository ${repositoryId}: removed ${r.removedChunks} chunk(s), ${r.removedBytes} bytes`);
      this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'gc', state: 'finished', detail: `removed ${r.removedChunks} chunks`});
    } catch (err) {
      this.deps.log('warn', `GC of repository ${repositoryId} failed: ${message(err)}`);
      this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'gc', state: 'failed', detail: message(err)});
      throw err;
    }
  }

  /** Applies each job's retention to its VMs in the repository; see the module comment. */
  async prune(repositoryId: string): Promise<PruneReply> {
    this.deps.store.get('repositories', repositoryId);
    const repo = await this.deps.resources.repository(repositoryId);
    const jobs = this.deps.store.list('jobs').filter((j) => j.repository === repositoryId);
    this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'prune', state: 'started'});
    try {
      const groups = retentionGroups(await repo.listRestorePoints(), jobs, this.deps.jobOfSession ?? (() => undefined));
      const reply: PruneReply = {ok: true, removed: 0, kept: 0, vms: [], unassigned: []};
      for (const g of groups) {
        if (!g.job) {
          if (!reply.unassigned.some((u) => u.id === g.vmId)) reply.unassigned.push({id: g.vmId, name: g.vmName});
          continue;
        }
        const r = await repo.prune(retentionPolicy(g.job.retention), {vmId: g.vmId, only: (p) => g.points.has(p.id)});
        reply.removed += r.removed.length;
        reply.kept += r.kept.length;
        reply.vms.push({id: g.vmId, name: g.vmName, job: g.job.id, removed: r.removed.length, kept: r.kept.length});
      }
      const detail = `removed ${reply.removed} restore point(s)`;
      this.deps.log('info', `Prune of repository ${repositoryId}: ${detail}, kept ${reply.kept}; ${reply.unassigned.length} VM(s) of no job left alone`);
      this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'prune', state: 'finished', detail});
      return reply;
    } catch (err) {
      this.deps.log('warn', `Prune of repository ${repositoryId} failed: ${message(err)}`);
      this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'prune', state: 'failed', detail: message(err)});
      throw err;
    }
  }

  /** Verifies the repository; VMs with damaged or missing data get a full read next time. */
  async healthCheck(repositoryId: string): Promise<{ok: boolean; vms: string[]; problems: number}> {
    const repo = await this.deps.resources.repository(repositoryId);
    this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'verify', state: 'started'});
    const report = await repo.verify();
    const points = await repo.listRestorePoints();
    const damaged = new Set<string>();
    for (const p of report.problems) for (const ref of p.references) damaged.add(ref.restorePoint);
    for (const p of report.indexProblems) damaged.add(p.restorePoint);
    const vms = [...new Set(points.filter((p) => damaged.has(p.id)).map((p) => p.vmId))];
    for (const vm of vms) this.marks.data.vms[vm] = {reason: `health check of repository ${repositoryId} found damaged data`, since: new Date().toISOString()};
    if (vms.length) await this.marks.write();
    const problems = report.problems.length + report.indexProblems.length + report.manifestProblems.length;
    this.checks.data.repositories[repositoryId] = {at: new Date().toISOString(), ok: report.ok, problems};
    await this.checks.write().catch((err: unknown) => this.deps.log('error', `Cannot save health-checks.json: ${message(err)}`));
    this.deps.log(report.ok ? 'info' : 'warn', `Health check of repository ${repositoryId}: ${report.ok ? 'no problems' : `${problems} problem(s); next backup of ${vms.length} VM(s) reads in full`}`);
    this.deps.hub.emit({type: 'maintenance', repository: repositoryId, action: 'verify', state: 'finished', detail: report.ok ? 'ok' : `${problems} problems`});
    if (!report.ok) this.mailDamage(repositoryId, report, points.filter((p) => vms.includes(p.vmId)));
    return {ok: report.ok, vms, problems};
  }

  /**
   * Damage found by a health check goes to the global recipients at once, with what it means and
   * what the next backup does about it: an administrator must not learn of it at restore time.
   */
  private mailDamage(repositoryId: string, report: VerifyReport, affected: RestorePointSummary[]): void {
    const email = this.deps.store.data.email;
    if (!email || !this.deps.mail || email.recipients.length === 0) return;
    const repoCfg = this.deps.store.list('repositories').find((r) => r.id === repositoryId);
    const name = repoCfg?.name ?? repositoryId;
    const vmNames = [...new Map(affected.map((p) => [p.vmId, p.vmName])).values()];
    const lines = [
      `The health check of repository ${name} (${repoCfg?.path ?? ''}) on ${hostname()} found damage.`,
      '',
      ...report.problems.map((p) => `- chunk ${p.chunk} is ${p.problem}: ${p.detail}${p.quarantinedTo ? ` (set aside as ${p.quarantinedTo})` : ''}; used by ${p.references.map((r) => `${r.vmName} ${r.disk} in ${r.restorePoint}`).join(', ')}`),
      ...report.indexProblems.map((p) => `- the index of disk ${p.disk} in restore point ${p.restorePoint} is damaged: ${p.detail}`),
      ...report.manifestProblems.map((p) => `- restore point ${p.restorePoint} cannot be read: ${p.detail}`),
      '',
      'What happens next:',
      vmNames.length
        ? `- the next backup of ${vmNames.join(', ')} reads every disk in full and writes the damaged data again, so the new restore point is good;`
        : '- no VM needs a full backup for this;',
      '- the restore points named above stay damaged: restore from a newer or older one;',
      ...(report.manifestProblems.length ? [`- a restore point that cannot be read can be removed with "vmbackup repo forget ${repoCfg?.path ?? '<path>'} <id>" once you have checked it.`] : []),
    ];
    void this.deps.mail.enqueue({
      to: email.recipients,
      subject: `[vmbackup] ✖ Damage found in repository ${name}`,
      text: `${lines.join('\n')}\n`,
      headers: {'X-Vmbackup-Event': 'health-check-damage'},
    });
  }
}

/**
 * The job a restore point belongs to for retention: the job recorded in it; for a point written
 * before jobs were recorded, the job of its session while the history still knows it, else
 * `fallback`. Pure.
 */
export function pointJob(p: RestorePointSummary, jobOfSession: (sessionId: string) => string | undefined, fallback?: string): string | undefined {
  return p.jobId ?? (p.sessionId !== undefined ? jobOfSession(p.sessionId) : undefined) ?? fallback;
}

/** Each VM with restore points, and the job that owns it: the job of its newest point, else the job that picks it. Pure. */
export function vmOwners(
  points: readonly RestorePointSummary[],
  jobs: readonly JobConfig[],
  jobOfSession: (sessionId: string) => string | undefined,
): {id: string; name: string; job?: JobConfig}[] {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const newest = new Map<string, RestorePointSummary>();
  for (const p of points) {
    const cur = newest.get(p.vmId);
    if (!cur || cur.time < p.time) newest.set(p.vmId, p);
  }
  return [...newest.values()].map((p) => {
    const recorded = byId.get(pointJob(p, jobOfSession) ?? '');
    const job = recorded ?? jobs.find((j) => vmSourceOf(j)?.vms.some((v) => v.id === p.vmId));
    return {id: p.vmId, name: p.vmName, job};
  });
}

/**
 * The restore points grouped by VM and by the job whose retention governs them (pointJob, with
 * the VM's owner for old points that say nothing). Two jobs backing up one VM into one
 * repository (a daily and a monthly one) each prune only their own points. Groups of no
 * configured job (deleted jobs, imported repositories) are left alone. Pure.
 */
export function retentionGroups(
  points: readonly RestorePointSummary[],
  jobs: readonly JobConfig[],
  jobOfSession: (sessionId: string) => string | undefined,
): {vmId: string; vmName: string; job?: JobConfig; points: Set<string>}[] {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const owner = new Map(vmOwners(points, jobs, jobOfSession).map((o) => [o.id, o]));
  const groups = new Map<string, {vmId: string; vmName: string; job?: JobConfig; points: Set<string>}>();
  for (const p of points) {
    const o = owner.get(p.vmId)!;
    const job = byId.get(pointJob(p, jobOfSession, o.job?.id) ?? '');
    const key = JSON.stringify([p.vmId, job?.id ?? null]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = {vmId: p.vmId, vmName: o.name, ...(job ? {job} : {}), points: new Set()}));
    g.points.add(p.id);
  }
  return [...groups.values()];
}
