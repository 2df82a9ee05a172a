/**
 * The configuration the control API exposes: the saved objects (connections, repositories,
 * workers, jobs) as clients see them (secrets redacted, a job with its schedule in words and its
 * last session), users, email and appliance settings, and the "test" actions. It holds the glue
 * that spans several parts (a new repository is created on disk before it is saved; a changed
 * connection gets its known_hosts file). Built by the Daemon (daemon.ts) from the parts it wires.
 */
import {hostname} from 'node:os';
import {rm, statfs, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import type {TestEmailReply, TestWebhookReply} from '../api/contract.js';
import {ConfigError, parseConfig} from '../config/parse.js';
import {connectionSchema, emailSettingsSchema, repositorySchema, settingsSchema} from '../config/schema.js';
import {describeSchedule, nextRuns} from '../config/schedule.js';
import {keepSecrets, redact} from '../config/secrets.js';
import type {Collection, CollectionTypes, ConfigStore} from '../config/store.js';
import {message} from '../engine/backup-vm.js';
import type {Clock} from '../notify/clock.js';
import type {MailQueue} from '../notify/mail-queue.js';
import {smtpSettingsSchema} from '../notify/settings.js';
import {sendTestMessage} from '../notify/test-message.js';
import {newWebhookMessage, postWebhook, renderWebhookBody, testReport, webhookHost, type WebhookQueue} from '../notify/webhooks.js';
import {ExitCode, explainIoError, isUserError, UserError} from '../util/errors.js';
import {isS3Url} from '../util/s3-url.js';
import {isSshUrl} from '../util/ssh-url.js';
import {type DailySummary, parseDailySummaryChange, summaryInput} from './daily-summary.js';
import type {EventHub} from './event-hub.js';
import type {History} from './history.js';
import {Resources} from './resources.js';
import type {Scheduler} from './scheduler.js';
import type {SessionManager} from './sessions.js';
import {VERSION} from './version.js';

/** A listed object sent back: the computed `info` of jobs and webhooks is not part of it. */
function withoutInfo(c: Collection, input: unknown): unknown {
  if (c !== 'webhooks' || input === null || typeof input !== 'object') return input;
  const {info: _info, ...rest} = input as Record<string, unknown>;
  return rest;
}

export interface ConfigurationDeps {
  store: ConfigStore;
  resources: Resources;
  hub: EventHub;
  history: History;
  sessions: Pick<SessionManager, 'runningForJob' | 'list'>;
  clock: Clock;
  mail?: MailQueue;
  webhooks?: WebhookQueue;
  dailySummary: DailySummary;
  scheduler: Pick<Scheduler, 'refresh' | 'nextRun'>;
}

export class ConfigurationService {
  constructor(private readonly d: ConfigurationDeps) {}

  list(c: Collection): unknown[] {
    return this.d.store.list(c).map((o) => this.present(c, o));
  }

  getOne(c: Collection, id: string): unknown {
    return this.present(c, this.d.store.get(c, id));
  }

  private present(c: Collection, o: CollectionTypes[Collection]): unknown {
    const shown = redact(c, o) as Record<string, unknown>;
    if (c === 'jobs') {
      const job = o as CollectionTypes['jobs'];
      const last = this.d.history.list().filter((s) => s.jobId === job.id).at(-1);
      shown.info = {
        scheduleText: describeSchedule(job.schedule),
        nextRuns: job.enabled ? nextRuns(job.schedule, new Date(this.d.clock.now()), 3).map((d) => d.toISOString()) : [],
        running: this.d.sessions.runningForJob(job.id)?.id,
        lastSession: last ? {id: last.id, state: last.state, startedAt: last.startedAt, endedAt: last.endedAt} : undefined,
      };
    }
    if (c === 'webhooks') {
      const hook = o as CollectionTypes['webhooks'];
      const queue = this.d.webhooks?.status().targets[hook.id];
      shown.info = {host: webhookHost(hook.url), pending: queue?.pending ?? 0, lastError: queue?.lastError, lastSuccessAt: queue?.lastSuccessAt};
    }
    return shown;
  }

  async create(c: Collection, input: unknown): Promise<unknown> {
    if (c === 'repositories') {
      // Validate first, so a bad path never creates a directory; then make the repository.
      const withId = input !== null && typeof input === 'object' && !('id' in input) ? {...input, id: 'x'} : input;
      const cfg = parseConfig(repositorySchema, withId, 'repositories');
      if (this.d.store.list('repositories').some((r) => r.path === cfg.path)) {
        return this.d.store.create(c, input); // the store names the duplicate path
      }
      await Resources.openOrCreate(cfg, this.d.store.stateDir);
    }
    const created = await this.d.store.create(c, withoutInfo(c, input));
    if (c === 'connections') await this.d.resources.writeKnownHosts(created as CollectionTypes['connections']);
    this.d.hub.emit({type: 'config', collection: c});
    return this.present(c, created);
  }

  async update(c: Collection, id: string, input: unknown): Promise<unknown> {
    if (c === 'repositories') {
      const stored = this.d.store.get('repositories', id);
      // With the stored passphrase where "••••" stands for it (same path only; secrets.ts).
      const cfg = parseConfig(repositorySchema, keepSecrets('repositories', input !== null && typeof input === 'object' ? {...input, id} : input, stored), 'repositories');
      if (cfg.path !== stored.path || cfg.passphrase !== stored.passphrase || JSON.stringify(cfg.s3) !== JSON.stringify(stored.s3) || JSON.stringify(cfg.ssh) !== JSON.stringify(stored.ssh)) await Resources.openOrCreate(cfg, this.d.store.stateDir);
    }
    const updated = await this.d.store.update(c, id, withoutInfo(c, input));
    if (c === 'connections') await this.d.resources.writeKnownHosts(updated as CollectionTypes['connections']);
    this.d.hub.emit({type: 'config', collection: c});
    return this.present(c, updated);
  }

  async remove(c: Collection, id: string): Promise<void> {
    if (c === 'jobs' && this.d.sessions.runningForJob(id)) {
      throw new UserError('The job is running.', {hint: 'Stop it first (vmbackup job stop), then remove it.', exitCode: ExitCode.locked});
    }
    await this.d.store.remove(c, id);
    this.d.hub.emit({type: 'config', collection: c});
  }

  /** Console users with their roles: root and the installer's console account (admins), then those recorded. */
  users(): {name: string; role: string; builtin?: boolean; sshKey?: string}[] {
    return [
      {name: 'root', role: 'admin', builtin: true},
      {name: 'console', role: 'admin', builtin: true},
      ...this.d.store.data.users.map((u) => ({...u})),
    ];
  }

  email(): unknown {
    return this.d.store.data.email ? redact('email', this.d.store.data.email) : null;
  }

  async setEmail(input: unknown): Promise<unknown> {
    const saved = await this.d.store.setEmail(input);
    if (saved) void this.d.mail?.start().catch(() => {});
    return saved ? redact('email', saved) : null;
  }

  /**
   * Tries a connection: reachable, authenticated, and how many VMs its inventory lists. Errors
   * come back as data (with the UserError's message and hint), since "it failed" is the answer.
   */
  async testConnection(input: unknown, id?: string): Promise<unknown> {
    let cfg: CollectionTypes['connections'];
    if (id) cfg = this.d.store.get('connections', id);
    else {
      const stored = input !== null && typeof input === 'object' && 'id' in input ? this.d.store.list('connections').find((c) => c.id === (input as {id: unknown}).id) : undefined;
      const merged = keepSecrets('connections', input !== null && typeof input === 'object' && !('id' in input) ? {...input, id: 'test'} : input, stored);
      cfg = parseConfig(connectionSchema, merged, 'connections');
      await this.d.resources.writeKnownHosts(cfg);
    }
    const platform = id ? this.d.resources.platform(id) : this.d.resources.build(cfg);
    try {
      const vms = id ? (await this.d.resources.inventory(id, true)).vms : await platform.inventory();
      return {ok: true, reachable: true, authenticated: true, vms: vms.length};
    } catch (err) {
      const code = isUserError(err) ? err.exitCode : ExitCode.internal;
      return {
        ok: false,
        reachable: code !== ExitCode.unreachable && code !== ExitCode.untrusted,
        authenticated: code === ExitCode.unreachable || code === ExitCode.untrusted || code === ExitCode.authFailed ? false : undefined,
        error: {message: message(err), hint: isUserError(err) ? err.hint : undefined, exitCode: code},
      };
    } finally {
      if (!id) await platform.close().catch(() => {});
    }
  }

  /** Tries a repository: it opens, its directory takes a write, and how much room is left. */
  async testRepository(id: string): Promise<unknown> {
    const cfg = this.d.store.get('repositories', id);
    try {
      const repo = await this.d.resources.repository(id);
      if (isS3Url(cfg.path) || isSshUrl(cfg.path)) {
        // A bucket or another appliance: a test object written, read back and removed through the repository's own backend.
        const key = `locks/.vmbackup-write-test-${process.pid}`;
        await repo.backend.put(key, [Buffer.from('ok')]);
        const back = await repo.backend.get(key, {max: 16, what: 'write test'});
        await repo.backend.delete(key);
        if (back?.toString() !== 'ok') throw new UserError(`${cfg.path} did not give back what was written.`, {exitCode: ExitCode.platformFailed});
        const space = await repo.backend.space();
        return {ok: true, writable: true, restorePoints: (await repo.listRestorePoints()).length, ...(space ?? {})};
      }
      const probe = join(cfg.path, `.vmbackup-write-test-${process.pid}`);
      await writeFile(probe, 'ok', {mode: 0o600});
      await rm(probe, {force: true});
      const fs = await statfs(cfg.path);
      return {ok: true, writable: true, restorePoints: (await repo.listRestorePoints()).length, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize};
    } catch (err) {
      const e = explainIoError(err, cfg.path, 'testing the repository');
      return {ok: false, error: {message: message(e), hint: isUserError(e) ? e.hint : undefined, exitCode: isUserError(e) ? e.exitCode : ExitCode.internal}};
    }
  }

  /**
   * Sends a test message now. The body may hold email settings to try before saving them (secrets
   * kept from the saved ones), and/or `to` (an address or a list) to send to instead of the
   * global recipients; without settings the saved ones are used. Success is {ok: true, accepted};
   * a failure is data ({ok: false, message, error}), since "it failed, because…" is the answer
   * the administrator waits for.
   */
  async testEmail(input: unknown): Promise<TestEmailReply> {
    if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
      throw new UserError('The body must be a JSON object: {"to": "name@example.com"} and/or email settings.', {exitCode: ExitCode.invalidInput});
    }
    const {to: rawTo, ...rest} = (input ?? {}) as Record<string, unknown>;
    const to = rawTo === undefined ? undefined : parseRecipients(rawTo);
    const settings = Object.keys(rest).length === 0 ? this.d.store.data.email : parseConfig(emailSettingsSchema, keepSecrets('email', rest, this.d.store.data.email), 'email');
    if (!settings) throw new UserError('Email is not set up.', {hint: 'Save the email settings first (PUT /email), then test them.', exitCode: ExitCode.invalidInput});
    try {
      const r = await sendTestMessage(settings, {to, hostname: hostname(), appVersion: VERSION});
      return {ok: true, accepted: r.accepted};
    } catch (err) {
      const error = {message: message(err), hint: isUserError(err) ? err.hint : undefined, exitCode: isUserError(err) ? err.exitCode : ExitCode.internal};
      return {ok: false, message: error.message, error};
    }
  }

  /**
   * Posts a test report to a saved webhook now, bypassing the queue (the administrator waits for
   * the answer); a failure is data ({ok: false, error}) with what to do.
   */
  async testWebhook(id: string): Promise<TestWebhookReply> {
    const hook = this.d.store.get('webhooks', id);
    try {
      const r = await postWebhook(hook, newWebhookMessage(hook.id, 'test', renderWebhookBody(hook.format, testReport(hostname(), VERSION))), {appVersion: VERSION});
      return {ok: true, status: r.status, answer: r.answer};
    } catch (err) {
      return {ok: false, error: {message: message(err), hint: isUserError(err) ? err.hint : undefined, exitCode: isUserError(err) ? err.exitCode : ExitCode.internal}};
    }
  }

  /** The newest `lines` log lines, oldest first, with today's secrets scrubbed again. */
  // ---- appliance settings and the daily summary ------------------------------------------------

  settings(): Record<string, unknown> {
    return {...this.d.store.data.settings, dailySummary: this.d.dailySummary.settings};
  }

  /**
   * A partial change of the appliance settings; `dailySummary` (partial too) is kept in its own
   * file. Both parts are validated before either is saved, so a bad field changes nothing.
   */
  async setSettings(input: unknown): Promise<Record<string, unknown>> {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw new ConfigError([{field: 'settings', message: 'must be an object of the settings to change'}]);
    }
    const {dailySummary, ...rest} = input as Record<string, unknown>;
    const summary = dailySummary === undefined ? undefined : parseDailySummaryChange(dailySummary, this.d.dailySummary.settings);
    parseConfig(settingsSchema, {...this.d.store.data.settings, ...rest}, 'settings');
    if (Object.keys(rest).length) await this.d.store.setSettings(rest);
    if (summary) {
      await this.d.dailySummary.save(summary);
      this.d.scheduler.refresh();
    }
    return this.settings();
  }

  /** Queues the daily summary now (the scheduler calls this at the set time; so can the API). */
  async sendDailySummary(): Promise<{queued: boolean; id?: string; to: string[]; reason?: string}> {
    const repositories = [];
    // A repository whose disk cannot be read shows 0 of 0 bytes, which the summary marks low.
    // A bucket has no disk to fill: it is not in the space table.
    for (const r of this.d.store.list('repositories')) if (!isS3Url(r.path)) repositories.push({name: r.name, freeBytes: 0, totalBytes: 0, ...(await this.d.resources.space(r.id))});
    const running = this.d.sessions.list().map(({log: _log, ...rest}) => rest);
    const input = summaryInput({
      jobs: this.d.store.list('jobs'),
      sessions: [...this.d.history.list(), ...running],
      nextRun: (id) => this.d.scheduler.nextRun(`job:${id}`),
      repositories,
      hostname: hostname(),
      now: new Date(this.d.clock.now()),
    });
    return this.d.dailySummary.send(input);
  }

}

/** `to` of a test message: one address or a list, checked like the global recipients. */
function parseRecipients(raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((a) => a.trim()).filter(Boolean) : raw;
  const r = smtpSettingsSchema.shape.recipients.safeParse(list);
  if (r.success && r.data.length > 0) return r.data;
  const issue = r.success ? undefined : r.error.issues[0];
  const at = issue?.path.find((p) => typeof p === 'number');
  throw new ConfigError([
    {field: at === undefined || typeof raw === 'string' ? 'to' : `to[${at}]`, message: issue ? issue.message.replace(/^[a-z][a-zA-Z ]*: /, '') : 'give at least one email address'},
  ]);
}
