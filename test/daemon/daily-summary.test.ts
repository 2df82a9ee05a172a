/**
 * The daily summary mail on a daemon with a clock the test moves (as in schedule.test.ts) and a
 * real SMTP server: off by default (nothing armed, nothing sent); bad settings are refused with
 * the field named and change nothing; once enabled it arrives at its local time with every job
 * and every repository, and is armed again for the next day.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DaemonClient} from '../../src/api/client.js';
import {Daemon} from '../../src/daemon/daemon.js';
import {summaryInput} from '../../src/daemon/daily-summary.js';
import type {JobConfig} from '../../src/config/schema.js';
import type {SessionSummary} from '../../src/api/client.js';
import {ManualClock} from '../../src/notify/clock.js';
import {partOf} from '../notify/rfc822.js';
import {SmtpHarness} from '../notify/smtp-harness.js';
import {sleep} from './helpers.js';

let dir: string;
let daemon: Daemon;
let client: DaemonClient;
let smtp: SmtpHarness;
const clock = new ManualClock(Date.parse('2026-11-23T08:00:00Z'));
const lines: string[] = [];
const JOBS = ['Web prod ü; 1', 'DB nightly', 'Archive (off)'];
const REPOS = ['Local disk ü', 'Second "repo" &'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-daily-'));
  smtp = await new SmtpHarness().start();
  daemon = await Daemon.start({stateDir: join(dir, 'state'), socketPath: join(dir, 'api.sock'), clock, write: (l) => lines.push(l)});
  client = new DaemonClient({socketPath: join(dir, 'api.sock')});
  await client.setEmail({transport: 'smtp', host: '127.0.0.1', port: smtp.port, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 5});
  await client.create('repositories', {id: 'r1', name: REPOS[0], path: join(dir, 'repo one')});
  await client.create('repositories', {id: 'r2', name: REPOS[1], path: join(dir, 'repo two')});
  await client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  // New Year's schedules: the clock never reaches them here, so no session runs.
  await client.create('jobs', {id: 'web', name: JOBS[0], source: {connection: 'kvm', vms: [{id: 'vm-web'}]}, repository: 'r1', schedule: {kind: 'cron', expression: '0 23 1 1 *'}});
  await client.create('jobs', {id: 'db', name: JOBS[1], source: {connection: 'kvm', vms: [{id: 'vm-db'}]}, repository: 'r2', schedule: {kind: 'cron', expression: '30 23 1 1 *'}});
  await client.create('jobs', {id: 'arch', name: JOBS[2], source: {connection: 'kvm', vms: [{id: 'vm-arch'}]}, repository: 'r2', enabled: false});
});

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  await smtp?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('daily summary', () => {
  it('is off by default: nothing is armed and nothing is sent', async () => {
    expect((await client.settings()).dailySummary).toEqual({enabled: false, time: '08:00'});
    expect(daemon.scheduler.nextRun('daily-summary')).toBeUndefined();
    // A whole day passes (08:00 local included).
    clock.advance(25 * 3600_000);
    await sleep(50);
    // A marker through the same queue: mail goes out oldest first, so a summary would come first.
    await daemon.mail!.enqueue({to: ['ops@example.test'], subject: 'marker', text: 'marker\n'});
    const received = await smtp.waitFor(1);
    expect(received.map((r) => r.mail.subject)).toEqual(['marker']);
    expect(lines.some((l) => l.includes('Scheduled run: daily-summary') || l.includes('Daily summary'))).toBe(false);
  });

  it('refuses bad settings with the field named, and changes nothing', async () => {
    const before = await client.settings();
    const cases: [unknown, string, RegExp][] = [
      [{time: '25:00'}, 'settings.dailySummary.time', /HH:MM/],
      [{time: '7:30'}, 'settings.dailySummary.time', /HH:MM/],
      [{enabled: 'yes'}, 'settings.dailySummary.enabled', /true or false/],
      [{enabeld: true}, 'settings.dailySummary.enabeld', /not a daily summary setting/],
      ['on', 'settings.dailySummary', /must be an object/],
    ];
    for (const [dailySummary, field, text] of cases) {
      // With a valid change of another setting beside it: that one is not saved either.
      await expect(client.setSettings({lowSpacePercent: 33, dailySummary}), JSON.stringify(dailySummary)).rejects.toMatchObject({
        field,
        message: expect.stringMatching(text),
        hint: expect.any(String),
      });
    }
    expect(await client.settings()).toEqual(before);
    expect(daemon.scheduler.nextRun('daily-summary')).toBeUndefined();
  });

  it('once enabled, arrives at its local time with every job and repository, and is armed for the next day', async () => {
    const saved = await client.setSettings({dailySummary: {enabled: true, time: '09:15'}});
    expect(saved.dailySummary).toEqual({enabled: true, time: '09:15'});
    // A partial change keeps the rest.
    expect((await client.setSettings({dailySummary: {enabled: true}})).dailySummary).toEqual({enabled: true, time: '09:15'});
    const at = Date.parse(daemon.scheduler.nextRun('daily-summary')!);
    expect([new Date(at).getHours(), new Date(at).getMinutes()]).toEqual([9, 15]);
    expect(at).toBeGreaterThan(clock.now());

    const before = smtp.received.length;
    clock.advance(at - clock.now() - 60_000);
    await sleep(50);
    expect(smtp.received).toHaveLength(before);
    clock.advance(60_000);
    const mail = (await smtp.waitFor(before + 1))[before];
    expect(mail!.to).toEqual(['ops@example.test']);
    expect(mail!.mail.subject).toMatch(/daily summary/i);
    expect(mail!.mail.subject).toContain('3 jobs');
    expect(mail!.mail.headers.get('x-vmbackup-kind')).toBe('daily-summary');
    const text = partOf(mail!.mail, 'text/plain')!;
    const html = partOf(mail!.mail, 'text/html')!;
    for (const name of [...JOBS, ...REPOS]) expect(text).toContain(name);
    expect((html.match(/<tr class="job"/g) ?? []).length).toBe(3);
    expect((html.match(/<tr class="repository"/g) ?? []).length).toBe(2);
    expect(html).toContain('Second &quot;repo&quot; &amp;');
    // No job has run yet; the enabled ones show their next run (New Year), the disabled one none.
    expect(text.match(/Never run/g)).toHaveLength(3);
    expect(text.match(/20\d\d-01-01 23:[03]0/g)).toHaveLength(2);
    expect(daemon.scheduler.nextRun('daily-summary')).toBe(new Date(at + 24 * 3600_000).toISOString());

    // Turned off again: disarmed.
    await client.setSettings({dailySummary: {enabled: false}});
    expect(daemon.scheduler.nextRun('daily-summary')).toBeUndefined();
  });

  it('is saved across a restart of the daemon', async () => {
    await client.setSettings({dailySummary: {enabled: true, time: '06:45'}});
    await client.close();
    await daemon.stop();
    daemon = await Daemon.start({stateDir: join(dir, 'state'), socketPath: join(dir, 'api.sock'), clock, write: (l) => lines.push(l)});
    client = new DaemonClient({socketPath: join(dir, 'api.sock')});
    expect((await client.settings()).dailySummary).toEqual({enabled: true, time: '06:45'});
    expect(new Date(daemon.scheduler.nextRun('daily-summary')!).getHours()).toBe(6);
  });

  it('can be sent at once (POST /email/daily-summary); without email set up it says why and sends nothing', async () => {
    const before = smtp.received.length;
    const r = await client.sendDailySummary();
    expect(r).toMatchObject({queued: true, to: ['ops@example.test']});
    const mail = (await smtp.waitFor(before + 1))[before]!;
    expect(mail.mail.headers.get('x-vmbackup-kind')).toBe('daily-summary');
    const saved = await client.email();
    await client.setEmail(null);
    try {
      expect(await client.sendDailySummary()).toEqual({queued: false, to: [], reason: 'email is not set up'});
      expect(lines.some((l) => l.includes('Daily summary not sent: email is not set up.'))).toBe(true);
    } finally {
      // The saved password is redacted in GET /email; this one has none.
      await client.setEmail(saved);
    }
  });

  it("takes each job's newest session: running, success, warning, stopped (failed), never run (pure)", () => {
    const job = (id: string, enabled = true) => ({id, name: `Job ${id}`, enabled}) as JobConfig;
    const session = (jobId: string, state: string, startedAt: string) => ({jobId, state, startedAt}) as SessionSummary;
    const input = summaryInput({
      jobs: [job('a'), job('b'), job('c'), job('d'), job('e', false)],
      sessions: [
        session('a', 'failed', '2026-11-20T01:00:00Z'),
        session('a', 'running', '2026-11-21T01:00:00Z'),
        session('b', 'warning', '2026-11-21T01:00:00Z'),
        session('b', 'success', '2026-11-20T01:00:00Z'),
        session('c', 'stopped', '2026-11-21T02:00:00Z'),
      ],
      nextRun: (id) => `2026-11-22T0${id.charCodeAt(0) - 96}:00:00.000Z`,
      repositories: [{name: 'R', freeBytes: 1, totalBytes: 2}],
      hostname: 'appliance',
      now: new Date('2026-11-21T08:00:00Z'),
    });
    expect(input.jobs).toEqual([
      {name: 'Job a', lastResult: 'running', lastRun: '2026-11-21T01:00:00Z', nextRun: '2026-11-22T01:00:00.000Z'},
      {name: 'Job b', lastResult: 'warning', lastRun: '2026-11-21T01:00:00Z', nextRun: '2026-11-22T02:00:00.000Z'},
      {name: 'Job c', lastResult: 'failed', lastRun: '2026-11-21T02:00:00Z', nextRun: '2026-11-22T03:00:00.000Z'},
      {name: 'Job d', lastResult: 'never', lastRun: undefined, nextRun: '2026-11-22T04:00:00.000Z'},
      {name: 'Job e', lastResult: 'never', lastRun: undefined, nextRun: undefined},
    ]);
    expect(input).toMatchObject({repositories: [{name: 'R', freeBytes: 1, totalBytes: 2}], hostname: 'appliance', generatedAt: '2026-11-21T08:00:00.000Z'});
  });
});
