/**
 * Webhooks against a real HTTPS receiver on 127.0.0.1 (test/notify/webhook-receiver.ts): the
 * four body formats, the signature a receiver can check, TLS verification (with and without the
 * receiver's CA), redirects not followed, and the durable queue: a receiver that is down keeps
 * its messages (with the same delivery id on every try) without holding back another webhook's,
 * a restarted queue sends what the spool kept, and the spool never holds the URL or the secret.
 */
import {createHmac} from 'node:crypto';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ManualClock} from '../../src/notify/clock.js';
import {newWebhookMessage, postWebhook, renderWebhookBody, sessionWebhooks, WebhookError, WebhookQueue, type WebhookPolicy, type WebhookTarget} from '../../src/notify/webhooks.js';
import {sampleReport} from './fixtures.js';
import {WebhookReceiver} from './webhook-receiver.js';

let dir: string;
let rx: WebhookReceiver;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-webhook-'));
  rx = await new WebhookReceiver().start();
});
afterAll(async () => {
  await rx?.stop();
  await rm(dir, {recursive: true, force: true});
});

const SECRET = 'a-signing-secret-of-some-length';
const target = (over: Partial<WebhookTarget> = {}): WebhookTarget => ({id: 'ops', name: 'Ops', url: rx.url('/hooks/T000/B000/tok3n'), format: 'json', caPem: rx.caPem, secret: SECRET, timeoutSeconds: 5, enabled: true, ...over});

describe('webhook bodies', () => {
  it('json: the documented session document', () => {
    const report = sampleReport();
    const doc = renderWebhookBody('json', report) as Record<string, any>;
    expect(doc).toMatchObject({kind: 'vmbackup.session-report', version: 1, appliance: {hostname: report.hostname, version: report.appVersion}});
    expect(doc.session).toMatchObject({id: report.sessionId, job: {id: report.jobId, name: report.jobName}, result: report.result, totals: report.totals});
    expect(doc.session.vms.map((v: {name: string}) => v.name)).toEqual(report.vms.map((v) => v.name));
    expect(doc.session.summary).toContain(report.jobName);
  });

  it('slack, mattermost and teams: their own shapes, with names that cannot become markup, links or mentions', () => {
    const report = sampleReport({result: 'failed', jobName: 'Nightly <!channel> *bold*', vms: [{...sampleReport().vms[0]!, name: '<https://evil.example|click> @here', status: 'failed'}]});
    const slack = renderWebhookBody('slack', report) as {text: string; blocks: {type: string}[]};
    expect(slack.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    const mm = renderWebhookBody('mattermost', report) as {text: string; attachments: {color: string; fields: unknown[]}[]};
    expect(mm.attachments[0]!.color).toBe('#c62828');
    const teams = renderWebhookBody('teams', report) as {type: string; attachments: {contentType: string; content: {type: string; body: unknown[]}}[]};
    expect(teams.type).toBe('message');
    expect(teams.attachments[0]).toMatchObject({contentType: 'application/vnd.microsoft.card.adaptive', content: {type: 'AdaptiveCard'}});
    for (const body of [slack, mm, teams]) {
      const text = JSON.stringify(body);
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<https://evil.example');
      expect(text).toContain('Nightly');
    }
  });

  it('a chat message lists at most 10 VMs, failures first', () => {
    const base = sampleReport().vms[0]!;
    const vms = Array.from({length: 30}, (_, i) => ({...base, name: `vm${i}`, status: (i === 29 ? 'failed' : 'success') as 'failed' | 'success', issues: []}));
    const slack = JSON.stringify(renderWebhookBody('slack', sampleReport({vms})));
    expect(slack).toContain('vm29');
    expect(slack).toContain('… and 20 more');
    expect(slack).not.toContain('vm15');
  });

  it('which webhooks a session goes to: every-job ones and the job\'s own, by result and attempt', () => {
    const hook = (id: string, over: Partial<WebhookPolicy> = {}): WebhookPolicy => ({...target({id}), allJobs: false, onSuccess: true, onWarning: true, onFailure: true, ...over});
    const hooks = [hook('all', {allJobs: true}), hook('mine'), hook('other'), hook('off', {allJobs: true, enabled: false}), hook('failures', {allJobs: true, onSuccess: false, onWarning: false})];
    const job = {webhooks: ['mine'], onlyLastAttempt: true};
    expect(sessionWebhooks(sampleReport({result: 'success'}), job, hooks).map((m) => m.webhookId)).toEqual(['all', 'mine']);
    expect(sessionWebhooks(sampleReport({result: 'failed', lastAttempt: true}), job, hooks).map((m) => m.webhookId)).toEqual(['all', 'mine', 'failures']);
    expect(sessionWebhooks(sampleReport({result: 'failed', lastAttempt: false}), job, hooks)).toEqual([]);
  });
});

describe('posting to a receiver', () => {
  it('POSTs JSON with the event, a delivery id and a signature the receiver can check', async () => {
    const before = rx.received.length;
    const message = newWebhookMessage('ops', 'session-report', renderWebhookBody('json', sampleReport()));
    const r = await postWebhook(target(), message, {appVersion: '9.9'});
    expect(r).toEqual({status: 200, answer: 'ok'});
    const req = rx.received[before]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/hooks/T000/B000/tok3n');
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(req.headers['user-agent']).toBe('vmbackup/9.9');
    expect(req.headers['x-vmbackup-event']).toBe('session-report');
    expect(req.headers['x-vmbackup-delivery']).toBe(message.deliveryId);
    const ts = String(req.headers['x-vmbackup-timestamp']);
    expect(req.headers['x-vmbackup-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${req.body}`).digest('hex')}`);
    expect(JSON.parse(req.body)).toEqual(message.body);
    // Without a secret, no signature header.
    await postWebhook(target({secret: undefined}), message);
    expect(rx.received.at(-1)!.headers['x-vmbackup-signature']).toBeUndefined();
  });

  it('verifies TLS: a receiver whose CA is not given is refused with what to do', async () => {
    const err = await postWebhook(target({caPem: undefined}), newWebhookMessage('ops', 'test', {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookError);
    expect((err as WebhookError).message).toMatch(/TLS certificate could not be verified/);
    expect((err as WebhookError).hint).toMatch(/CA certificate/);
    expect((err as WebhookError).message).not.toContain('tok3n');
  });

  it('does not follow a redirect, and says why; 404 concerns the message, 503 the receiver', async () => {
    const before = rx.received.length;
    rx.answer = {status: 302, headers: {location: 'https://elsewhere.example/steal'}};
    try {
      const err = (await postWebhook(target(), newWebhookMessage('ops', 'test', {})).catch((e: unknown) => e)) as WebhookError;
      expect(err.message).toMatch(/HTTP 302/);
      expect(err.hint).toMatch(/redirects are not followed/);
      expect(rx.received.length).toBe(before + 1);
      rx.answer = {status: 404, body: 'no_service'};
      const gone = (await postWebhook(target(), newWebhookMessage('ops', 'test', {})).catch((e: unknown) => e)) as WebhookError;
      expect(gone.scope).toBe('message');
      expect(gone.message).toContain('no_service');
      rx.answer = {status: 503};
      expect(((await postWebhook(target(), newWebhookMessage('ops', 'test', {})).catch((e: unknown) => e)) as WebhookError).scope).toBe('target');
    } finally {
      rx.answer = {status: 200, body: 'ok'};
    }
  });

  it('a receiver that is not there: connection refused, with a hint', async () => {
    const down = new WebhookReceiver(false);
    await down.start();
    const url = down.url();
    await down.stop();
    const err = (await postWebhook(target({url, caPem: undefined}), newWebhookMessage('ops', 'test', {})).catch((e: unknown) => e)) as WebhookError;
    expect(err.message).toMatch(/refused the connection/);
    expect(err.scope).toBe('target');
  });
});

describe('the webhook queue', () => {
  it('keeps a down receiver\'s messages (same delivery id on every try) without holding back another webhook, and a new queue sends what the spool kept', async () => {
    const spoolDir = join(dir, 'spool');
    const down = new WebhookReceiver();
    await down.start();
    const downPort = down.port;
    const downCa = down.caPem;
    const hooks: Record<string, WebhookTarget> = {
      up: target({id: 'up', name: 'Up'}),
      down: target({id: 'down', name: 'Down', url: down.url('/secret-path-xyz'), caPem: downCa}),
    };
    await down.stop();
    const clock = new ManualClock();
    const lines: string[] = [];
    const q = new WebhookQueue({spoolDir, webhook: (id) => hooks[id], clock, initialDelayMs: 1000, maxDelayMs: 4000, log: (l) => lines.push(l)});
    const before = rx.received.length;
    const first = newWebhookMessage('down', 'session-report', {n: 1});
    await q.enqueue(first);
    await q.enqueue(newWebhookMessage('up', 'session-report', {n: 2}));
    await q.flush();
    // The up receiver got its message although the down one failed first.
    expect(rx.received.length).toBe(before + 1);
    expect(JSON.parse(rx.received.at(-1)!.body)).toEqual({n: 2});
    const st = q.status();
    expect(st.pending).toBe(1);
    expect(st.targets['down']).toMatchObject({pending: 1, lastError: {message: expect.stringMatching(/refused the connection/)}});
    expect(st.targets['up']).toMatchObject({pending: 0, lastSuccessAt: expect.any(String)});
    // The spool holds the body and the webhook's id, never its URL or secret.
    const files = (await readdir(spoolDir)).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const spooled = await readFile(join(spoolDir, files[0]!), 'utf8');
    expect(spooled).toContain('"webhookId":"down"');
    expect(spooled).not.toContain('secret-path-xyz');
    expect(spooled).not.toContain(SECRET);
    expect(lines.join('\n')).not.toContain('secret-path-xyz');
    await q.stop();

    // The receiver comes back on its port; a new queue (a restarted daemon) delivers, once.
    const back = new WebhookReceiver();
    await back.start(downPort);
    hooks['down'] = {...hooks['down']!, caPem: back.caPem};
    try {
      const q2 = new WebhookQueue({spoolDir, webhook: (id) => hooks[id], clock: new ManualClock(clock.now() + 10_000)});
      await q2.flush();
      const [got] = await back.waitFor(1);
      expect(JSON.parse(got!.body)).toEqual({n: 1});
      expect(got!.headers['x-vmbackup-delivery']).toBe(first.deliveryId);
      expect(q2.status().pending).toBe(0);
      expect((await readdir(spoolDir)).filter((f) => f.endsWith('.json'))).toEqual([]);
      await q2.flush();
      expect(back.received).toHaveLength(1);
      await q2.stop();
    } finally {
      await back.stop();
    }
  });

  it('a message for a removed webhook waits on its own and is given up after the maximum age', async () => {
    const clock = new ManualClock();
    const q = new WebhookQueue({spoolDir: join(dir, 'spool-removed'), webhook: () => undefined, clock, initialDelayMs: 1000, maxDelayMs: 1000, maxAgeMs: 5000});
    await q.enqueue(newWebhookMessage('gone', 'session-report', {}));
    await q.flush();
    expect(q.status().targets['gone']?.lastError?.message).toMatch(/was removed/);
    for (let i = 0; i < 10 && q.status().pending > 0; i++) {
      clock.advance(1000);
      await q.flush();
    }
    expect(q.status()).toMatchObject({pending: 0, failed: 1});
    await q.stop();
  });
});
