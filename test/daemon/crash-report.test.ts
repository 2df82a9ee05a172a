/**
 * A session that was running when the daemon died (crash, kill -9, power loss) is closed as
 * failed at the next start, and its report is mailed like any other session's (a real SMTP
 * server receives it). The "running" record is what a dead daemon leaves in its history.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createHash} from 'node:crypto';
import {readFile, writeFile} from 'node:fs/promises';
import {History} from '../../src/daemon/history.js';
import {createRepository} from '../../src/repository/index.js';
import {backupImage, pseudoRandom} from '../repository/helpers.js';
import {sessionTotals} from '../../src/daemon/figures.js';
import {SmtpHarness} from '../notify/smtp-harness.js';
import {isolate, startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let smtp: SmtpHarness;
let d: RunningDaemon | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-crash-report-'));
  smtp = await new SmtpHarness().start();
});
afterAll(async () => {
  await d?.stop();
  await smtp.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('a session interrupted by a daemon crash', () => {
  it('is closed as failed at the next start, and its report is mailed', async () => {
    const state = join(dir, 'state');
    const socket = join(dir, 'api.sock');
    const first = await startDaemon(state, socket);
    await isolate(first.client);
    await first.client.create('repositories', {id: 'r', name: 'Main', path: join(dir, 'repo')});
    await first.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    await first.client.create('jobs', {id: 'nightly', name: 'Nightly', source: {connection: 'kvm', vms: [{id: '7c0a8d4e-1111-4a2b-9c3d-000000000001', name: 'web01'}]}, repository: 'r'});
    await first.client.setEmail({transport: 'smtp', host: '127.0.0.1', port: smtp.port, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 5});
    await first.kill();

    // What the dead daemon left: a session still "running", its VM half done.
    const history = await History.open(state, () => 1000);
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const vms = [{id: '7c0a8d4e-1111-4a2b-9c3d-000000000001', name: 'web01', state: 'running' as const, attempts: 1, startedAt}];
    await history.save({
      id: 's-20261206-crashed',
      jobId: 'nightly',
      jobName: 'Nightly',
      state: 'running',
      trigger: 'schedule',
      attempt: 1,
      startedAt,
      repository: 'r',
      vms,
      log: [{time: startedAt, severity: 'info', code: 'session-started', message: 'Session started'}],
      totals: sessionTotals(vms, startedAt, startedAt),
    });

    d = await startDaemon(state, socket);
    const s = await d.client.session('s-20261206-crashed');
    expect(s.state).toBe('failed');
    expect(s.reason).toMatch(/daemon stopped/);
    const [mail] = await smtp.waitFor(1);
    expect(mail!.to).toEqual(['ops@example.test']);
    expect(mail!.mail.subject).toContain('Nightly');
    expect(mail!.mail.subject.toLowerCase()).toMatch(/fail/);
    const text = mail!.mail.parts.find((p) => p.contentType.startsWith('text/plain'))?.body ?? '';
    expect(text).toContain('web01');
    expect(text).toMatch(/daemon stopped while this session was running/);
  });

  it('damage found by a health check is mailed at once, with what the next backup does about it', async () => {
    const path = join(dir, 'checked');
    const repo = await createRepository(path, {chunkSize: 64 * 1024});
    const data = pseudoRandom(64 * 1024, 9);
    await backupImage(repo, data, {vmId: '7c0a8d4e-1111-4a2b-9c3d-000000000002', vmName: 'db01'});
    const hex = createHash('sha256').update(data).digest('hex');
    const chunk = join(path, 'chunks', hex.slice(0, 2), hex);
    const raw = await readFile(chunk);
    raw[raw.length - 1]! ^= 0xff;
    await writeFile(chunk, raw);
    await d!.client.create('repositories', {id: 'checked', name: 'Checked', path});
    const r = await d!.client.verify('checked');
    expect(r.ok).toBe(false);
    const mails = await smtp.waitFor(2);
    const mail = mails.find((m) => m.mail.subject.includes('Damage found'))!;
    expect(mail.mail.subject).toContain('Checked');
    expect(mail.to).toEqual(['ops@example.test']);
    const text = mail.mail.parts.find((p) => p.contentType.startsWith('text/plain'))?.body ?? mail.mail.parts[0]?.body ?? '';
    expect(text).toContain(hex);
    expect(text).toContain('db01');
    expect(text).toMatch(/next backup of db01 reads every disk in full/);
  });
});
