import {mkdtemp, readFile, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {UserError} from '../../src/util/errors.js';
import {isolate, startDaemon, type RunningDaemon} from './helpers.js';
import type {DaemonEvent} from '../../src/api/contract.js';

let dir: string;
let d: RunningDaemon;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-api-'));
  d = await startDaemon(join(dir, 'state'), join(dir, 'run dir', 'api.sock'));
  await isolate(d.client);
});
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';

async function fails(p: Promise<unknown>): Promise<UserError & {field?: string}> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  return err as UserError & {field?: string};
}

describe('control API on a real daemon', () => {
  it('listens on a socket that is not world-accessible, in a 0750 directory', async () => {
    const s = await stat(join(dir, 'run dir', 'api.sock'));
    expect(s.isSocket()).toBe(true);
    expect(s.mode & 0o007).toBe(0);
    expect(s.mode & 0o777).toBe(0o660);
    expect((await stat(join(dir, 'run dir'))).mode & 0o777).toBe(0o750);
    expect((await stat(join(dir, 'state', 'config.json')).catch(() => undefined))?.mode ?? 0o100600).toBeDefined();
  });

  it('creates every kind of object, redacts secrets, reports the schedule in words', async () => {
    const c = d.client;
    const repo = await c.create('repositories', {name: 'Main repo', path: join(dir, 'repo "one"; ü')});
    expect(repo).toMatchObject({id: 'main-repo'});
    // The repository exists on disk right away.
    await stat(join(dir, 'repo "one"; ü', 'vmbackup-repository.json'));
    const engine = await c.create('connections', {kind: 'ovirt', name: 'Engine', url: 'https://engine.invalid/ovirt-engine', user: 'admin@internal', password: 'TopSecret!', caPem: pem});
    expect(engine.password).toBe('••••');
    const kvm = await c.create('connections', {kind: 'morpheus', name: 'VME', clusters: [{name: 'c1', hosts: [{name: 'h1', connection: {kind: 'local'}}, {name: 'h2', connection: {kind: 'ssh', host: '127.0.0.1', port: 2222, user: 'root', identityFile: '/root/.ssh/id', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'}}]}]});
    expect(kvm.id).toBe('vme');
    // The host key became a known_hosts file the ssh runner reads.
    expect(await readFile(join(dir, 'state', 'known_hosts.d', 'vme--h2'), 'utf8')).toMatch(/^\[127\.0\.0\.1\]:2222 ssh-ed25519 /);
    const w = await c.create('workers', {name: 'near-h1', placement: {kind: 'host', connection: 'vme', host: 'h1'}, slots: 2});
    expect(w).toMatchObject({id: 'near-h1', slots: 2});
    const job = await c.create<{id: string; info: {scheduleText: string; nextRuns: string[]}}>('jobs', {
      name: 'Nightly',
      source: {connection: 'vme', clusters: ['c1'], exclude: ['some-uuid']},
      repository: 'main-repo',
      schedule: {kind: 'daily', at: '22:30', days: ['mon', 'tue']},
      retention: {restorePoints: 7, gfs: {weekly: 4}},
      retries: {count: 2, waitMinutes: 5},
      bandwidthLimitMBps: 50,
      notification: {recipients: ['ops@example.com']},
    });
    expect(job.info.scheduleText).toBe('At 22:30, only on Monday and Tuesday');
    expect(await c.testRepository('main-repo')).toMatchObject({ok: true, writable: true, restorePoints: 0, freeBytes: expect.any(Number)});
    expect(job.info.nextRuns).toHaveLength(3);
    await c.setEmail({transport: 'smtp', host: 'mail.example', from: 'vmbackup@example.com', auth: {user: 'u', password: 'MailSecret'}});
    expect(await c.email()).toMatchObject({auth: {password: '••••'}});
    // Secrets are in the 0600 file, never in the API or the log.
    const file = join(dir, 'state', 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toContain('TopSecret!');
    expect(JSON.stringify(await c.list('connections'))).not.toContain('TopSecret!');
    // A PUT that sends the redacted password back keeps it.
    await c.update('connections', 'engine', {...engine, name: 'Engine 2'});
    expect(await readFile(file, 'utf8')).toContain('TopSecret!');
    expect(d.lines.join('\n')).not.toMatch(/TopSecret|MailSecret/);
  });

  it('rejects bad input for every kind of field, naming it, and changes nothing', async () => {
    const c = d.client;
    const file = join(dir, 'state', 'config.json');
    const before = await readFile(file, 'utf8');
    const job = {name: 'J2', source: {connection: 'vme', vms: [{id: 'x'}]}, repository: 'main-repo'};
    // Thunks, run one at a time: a promise started early and rejected before it is awaited
    // counts as an unhandled rejection.
    const cases: [() => Promise<unknown>, string][] = [
      [() => c.create('jobs', {...job, name: 'bad/name'}), 'jobs.name'],
      [() => c.create('jobs', {...job, schedule: {kind: 'daily', at: '9pm'}}), 'jobs.schedule.at'],
      [() => c.create('jobs', {...job, schedule: {kind: 'cron', expression: '0 25 * * *'}}), 'jobs.schedule.expression'],
      [() => c.create('jobs', {...job, retention: {days: 0}}), 'jobs.retention.days'],
      [() => c.create('jobs', {...job, retries: {count: -1}}), 'jobs.retries.count'],
      [() => c.create('jobs', {...job, bandwidthLimitMBps: -5}), 'jobs.bandwidthLimitMBps'],
      [() => c.create('jobs', {...job, repository: 'nope'}), 'jobs.repository'],
      [() => c.create('jobs', {...job, source: {connection: 'vme', tags: ['prod']}}), 'jobs.source.tags'],
      [() => c.create('jobs', {...job, name: 'Nightly'}), 'jobs.name'],
      [() => c.create('repositories', {name: 'R', path: 'relative/path'}), 'repositories.path'],
      [() => c.create('connections', {kind: 'ovirt', name: 'E', url: 'ftp://x', user: 'a@b', password: 'p', caPem: pem}), 'connections.url'],
      [() => c.create('connections', {kind: 'morpheus', name: 'M', clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'h', user: 'root', identityFile: '/k'}}]}]}), 'connections.clusters[0].hosts[0].connection.hostKey'],
      [() => c.create('workers', {name: 'w', placement: {kind: 'cluster', connection: 'vme', cluster: 'nope'}}), 'workers.placement.cluster'],
      [() => c.create('workers', {name: 'w', placement: {kind: 'appliance'}, slots: 1000}), 'workers.slots'],
      [() => c.update('jobs', 'nightly', {...job, name: 'Nightly', schedule: {kind: 'monthly', day: 30, at: '01:00'}}), 'jobs.schedule.day'],
      [() => c.setEmail({transport: 'smtp', host: 'h', from: 'not-an-address'}), 'email.from'],
    ];
    for (const [p, field] of cases) {
      const err = await fails(p());
      expect(err.field, err.message).toBe(field);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
      expect(err.hint).toMatch(/nothing was changed/);
      expect(err.exitCode).toBe(17);
    }
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('answers unknown objects, paths and bad JSON with 4xx errors that say what to do', async () => {
    const c = d.client;
    expect((await fails(c.get('jobs', 'nope'))).exitCode).toBe(16);
    expect((await fails(c.request('GET', '/nothing'))).exitCode).toBe(16);
    expect((await fails(c.remove('repositories', 'main-repo'))).message).toMatch(/used by job/);
    const res = await fetch('http://x/jobs', {method: 'POST'}).catch(() => undefined);
    expect(res).toBeUndefined(); // not on TCP: the API is only on the socket
    expect((await fails(c.request('POST', '/jobs/nightly/stop'))).exitCode).toBe(16);
    expect((await fails(c.request('POST', '/jobs/nightly/retry-failed'))).exitCode).toBe(16);
  });

  it('tests a connection and reports an unreachable engine with the reason and a hint', async () => {
    const r = await d.client.testConnection('engine');
    expect(r.ok).toBe(false);
    expect(r.error?.message).toBeTruthy();
    expect(r.error?.hint).toBeTruthy();
    expect(JSON.stringify(r)).not.toContain('TopSecret!');
  });

  it('streams configuration changes as server-sent events', async () => {
    const seen: DaemonEvent[] = [];
    const ac = new AbortController();
    const streaming = d.client.events((e) => {
      seen.push(e);
      if (e.type === 'config') ac.abort();
    }, ac.signal);
    // Changes until one is seen: the stream may connect after the first.
    for (let i = 0; !ac.signal.aborted && i < 100; i++) {
      await d.client.update('workers', 'appliance', {name: 'appliance', placement: {kind: 'appliance'}, slots: 4 + (i % 2)});
      await new Promise((r) => setTimeout(r, 50));
    }
    await streaming;
    expect(seen.some((e) => e.type === 'config' && e.collection === 'workers')).toBe(true);
  });

  it('keeps the configuration across a restart', async () => {
    const code = await d.stop();
    expect(code).toBe(0);
    d = await startDaemon(join(dir, 'state'), join(dir, 'run dir', 'api.sock'), {VMBACKUP_LOG_FORMAT: 'json'});
    expect((await d.client.list('jobs')).map((j) => j.id)).toEqual(['nightly']);
    // JSON lines on stdout, one object each, and still no secret in them.
    const first = JSON.parse(d.lines[0]!) as {level: string; msg: string; time: string};
    expect(first).toMatchObject({level: 'info', msg: expect.stringMatching(/vmbackupd .* starting/)});
    expect(d.lines.join('\n')).not.toMatch(/TopSecret|MailSecret/);
    expect((await d.client.status()).workers.map((w) => w.id)).toEqual(['appliance', 'near-h1']);
  });
});
