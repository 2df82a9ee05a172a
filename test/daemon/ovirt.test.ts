/**
 * A job against the oVirt simulator (test/ovirt-sim) on a real vmbackupd: the connection test,
 * VMs selected by tag, a session with the raw-disk warning, restore points, and an incremental
 * second run; a wrong password is reported by the connection test with its hint.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openRepository} from '../../src/repository/index.js';
import {statfs} from 'node:fs/promises';
import {createHmac} from 'node:crypto';
import {SmtpHarness} from '../notify/smtp-harness.js';
import {WebhookReceiver} from '../notify/webhook-receiver.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import type {DaemonEvent} from '../../src/api/contract.js';

let dir: string;
let sim: Simulator;
let d: RunningDaemon;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-ovirt-'));
  sim = await startSimulator({delayMs: 10});
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
});
afterAll(async () => {
  await d?.stop();
  await sim?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('jobs against the oVirt simulator', () => {
  it('tests the connection: a wrong password fails with a hint, the right one lists the VMs', async () => {
    const base = {kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, caPem: sim.caPem, caFingerprint: sim.caFingerprint};
    const bad = await d.client.testConnection({...base, password: 'wrong'});
    expect(bad).toMatchObject({ok: false, authenticated: false, error: {exitCode: 21, hint: expect.any(String)}});
    await d.client.create('connections', {id: 'engine', ...base, password: sim.password});
    expect(await d.client.testConnection('engine')).toEqual({ok: true, reachable: true, authenticated: true, vms: 3});
    expect(d.lines.join('\n')).not.toContain(sim.password);
    // The inventory is cached per connection until a refresh is asked for.
    const inv = await d.client.inventory('engine');
    expect(inv.vms.map((v) => v.name)).toContain('web01');
    expect((await d.client.inventory('engine')).at).toBe(inv.at);
    await new Promise((r) => setTimeout(r, 5));
    expect((await d.client.inventory('engine', true)).at).not.toBe(inv.at);
  });

  it('backs up the VMs with a tag, then incrementally', async () => {
    await d.client.create('jobs', {id: 'prod', name: 'Prod', source: {connection: 'engine', tags: ['prod']}, repository: 'r', retries: {count: 0}});
    const s = await waitForSession(d.client, (await d.client.startJob('prod')).id);
    expect(s.state, JSON.stringify(s.log)).toBe('warning');
    expect(s.vms.map((v) => [v.name, v.state]).sort()).toEqual([
      [`db 01 'quoted'; ünï`, 'success'],
      ['web01', 'warning'],
    ]);
    expect(s.log.some((l) => l.severity === 'warning' && l.vm === 'web01')).toBe(true);
    const web = sim.vm('web01');
    sim.guestWrite(sim.disksOf('web01')[0]!.id, 0, Buffer.alloc(65536, 0x77));
    const s2 = await waitForSession(d.client, (await d.client.startJob('prod')).id);
    expect(s2.state).toBe('warning');
    expect(s2.vms.find((v) => v.name === 'web01')!.incremental).toBe(true);
    const repo = await openRepository(join(dir, 'repo'));
    expect((await repo.listRestorePoints({vmId: web.id})).map((p) => p.type)).toEqual(['full', 'incremental']);
    // Status shows the repository's figures once computed in the background.
    let r;
    for (;;) {
      r = (await d.client.status()).repositories.find((x) => x.id === 'r')!;
      if (r.usedBytes !== undefined) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(r).toMatchObject({restorePoints: 4, usedBytes: expect.any(Number), freeBytes: expect.any(Number), totalBytes: expect.any(Number)});
    expect(r.dedupRatio).toBeGreaterThanOrEqual(1);
    expect(await d.client.gc('r')).toEqual({ok: true});
    expect((await repo.verify()).ok).toBe(true);
  });

  it('mails the session report to the global and the job recipients, and warns when the repository is low on space', async () => {
    const smtp = await new SmtpHarness().start();
    try {
      await d.client.setEmail({transport: 'smtp', host: '127.0.0.1', port: smtp.port, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 5});
      // The threshold is set above this disk's free share, so the warning must appear.
      const fs = await statfs(dir);
      const freePercent = (fs.bavail / fs.blocks) * 100;
      const threshold = Math.min(90, Math.ceil(freePercent) + 1);
      await d.client.setSettings({lowSpacePercent: threshold});
      const job = await d.client.get<Record<string, unknown>>('jobs', 'prod');
      await d.client.update('jobs', 'prod', {...job, notification: {recipients: ['owner@example.test']}});
      const events: DaemonEvent[] = [];
      const watching = new AbortController();
      void d.client.events((e) => events.push(e), watching.signal).catch(() => undefined);
      const s = await waitForSession(d.client, (await d.client.startJob('prod')).id);
      const [mail] = await smtp.waitFor(1);
      expect(mail!.to.sort(), JSON.stringify(await d.client.get('jobs', 'prod'))).toEqual(['ops@example.test', 'owner@example.test']);
      expect(mail!.mail.subject).toContain('Prod');
      if (freePercent < threshold) {
        expect(s.log.some((l) => l.code === 'repository-low-space' && l.severity === 'warning')).toBe(true);
        // Low space also starts garbage collection of that repository right away.
        for (let i = 0; i < 300 && !events.some((e) => e.type === 'maintenance' && e.repository === 'r' && e.action === 'gc' && e.state === 'finished'); i++) {
          await new Promise((res) => setTimeout(res, 100));
        }
        expect(events.filter((e) => e.type === 'maintenance' && e.action === 'gc').map((e) => (e as {state: string}).state)).toEqual(['started', 'finished']);
      }
      watching.abort();
      // "Send test message" with the saved settings.
      expect(await d.client.testEmail()).toEqual({ok: true, accepted: ['ops@example.test']});
      const received = await smtp.waitFor(2);
      expect(received[1]!.to).toEqual(['ops@example.test']);
      // With settings that cannot work, the answer says why and what to do.
      const bad = await d.client.testEmail({transport: 'smtp', host: '127.0.0.1', port: 1, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 2});
      expect(bad).toMatchObject({ok: false, error: {message: expect.any(String), hint: expect.any(String)}});
    } finally {
      await d.client.setEmail(null).catch(() => {});
      await smtp.stop();
    }
  });

  it('posts the session report to webhooks (every job\'s and the job\'s own), keeping their URLs and secrets secret', async () => {
    const rx = await new WebhookReceiver().start();
    const secret = 'receiver-checks-this-signature';
    try {
      const chat = (await d.client.create('webhooks', {name: 'Ops chat', url: rx.url('/services/T1/B2/chat-token-123'), format: 'slack', caPem: rx.caPem, allJobs: true})) as Record<string, any>;
      const own = (await d.client.create('webhooks', {id: 'prod-json', name: 'Prod JSON', url: rx.url('/in/json-token-456'), caPem: rx.caPem, secret})) as Record<string, any>;
      // Listed with the URL and the secret as "••••", and where it goes.
      expect(chat).toMatchObject({id: 'ops-chat', url: '••••', format: 'slack', info: {host: `127.0.0.1:${rx.port}`, pending: 0}});
      expect(own).toMatchObject({url: '••••', secret: '••••', format: 'json', allJobs: false});
      // Sending the listed object back keeps both; a new URL with the old secret is refused.
      await d.client.update('webhooks', 'prod-json', {...own, timeoutSeconds: 10});
      const moved = await d.client.update('webhooks', 'prod-json', {...own, url: 'https://attacker.example/collect'}).catch((e: unknown) => e);
      expect(String((moved as Error).message)).toMatch(/secret: the stored secret belongs to another webhook URL/);
      // A plain http:// URL only when allowed.
      const plain = await d.client.create('webhooks', {name: 'Plain', url: 'http://127.0.0.1:1/x'}).catch((e: unknown) => e);
      expect(String((plain as Error).message)).toMatch(/unencrypted/);
      const job = await d.client.get<Record<string, any>>('jobs', 'prod');
      await d.client.update('jobs', 'prod', {...job, notification: {...job.notification, webhooks: ['prod-json']}});
      // In use by a job: cannot be removed.
      await expect(d.client.remove('webhooks', 'prod-json')).rejects.toThrow(/used by job/);

      const s = await waitForSession(d.client, (await d.client.startJob('prod')).id);
      const got = await rx.waitFor(2);
      const byPath = Object.fromEntries(got.map((r) => [r.path, r]));
      const json = byPath['/in/json-token-456']!;
      const doc = JSON.parse(json.body);
      expect(doc).toMatchObject({kind: 'vmbackup.session-report', session: {id: s.id, job: {id: 'prod', name: 'Prod'}, result: s.state}});
      expect(doc.session.vms.map((v: {name: string}) => v.name).sort()).toEqual(s.vms.map((v) => v.name).sort());
      const ts = String(json.headers['x-vmbackup-timestamp']);
      expect(json.headers['x-vmbackup-signature']).toBe(`sha256=${createHmac('sha256', secret).update(`${ts}.${json.body}`).digest('hex')}`);
      const slack = JSON.parse(byPath['/services/T1/B2/chat-token-123']!.body);
      expect(slack.text).toContain('Prod');
      expect(slack.blocks.length).toBeGreaterThan(1);
      // "Send test" answers with what the receiver said.
      expect(await d.client.testWebhook('ops-chat')).toEqual({ok: true, status: 200, answer: 'ok'});
      expect(JSON.parse(rx.received.at(-1)!.body).text).toContain('vmbackup test');
      // Neither URL nor the secret reached the daemon's log.
      for (const word of ['chat-token-123', 'json-token-456', secret]) expect(d.lines.join('\n')).not.toContain(word);
      await d.client.update('jobs', 'prod', {...job, notification: {...job.notification, webhooks: []}});
      await d.client.remove('webhooks', 'prod-json');
      await d.client.remove('webhooks', 'ops-chat');
    } finally {
      await rx.stop();
    }
  });
});
