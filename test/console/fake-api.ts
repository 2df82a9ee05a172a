/**
 * An in-memory ConsoleApi for screen tests: collections, sessions, inventory, restore points
 * and an event stream the test drives. `fail(method, error)` makes a method throw the given
 * UserError, `missing(method)` makes it answer like a daemon without that endpoint.
 */
import type {ConnectionTestResult, ConsoleApi, DaemonEvent, FileSessionInfo, GuestEntry, InstantRecoveryInfo, InstantRequest, InventoryVm, RestorePointInfo, RetentionLockReply, SessionRecord, SessionSummary, StatusReply} from '../../src/console/api.js';
import type {Collection} from '../../src/config/store.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {jobSchema, repositorySchema} from '../../src/config/schema.js';
import {redact} from '../../src/config/secrets.js';

type Rec = Record<string, unknown> & {id: string};

/**
 * A job as the daemon keeps and returns it: through the configuration schema, defaults filled in
 * (a field the console does not send still comes back, as from the real daemon); one it would
 * refuse is refused.
 */
function asDaemonStores(c: Collection, body: Rec): Rec {
  const schema = c === 'jobs' ? jobSchema : c === 'repositories' ? repositorySchema : undefined;
  if (!schema) return body;
  const r = schema.safeParse(body);
  if (!r.success) throw new UserError(`The ${c === 'jobs' ? 'job' : 'repository'} is not valid: ${r.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`, {exitCode: ExitCode.invalidInput});
  return r.data as unknown as Rec;
}

export class FakeApi implements ConsoleApi {
  data: Record<Collection, Rec[]> = {repositories: [], connections: [], workers: [], jobs: [], webhooks: []};
  sessionsList: SessionRecord[] = [];
  inventoryVms: Record<string, InventoryVm[]> = {};
  points: Record<string, RestorePointInfo[]> = {};
  emailSettings: Record<string, unknown> | null = null;
  calls: {method: string; args: unknown[]}[] = [];
  failures = new Map<string, unknown>();
  private listeners = new Set<(e: DaemonEvent) => void>();
  statusExtra: Partial<StatusReply> = {};
  instant: InstantRecoveryInfo[] = [];
  /** The guest file tree the file browser shows: directory path → entries. */
  guestFiles: Record<string, GuestEntry[]> = {};
  fileSessions = new Set<string>();

  fail(method: keyof ConsoleApi, err: unknown): void {
    this.failures.set(method, err);
  }
  missing(method: keyof ConsoleApi, path = `/${method}`): void {
    this.failures.set(method, new UserError(`No such API path: ${path}.`, {hint: 'See the route list at the top of src/daemon/api.ts.', exitCode: ExitCode.notFound}));
  }
  emit(e: DaemonEvent): void {
    for (const l of this.listeners) l(e);
  }
  listenerCount(): number {
    return this.listeners.size;
  }
  called(method: string): {method: string; args: unknown[]}[] {
    return this.calls.filter((c) => c.method === method);
  }

  private async call<T>(method: string, args: unknown[], fn: () => T): Promise<T> {
    this.calls.push({method, args});
    await Promise.resolve();
    const f = this.failures.get(method);
    if (f) throw f;
    return fn();
  }

  status() {
    return this.call('status', [], () => ({
      daemon: {version: '0.1.0', pid: 1, startedAt: '2026-11-23T08:00:00Z', stateDir: '/var/lib/vmbackup', socket: '/run/vmbackup/api.sock', rssBytes: 50e6, stateFreeBytes: 4 * 2 ** 30, stateTotalBytes: 8 * 2 ** 30},
      // As the daemon: running job sessions only; a running restore is in the history (GET /sessions).
      sessions: this.sessionsList.filter((s) => s.state === 'running' && s.jobId !== 'restore').map(summary),
      workers: [],
      waitingForWorkers: 0,
      repositories: this.data.repositories.map((r) => ({id: r.id, name: String(r.name), path: String(r.path), encrypted: r.passphrase !== undefined, usedBytes: 10 * 2 ** 30, freeBytes: 90 * 2 ** 30, totalBytes: 100 * 2 ** 30, restorePoints: 3, dedupRatio: 2.5, needsFullVms: 0, lastHealthCheck: {at: '2026-11-22T04:00:00Z', ok: true, problems: 0}})),
      ...this.statusExtra,
    }));
  }
  list<T>(c: Collection) {
    return this.call('list', [c], () => this.data[c].map((r) => redact(c, r)) as T[]);
  }
  get<T>(c: Collection, id: string) {
    return this.call('get', [c, id], () => {
      const r = this.data[c].find((x) => x.id === id);
      if (!r) throw new UserError(`No ${c} with id ${id}.`, {exitCode: ExitCode.notFound});
      return redact(c, r) as T;
    });
  }
  create<T>(c: Collection, body: unknown) {
    return this.call('create', [c, body], () => {
      const b = body as Rec;
      if (this.data[c].some((x) => x.id === b.id)) throw new UserError(`A ${c} item with id ${b.id} exists already.`, {hint: 'Pick another name.'});
      const stored = asDaemonStores(c, b);
      this.data[c].push(structuredClone(stored));
      // Secrets come back as "••••", as from the real daemon (config/secrets.ts).
      return redact(c, stored) as unknown as T;
    });
  }
  update<T>(c: Collection, id: string, body: unknown) {
    return this.call('update', [c, id, body], () => {
      const i = this.data[c].findIndex((x) => x.id === id);
      if (i < 0) throw new UserError(`No ${c} with id ${id}.`, {exitCode: ExitCode.notFound});
      const stored = asDaemonStores(c, body as Rec);
      this.data[c][i] = structuredClone(stored);
      return redact(c, stored) as T;
    });
  }
  remove(c: Collection, id: string) {
    return this.call('remove', [c, id], () => {
      this.data[c] = this.data[c].filter((x) => x.id !== id);
    });
  }
  testConnection(x: string | Record<string, unknown>): Promise<ConnectionTestResult> {
    return this.call('testConnection', [x], () => ({ok: true, reachable: true, authenticated: true, vms: 3}));
  }
  inventory(connection: string, refresh?: boolean) {
    return this.call('inventory', [connection, refresh], () => ({at: '2026-11-23T10:00:00Z', vms: this.inventoryVms[connection] ?? []}));
  }
  startJob(id: string) {
    return this.call('startJob', [id], () => {
      const job = this.data.jobs.find((j) => j.id === id);
      // A session that just started has no end yet (as the daemon answers).
      const s = makeSession({id: `s-${this.sessionsList.length + 1}`, jobId: id, jobName: String(job?.name ?? id), state: 'running', endedAt: undefined});
      this.sessionsList.push(s);
      return summary(s);
    });
  }
  stopJob(id: string) {
    return this.call('stopJob', [id], () => summary(this.sessionsList.find((s) => s.jobId === id) ?? makeSession({jobId: id})));
  }
  retryFailed(id: string) {
    return this.call('retryFailed', [id], () => {
      const s = makeSession({id: `s-${this.sessionsList.length + 1}`, jobId: id, state: 'running', trigger: 'retry-failed', endedAt: undefined});
      this.sessionsList.push(s);
      return summary(s);
    });
  }
  sessions(opts: {job?: string; limit?: number} = {}) {
    return this.call('sessions', [opts], () => this.sessionsList.filter((s) => !opts.job || s.jobId === opts.job).map(summary));
  }
  session(id: string) {
    return this.call('session', [id], () => {
      const s = this.sessionsList.find((x) => x.id === id);
      if (!s) throw new UserError(`No session with id ${id}.`, {exitCode: ExitCode.notFound});
      return structuredClone(s);
    });
  }
  /** Retention locks by repository, as the real Repository keeps them: raised, never lowered. */
  locks: Record<string, {days: number; setAt: string}> = {};
  private lockReply(repository: string): RetentionLockReply {
    return {lock: this.locks[repository] ?? null, storageEnforced: false, note: 'The lock holds against vmbackup (CLI, API, console) only: on a local disk root can still delete files.'};
  }
  retentionLock(repository: string) {
    return this.call('retentionLock', [repository], () => this.lockReply(repository));
  }
  setRetentionLock(repository: string, days: number) {
    return this.call('setRetentionLock', [repository, days], () => {
      const now = this.locks[repository];
      // The real refusals (Repository.setRetentionLock).
      if (!Number.isInteger(days) || days < 1 || days > 36500) throw new UserError(`A retention lock is 1 to 36500 days, not ${days}.`, {exitCode: ExitCode.invalidInput});
      if (now && days < now.days) throw new UserError(`The repository is locked for ${now.days} days; a lock can be raised, not lowered.`, {hint: `Give ${now.days} days or more.`, exitCode: ExitCode.invalidInput});
      this.locks[repository] = {days, setAt: new Date().toISOString()};
      return this.lockReply(repository);
    });
  }
  verify(repository: string) {
    return this.call('verify', [repository], () => ({ok: true, vms: ['web01'], problems: 0}));
  }
  gc(repository: string) {
    return this.call('gc', [repository], () => ({ok: true}));
  }
  email() {
    return this.call('email', [], () => this.emailSettings);
  }
  setEmail(body: unknown) {
    return this.call('setEmail', [body], () => (this.emailSettings = body as Record<string, unknown>));
  }
  events(onEvent: (e: DaemonEvent) => void, signal?: AbortSignal): Promise<void> {
    const f = this.failures.get('events');
    if (f) {
      // Fails once, like a daemon that was restarting.
      this.failures.delete('events');
      return Promise.reject(f);
    }
    this.listeners.add(onEvent);
    return new Promise((resolve) => {
      signal?.addEventListener('abort', () => {
        this.listeners.delete(onEvent);
        resolve();
      });
    });
  }
  settingsData: {lowSpacePercent?: number} = {lowSpacePercent: 10};
  settings() {
    return this.call('settings', [], () => ({...this.settingsData}));
  }
  restorePoints(repository: string) {
    return this.call('restorePoints', [repository], () => this.points[repository] ?? []);
  }
  /** As DELETE /repositories/:id/restore-points/:point: the point leaves the listing. */
  forgetRestorePoint(repository: string, id: string) {
    return this.call('forgetRestorePoint', [repository, id], () => {
      this.points[repository] = (this.points[repository] ?? []).filter((p) => p.id !== id);
      return {id, damaged: false};
    });
  }
  /** What POST /restores/plan answers for a restore to image files (the shape of the real one). */
  planRestore(req: unknown) {
    return this.call('planRestore', [req], () => {
      const t = (req as {target?: {kind?: string; directory?: string; format?: string}}).target;
      return {target: `${t?.format ?? 'qcow2'} image files in ${t?.directory} on this appliance`, creates: [`disk vda: ${t?.format ?? 'qcow2'} image ${t?.directory}/web01-vda.${t?.format ?? 'qcow2'} (8.0 MiB)`], replaces: [], notes: []};
    });
  }
  startRestore(req: unknown) {
    return this.call('startRestore', [req], () => ({id: 'r-1', state: 'running'}));
  }
  /** As PUT /repositories/:id/restore-points/:point/protected. */
  protectRestorePoint(repository: string, id: string, value: boolean) {
    return this.call('protectRestorePoint', [repository, id, value], () => {
      const p = (this.points[repository] ?? []).find((x) => x.id === id);
      if (!p) throw new UserError(`Repository ${repository} has no restore point ${id}.`, {exitCode: ExitCode.notFound});
      p.protected = value;
      return {id, protected: value};
    });
  }
  /** As POST /restores/:id/stop. */
  stopRestore(id: string) {
    return this.call('stopRestore', [id], () => ({stopped: this.sessionsList.some((s) => s.id === id && s.state === 'running')}));
  }
  instantRecoveries() {
    return this.call('instantRecoveries', [], () => structuredClone(this.instant));
  }
  /** As POST /instant-recoveries: the VM runs (a new entry in the list). */
  startInstant(req: InstantRequest) {
    return this.call('startInstant', [req], () => {
      const p = (this.points[req.repository] ?? []).find((x) => x.id === req.restorePointId);
      if (!p) throw new UserError(`The repository has no restore point ${req.restorePointId}.`, {exitCode: ExitCode.notFound});
      const id = `instant-${this.instant.length + 1}`;
      const name = req.name ?? `${p.vmName}-instant`;
      const storage = req.storage ?? '/var/lib/libvirt/images';
      this.instant.push({
        id, name, vmName: p.vmName, host: req.host ?? 'kvm1', connection: 'kvm', repository: req.repository, restorePointId: p.id, restorePointTime: p.time,
        startedAt: '2026-11-23T09:00:00Z', network: req.network, storage, disks: p.disks.map((d) => ({key: d.key, overlay: `${storage}/${name}-${d.key}-instant.qcow2`})), phase: 'running',
      });
      return {id, name, host: req.host ?? 'kvm1', startedInMs: 1800};
    });
  }
  /** As POST /instant-recoveries/:id/finish: the move starts (the test sets progress or removes the entry). */
  finishInstant(id: string, storage?: string) {
    return this.call('finishInstant', [id, storage], () => {
      const i = this.instant.find((x) => x.id === id);
      if (!i) throw new UserError(`There is no instant recovery ${id}.`, {exitCode: ExitCode.notFound});
      i.phase = 'migrating';
      i.progress = {doneBytes: 0, totalBytes: 8 * 2 ** 30};
      return {id, phase: 'migrating' as const};
    });
  }
  /** As POST /instant-recoveries/:id/stop: discarded, gone from the list. */
  stopInstant(id: string) {
    return this.call('stopInstant', [id], () => {
      if (!this.instant.some((x) => x.id === id)) throw new UserError(`There is no instant recovery ${id}.`, {exitCode: ExitCode.notFound});
      this.instant = this.instant.filter((x) => x.id !== id);
      return {id, stopped: true as const};
    });
  }
  /** As POST /files: a browser on a restore point of `points`, its file systems at / . */
  openFiles(req: {repository: string; restorePointId: string}) {
    return this.call('openFiles', [req], (): FileSessionInfo => {
      const p = (this.points[req.repository] ?? []).find((x) => x.id === req.restorePointId);
      if (!p) throw new UserError(`The repository has no restore point ${req.restorePointId}.`, {exitCode: ExitCode.notFound});
      const id = `files-${this.fileSessions.size + 1}`;
      this.fileSessions.add(id);
      return {id, repository: req.repository, restorePointId: p.id, vmName: p.vmName, time: p.time, disks: p.disks.map((d) => d.key), layout: {kind: 'filesystem', mounts: [{mountpoint: '/', device: '/dev/sda1', type: 'ext4'}], filesystems: [{device: '/dev/sda1', type: 'ext4'}]}};
    });
  }
  listFiles(id: string, path: string) {
    return this.call('listFiles', [id, path], () => {
      if (!this.fileSessions.has(id)) throw new UserError('This file browser has ended (closed, or idle for 10 minutes).', {exitCode: ExitCode.notFound});
      const entries = this.guestFiles[path];
      if (!entries) throw new UserError(`There is no ${path} in this restore point.`, {exitCode: ExitCode.notFound});
      return {path, entries: structuredClone(entries)};
    });
  }
  getFiles(id: string, paths: string[], to: string) {
    return this.call('getFiles', [id, paths, to], () => {
      if (!this.fileSessions.has(id)) throw new UserError('This file browser has ended (closed, or idle for 10 minutes).', {exitCode: ExitCode.notFound});
      return {copied: paths.map((p) => ({path: p, to: `${to}/${p.split('/').pop()}`, type: 'file'})), skipped: [] as string[]};
    });
  }
  closeFiles(id: string) {
    return this.call('closeFiles', [id], () => ({closed: this.fileSessions.delete(id)}));
  }
  prune(repository: string) {
    return this.call('prune', [repository], () => ({ok: true, removed: 2}));
  }
  testEmail(to?: string) {
    return this.call('testEmail', [to], () => ({ok: true, message: 'Test message accepted by the server.'}));
  }
  testWebhook(id: string) {
    return this.call('testWebhook', [id], () => ({ok: true, message: 'Delivered: the receiver answered HTTP 200 (ok).'}));
  }
  fetchCa(url: string) {
    return this.call('fetchCa', [url], () => ({pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', fingerprint: FINGERPRINT}));
  }
  scanHostKey(host: string, port?: number) {
    return this.call('scanHostKey', [host, port], () => ({keys: [
      {type: 'ecdsa-sha2-nistp256', key: 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYFake', fingerprint: 'SHA256:ecdsaecdsaecdsaecdsa'},
      {type: 'ssh-ed25519', key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake', fingerprint: 'SHA256:abcdefghijklmnop'},
    ]}));
  }
  /** As GET /appliance/ssh-key (src/daemon/appliance-key.ts). */
  applianceSshKey() {
    const publicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApplianceFake vmbackup@appliance';
    return this.call('applianceSshKey', [], () => ({
      identityFile: '/var/lib/vmbackup/ssh/id_ed25519', publicKey, fingerprint: 'SHA256:applianceapplianceappliance',
      authorizeCommand: `install -d -m 700 ~/.ssh && echo '${publicKey}' >> ~/.ssh/authorized_keys`,
    }));
  }
  /** As GET /whoami: the kernel's view of the caller, with the role the daemon gives it. */
  whoami() {
    return this.call('whoami', [], () => ({uid: 1001, user: 'console', role: 'admin'}));
  }
  /** As GET /audit: AuditEntry lines as src/daemon/audit.ts writes them. */
  audit(limit?: number) {
    return this.call('audit', [limit], () => ({
      entries: [
        {time: '2026-11-23T10:00:00.000Z', uid: 1001, user: 'console', role: 'admin', method: 'POST', path: '/jobs', outcome: 'ok' as const, status: 201},
        {time: '2026-11-23T10:05:00.000Z', uid: 1002, user: 'night-op', role: 'operator', method: 'DELETE', path: '/repositories/main', outcome: 'refused' as const, status: 403, error: 'DELETE /repositories/main needs an administrator; night-op is an operator.'},
      ],
    }));
  }
  logs(lines?: number) {
    return this.call('logs', [lines], () => ({lines: ['2026-11-23 10:00 vmbackupd started', '2026-11-23 10:05 job nightly started']}));
  }
  /** As POST /demo-lab: adds the demo repository and both connections once, with their inventories. */
  demoLab() {
    return this.call('demoLab', [], () => {
      const add = (c: Collection, rec: Rec) => {
        if (!this.data[c].some((x) => x.id === rec.id)) this.data[c].push(rec);
      };
      add('repositories', {id: 'demo-repository', name: 'Demo repository', path: '/srv/vmbackup/demo-repo'});
      add('connections', {id: 'demo-kvm-host', kind: 'morpheus', name: 'Demo KVM host', clusters: [{name: 'demo', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
      add('connections', {id: 'demo-ovirt-engine', kind: 'ovirt', name: 'Demo oVirt engine', url: 'https://127.0.0.1:8443/ovirt-engine', user: 'admin@internal', password: '••••', caPem: '-----BEGIN CERTIFICATE-----'});
      const disk = (key: string, format: string, mib: number) => ({key, name: key, format, size: mib * 2 ** 20, trackable: format !== 'raw'});
      this.inventoryVms['demo-kvm-host'] = [
        {id: 'lv-web', name: 'demo-web', state: 'running', cluster: 'demo', host: 'local', disks: [disk('vda', 'qcow2', 256), disk('vdb', 'raw', 64)]},
        {id: 'lv-db', name: 'demo-db', state: 'running', cluster: 'demo', host: 'local', disks: [disk('vda', 'qcow2', 128)]},
      ];
      this.inventoryVms['demo-ovirt-engine'] = [
        {id: 'ov-web', name: 'web01', state: 'running', cluster: 'Default', host: 'host1', disks: [disk('web01_os', 'qcow2', 64), disk('web01_data', 'raw', 32)]},
        {id: 'ov-db', name: 'db01', state: 'shutoff', cluster: 'Default', disks: [disk('db_disk', 'qcow2', 16)]},
      ];
      const vms = (c: string) => (this.inventoryVms[c] ?? []).map((v) => ({id: v.id, name: v.name}));
      return {
        repository: {id: 'demo-repository', name: 'Demo repository', path: '/srv/vmbackup/demo-repo'},
        libvirt: {connection: 'demo-kvm-host', name: 'Demo KVM host', vms: vms('demo-kvm-host'), kvm: true},
        ovirt: {connection: 'demo-ovirt-engine', name: 'Demo oVirt engine', url: 'https://127.0.0.1:8443/ovirt-engine', caFingerprint: FINGERPRINT, vms: vms('demo-ovirt-engine')},
        changed: [],
        summary: 'Demo lab ready: 2 libvirt VMs (demo-web, demo-db), 2 oVirt VMs, repository Demo repository (/srv/vmbackup/demo-repo); next: create a job',
      };
    });
  }
}

export const FINGERPRINT = Array.from({length: 32}, (_, i) => (i * 7 + 16).toString(16).slice(-2).toUpperCase().padStart(2, '0')).join(':');

export function summary(s: SessionRecord): SessionSummary {
  const {log: _log, ...rest} = s;
  return structuredClone(rest);
}

export function makeSession(p: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: 's-1',
    jobId: 'nightly',
    jobName: 'nightly',
    state: 'success',
    trigger: 'manual',
    attempt: 1,
    startedAt: '2026-11-23T02:00:00Z',
    endedAt: '2026-11-23T02:10:00Z',
    repository: 'main',
    vms: [],
    log: [],
    totals: {sizeBytes: 0, readBytes: 0, transferredBytes: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, durationMs: 600000, rateBytesPerSec: 0},
    ...p,
  };
}

/** A small configured appliance: one repository, one oVirt connection, one job with a past session. */
export function seeded(): FakeApi {
  const api = new FakeApi();
  api.data.repositories.push({id: 'main', name: 'main', path: '/srv/backup/main'});
  api.data.connections.push({id: 'engine', kind: 'ovirt', name: 'engine', url: 'https://engine.example.com/ovirt-engine', user: 'admin@internal', password: '***', caPem: '-----BEGIN CERTIFICATE-----'});
  api.data.jobs.push(asDaemonStores('jobs', {
    id: 'nightly',
    name: 'nightly',
    description: 'all web servers',
    enabled: true,
    source: {connection: 'engine', vms: [{id: 'vm-1', name: 'web01'}], clusters: [], hosts: [], tags: [], exclude: []},
    repository: 'main',
    retention: {restorePoints: 14},
    schedule: {kind: 'daily', at: '22:00'},
    activeFullDays: [],
    guestConsistency: true,
    retries: {count: 3, waitMinutes: 10},
    notification: {recipients: [], onSuccess: true, onWarning: true, onFailure: true, onlyLastAttempt: true, subject: '[%Status%] %JobName%'},
  }));
  api.sessionsList.push(
    makeSession({
      vms: [{id: 'vm-1', name: 'web01', state: 'failed', reason: 'host unreachable', attempts: 1}],
      state: 'failed',
      log: [
        {time: '2026-11-23T02:00:01Z', severity: 'info', code: 'started', message: 'Session started'},
        {time: '2026-11-23T02:00:05Z', severity: 'warning', code: 'no-guest-agent', message: 'web01: no guest agent, crash-consistent', vm: 'web01'},
        {time: '2026-11-23T02:01:00Z', severity: 'error', code: 'unreachable', message: 'web01: host unreachable', vm: 'web01'},
      ],
    }),
  );
  api.inventoryVms.engine = [
    {id: 'vm-1', name: 'web01', state: 'running', cluster: 'Default', host: 'kvm1', tags: ['web'], disks: [{key: 'd1', name: 'web01_disk', format: 'qcow2', size: 10 * 2 ** 30, trackable: true}]},
    {id: 'vm-2', name: 'web02', state: 'running', cluster: 'Default', host: 'kvm2', tags: ['web'], disks: [{key: 'd2', name: 'web02_disk', format: 'qcow2', size: 10 * 2 ** 30, trackable: true}]},
    {id: 'vm-3', name: 'db01', state: 'shutoff', cluster: 'Prod', host: 'kvm3', tags: ['db'], disks: [{key: 'd3', name: 'db01_raw', format: 'raw', size: 20 * 2 ** 30, trackable: false, trackingNote: 'RAW disk: changed blocks cannot be tracked; every backup reads it in full'}]},
  ];
  return api;
}
