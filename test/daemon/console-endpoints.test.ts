/**
 * The endpoints the console used to assume, on a real vmbackupd process, called as the console
 * calls them (consoleApi over the DaemonClient):
 * - POST /repositories/:id/prune applies each job's retention to that job's VMs, leaves VMs of
 *   no job alone, and what it keeps stays intact (verify);
 * - POST /email/test {to?} sends to `to` with the saved settings (or to the global recipients),
 *   still takes settings in the body, and a bad address names the field;
 * - GET /logs?lines=N gives the newest N lines with the secrets scrubbed, even those saved after
 *   the line was written.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ASSUMED_ENDPOINTS, consoleApi, type ConsoleApi} from '../../src/console/api.js';
import type {JobConfig} from '../../src/config/schema.js';
import {retentionGroups, vmOwners} from '../../src/daemon/maintenance.js';
import {openRepository, type RestorePointSummary} from '../../src/repository/index.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import type {EmailSettingsInput} from '../../src/notify/settings.js';
import {SmtpHarness, freePort, smtpSettings} from '../notify/smtp-harness.js';
import {backupImage, pseudoRandom} from '../repository/helpers.js';
import {isolate, startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let d: RunningDaemon;
let api: ConsoleApi;
let smtp: SmtpHarness;
const repoPath = () => join(dir, 'repo "one" ü;x');

const email = (port: number, extra: Partial<EmailSettingsInput> = {}) => smtpSettings(port, extra) as unknown as Record<string, unknown>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-console-api-'));
  smtp = await new SmtpHarness().start();
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
  api = consoleApi(d.client);
});

afterAll(async () => {
  await d?.stop();
  await smtp?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('the console calls only endpoints the daemon offers', () => {
  it('has no assumed endpoint left', () => {
    expect(ASSUMED_ENDPOINTS).toEqual([]);
  });
});

describe('POST /repositories/:id/prune', () => {
  it("applies each job's retention to its VMs, leaves VMs of no job alone, and keeps the rest intact", async () => {
    await d.client.create('repositories', {id: 'r', name: 'R', path: repoPath()});
    await d.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    await d.client.create('jobs', {id: 'keep1', name: 'Keep one', source: {connection: 'kvm', vms: [{id: 'vm-a'}]}, repository: 'r', retention: {restorePoints: 1}});
    await d.client.create('jobs', {id: 'keep2', name: 'Keep two', source: {connection: 'kvm', vms: [{id: 'vm-b'}]}, repository: 'r', retention: {restorePoints: 2}});
    // Restore points written straight into the repository, as earlier sessions would have.
    const repo = await openRepository(repoPath());
    const write = async (vmId: string, vmName: string, n: number) => {
      for (let i = 0; i < n; i++) await backupImage(repo, pseudoRandom(256 * 1024, vmId.length * 100 + i), {vmId, vmName});
    };
    await write('vm-a', 'web 01 ü', 3);
    await write('vm-b', 'db "main"', 2);
    await write('vm-orphan', 'old; gone', 2);
    const before = await repo.listRestorePoints();
    expect(before).toHaveLength(7);

    const r = await d.client.prune('r');
    expect(r).toMatchObject({ok: true, removed: 2, kept: 3});
    expect(r.vms.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      {id: 'vm-a', name: 'web 01 ü', job: 'keep1', removed: 2, kept: 1},
      {id: 'vm-b', name: 'db "main"', job: 'keep2', removed: 0, kept: 2},
    ]);
    expect(r.unassigned).toEqual([{id: 'vm-orphan', name: 'old; gone'}]);

    const after = await repo.listRestorePoints();
    const newestA = before.filter((p) => p.vmId === 'vm-a').sort((x, y) => x.time.localeCompare(y.time)).at(-1)!;
    expect(after.filter((p) => p.vmId === 'vm-a').map((p) => p.id)).toEqual([newestA.id]);
    expect(after.filter((p) => p.vmId !== 'vm-a')).toHaveLength(4);
    // What prune kept is whole: the health check finds nothing wrong.
    expect(await d.client.verify('r')).toMatchObject({ok: true, problems: 0});

    // The console's call: the same endpoint; a second prune has nothing left to remove.
    expect(await api.prune('r')).toMatchObject({ok: true, removed: 0});
  });

  it('names an unknown repository, with a hint', async () => {
    await expect(api.prune('no-such-repo')).rejects.toMatchObject({message: expect.stringMatching(/no-such-repo/), exitCode: ExitCode.notFound, hint: expect.any(String)});
  });

  it("finds a VM's job by the session of its newest restore point, else by the job's picks (pure)", () => {
    const job = (id: string, vms: string[]) => ({id, source: {connection: 'c', vms: vms.map((v) => ({id: v}))}}) as unknown as JobConfig;
    const point = (vmId: string, time: string, sessionId?: string) => ({vmId, vmName: vmId, time, sessionId}) as RestorePointSummary;
    const jobs = [job('old', ['vm-1']), job('new', [])];
    const sessions: Record<string, string> = {s1: 'old', s2: 'new', s3: 'deleted-job'};
    const owners = vmOwners(
      [point('vm-1', '2026-11-01T00:00:00Z', 's1'), point('vm-1', '2026-11-02T00:00:00Z', 's2'), point('vm-2', '2026-11-02T00:00:00Z', 's3'), point('vm-3', '2026-11-02T00:00:00Z')],
      jobs,
      (s) => sessions[s],
    );
    expect(owners.map((o) => [o.id, o.job?.id])).toEqual([
      ['vm-1', 'new'],
      ['vm-2', undefined],
      ['vm-3', undefined],
    ]);
  });
});

describe('retention groups (pure)', () => {
  it('a point belongs to its recorded job, older points to their session\'s job, else to the VM\'s owner', () => {
    const job = (id: string, vms: string[]) => ({id, source: {connection: 'c', vms: vms.map((v) => ({id: v}))}}) as unknown as JobConfig;
    const point = (id: string, vmId: string, time: string, extra: {sessionId?: string; jobId?: string} = {}) => ({id, vmId, vmName: vmId, time, ...extra}) as RestorePointSummary;
    const jobs = [job('daily', ['vm-1']), job('monthly', ['vm-1'])];
    const sessions: Record<string, string> = {s1: 'monthly'};
    const groups = retentionGroups(
      [
        point('p1', 'vm-1', '2026-10-01T00:00:00Z', {sessionId: 's1'}), // old point, its session ran 'monthly'
        point('p2', 'vm-1', '2026-10-02T00:00:00Z', {sessionId: 'forgotten'}), // old point, session no longer known
        point('p3', 'vm-1', '2026-11-01T00:00:00Z', {jobId: 'monthly'}),
        point('p4', 'vm-1', '2026-11-02T00:00:00Z', {jobId: 'daily'}),
        point('p5', 'vm-1', '2026-11-03T00:00:00Z', {jobId: 'deleted-job'}),
      ],
      jobs,
      (s) => sessions[s],
    );
    const byJob = Object.fromEntries(groups.map((g) => [g.job?.id ?? '(none)', [...g.points].sort()]));
    // p2 says nothing: it goes with the VM's owner. The newest point (p5) names a deleted job, so
    // the owner is the first job that picks the VM. p5 itself is left alone.
    expect(byJob).toEqual({monthly: ['p1', 'p3'], daily: ['p2', 'p4'], '(none)': ['p5']});
  });
});

describe('POST /email/test', () => {
  it("sends to `to` with the saved settings, or to the global recipients; the console's call says to whom", async () => {
    await d.client.setEmail(email(smtp.port));
    expect(await api.testEmail('someone.else@example.test')).toEqual({ok: true, message: 'Test message sent to someone.else@example.test.'});
    let got = await smtp.waitFor(1);
    expect(got[0]!.to).toEqual(['someone.else@example.test']);
    expect(got[0]!.mail.headers.get('x-vmbackup-kind')).toBe('test');

    expect(await api.testEmail()).toEqual({ok: true, message: 'Test message sent to ops@example.test.'});
    got = await smtp.waitFor(2);
    expect(got[1]!.to).toEqual(['ops@example.test']);

    // A list, over the plain client; settings in the body still work, with `to` beside them.
    expect(await d.client.testEmail(undefined, ['a@example.test', 'b@example.test'])).toEqual({ok: true, accepted: ['a@example.test', 'b@example.test']});
    expect(await d.client.testEmail(email(smtp.port, {recipients: ['unsaved@example.test']}))).toEqual({ok: true, accepted: ['unsaved@example.test']});
    expect(await d.client.testEmail(email(smtp.port), 'both@example.test')).toEqual({ok: true, accepted: ['both@example.test']});
    got = await smtp.waitFor(5);
    expect(got.slice(2).map((m) => m.to)).toEqual([['a@example.test', 'b@example.test'], ['unsaved@example.test'], ['both@example.test']]);
  });

  it('names a bad address; a failed send is an error with a hint in the console, data over the API', async () => {
    const count = smtp.received.length;
    for (const [to, field] of [
      ['not an address', 'to'],
      [['ok@example.test', 'bad@'], 'to[1]'],
      [[], 'to'],
      [42, 'to'],
    ] as const) {
      await expect(d.client.testEmail(undefined, to as unknown as string), JSON.stringify(to)).rejects.toMatchObject({field, exitCode: ExitCode.invalidInput});
    }
    const port = await freePort();
    const failed = await d.client.testEmail(email(port));
    expect(failed).toMatchObject({ok: false, message: expect.any(String), error: {message: expect.any(String), hint: expect.any(String)}});
    await d.client.setEmail(email(port));
    const sent = api.testEmail('x@example.test');
    await expect(sent).rejects.toBeInstanceOf(UserError);
    await expect(sent).rejects.toMatchObject({message: failed.message, hint: expect.any(String)});
    expect(smtp.received).toHaveLength(count);
  });
});

describe('GET /logs', () => {
  it('gives the newest N lines, oldest first, the console too', async () => {
    const {lines} = await d.client.logs(3);
    expect(lines).toHaveLength(3);
    const all = (await api.logs(2000)).lines;
    expect(all.length).toBeGreaterThan(3);
    expect(all.slice(-3)).toEqual(lines);
    expect(all.some((l) => l.includes('Listening on'))).toBe(true);
    // Without journald every line carries its time, in the log view and on stdout (the fallback log file).
    expect(all.every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) /.test(l))).toBe(true);
    expect(d.lines.find((l) => l.includes('Listening on'))).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  Listening on /);
    // The default is 200 lines (fewer here: the daemon has not written that many).
    expect((await d.client.logs()).lines).toEqual(all.slice(-200));
  });

  it('scrubs secrets, also those saved after the line was written', async () => {
    // A repository whose id happens to be the password saved later: its prune is logged with the id.
    const secret = 'Hunter2-Geheim-42';
    await d.client.create('repositories', {id: secret, name: 'S', path: join(dir, 'repo s')});
    await d.client.prune(secret);
    expect(d.lines.some((l) => l.includes(`Prune of repository ${secret}`))).toBe(true);
    await d.client.setEmail(email(smtp.port, {auth: {user: 'vmbackup', password: secret}}));
    const {lines} = await api.logs(2000);
    expect(lines.some((l) => l.includes('Prune of repository ••••'))).toBe(true);
    expect(lines.some((l) => l.includes(secret))).toBe(false);
  });

  it('refuses a line count that is not a whole number', async () => {
    for (const q of ['abc', '0', '-5', '1.5']) {
      await expect(d.client.request('GET', `/logs?lines=${q}`), q).rejects.toMatchObject({message: expect.stringMatching(/^lines: must be a whole number/), hint: expect.any(String)});
    }
  });
});
