/**
 * MailQueue against a real SMTP server: reports arrive complete, a server that is down delays
 * but never loses them, the spool survives a restart, and the backoff is capped. Time is moved
 * by a ManualClock except in the one test that runs the real sender loop end to end.
 */
import {chmod, mkdtemp, readdir, readFile, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, describe, expect, it} from 'vitest';
import {ManualClock} from '../../src/notify/clock.js';
import {MailQueue} from '../../src/notify/mail-queue.js';
import {buildSessionMail} from '../../src/notify/policy.js';
import {parseJobNotification, type EmailSettings} from '../../src/notify/settings.js';
import type {OutgoingMail} from '../../src/notify/transport.js';
import {sampleReport} from './fixtures.js';
import {partOf} from './rfc822.js';
import {freePort, SmtpHarness, smtpSettings} from './smtp-harness.js';

const PASSWORD = 'queue-Secret-9;"x"';

function settingsFor(port: number, extra: object = {}): EmailSettings {
  return smtpSettings(port, {fromName: 'vmbackup on appliance-01', ...extra});
}

const spoolDir = () => mkdtemp(join(tmpdir(), 'vmbackup spool ü;'));
const simple = (subject: string, to = ['ops@example.test']): OutgoingMail => ({to, subject, text: `${subject} body`});
const toStop: {stop(): Promise<void>}[] = [];
afterEach(async () => {
  for (const s of toStop.splice(0).reverse()) await s.stop();
});

describe('a session report through the queue', () => {
  it('arrives with the subject, global + job recipients, both parts and every figure', async () => {
    const server = await new SmtpHarness().start();
    toStop.push(server);
    const settings = settingsFor(server.port);
    const job = parseJobNotification({recipients: ['dba@example.test', 'OPS@example.test']});
    const mail = buildSessionMail(sampleReport(), job, settings, {timeZone: 'UTC'});
    expect(mail).toBeDefined();
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => settings});
    toStop.push(queue);
    await queue.enqueue(mail!);
    const [got] = await server.waitFor(1);

    expect(got.mail.subject).toBe('[Warning] Nightly production (3 VMs) 1 failed, 1 warning');
    expect(got.to).toEqual(['ops@example.test', 'dba@example.test']);
    expect(got.mail.headers.get('from')).toContain('vmbackup@example.test');
    expect(got.mail.headers.get('x-vmbackup-session')).toBe('sess-20261123-0100-7f3a');
    expect(got.mail.headers.get('content-type')).toMatch(/^multipart\/alternative/);
    const text = partOf(got.mail, 'text/plain') ?? '';
    const html = partOf(got.mail, 'text/html') ?? '';
    expect(text).toBe(mail!.text);
    expect(html).toBe(mail!.html);
    for (const figure of ['220 GiB', '123 GiB', '15.0 GiB', '13.7 GiB', '3.4x', '1.9x', '166 MiB/s', '0:12:34', '1.20 TiB free of 4.00 TiB', '2 of 3 VMs processed']) {
      expect(text).toContain(figure);
      expect(html.replace(/\u00a0/g, ' ')).toContain(figure);
    }
    for (const vm of ['web-01', 'db-02', 'legacy-app']) expect(html).toContain(`<b>${vm}</b>`);
    await queue.flush();
    expect(queue.status()).toMatchObject({pending: 0, lastError: undefined});
  });
});

describe('while the mail server is down', () => {
  it('keeps the messages, reports why, backs off (capped), and sends them when it returns', async () => {
    const port = await freePort();
    const clock = new ManualClock();
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => settingsFor(port), clock, initialDelayMs: 30_000, maxDelayMs: 100_000});
    toStop.push(queue);

    const start = clock.now();
    await queue.enqueue(simple('first'));
    await queue.enqueue(simple('second'));
    await queue.flush();
    let st = queue.status();
    expect(st.pending).toBe(2);
    expect(st.lastError?.message).toBe(`The connection to the mail server 127.0.0.1:${port} was refused: nothing accepts connections on that port.`);
    expect(st.lastError?.hint).toMatch(/firewall/);
    expect(st.lastAttemptAt).toBe(new Date(start).toISOString());
    expect(st.nextAttemptAt).toBe(new Date(start + 30_000).toISOString());

    // Backoff doubles per failure and stops at maxDelayMs: 30 s, 60 s, 100 s, 100 s.
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      delays.push(clock.nextTimerIn()!);
      clock.advance(clock.nextTimerIn()!);
      await queue.flush();
    }
    expect(delays).toEqual([30_000, 60_000, 100_000, 100_000]);
    expect(queue.status().pending).toBe(2);

    // Nothing is tried before the backoff expires, even when a new report is queued.
    const server = await new SmtpHarness({port}).start();
    toStop.push(server);
    await queue.enqueue(simple('third'));
    await queue.flush();
    expect(server.received).toHaveLength(0);

    clock.advance(clock.nextTimerIn()!);
    await queue.flush();
    const got = await server.waitFor(3);
    expect(got.map((r) => r.mail.subject)).toEqual(['first', 'second', 'third']);
    st = queue.status();
    expect(st.pending).toBe(0);
    expect(st.lastError).toBeUndefined();
    expect(st.lastSuccessAt).toBeDefined();
  });

  it('drains by itself with the real clock once the server is back', async () => {
    const port = await freePort();
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => settingsFor(port), initialDelayMs: 50, maxDelayMs: 200});
    toStop.push(queue);
    await queue.enqueue(simple('while down'));
    await queue.flush();
    expect(queue.status().lastError?.message).toMatch(/was refused/);
    const server = await new SmtpHarness({port}).start();
    toStop.push(server);
    const [got] = await server.waitFor(1); // the sender loop's own timer delivers it
    expect(got.mail.subject).toBe('while down');
  });

  it('retryNow ignores the backoff', async () => {
    const port = await freePort();
    const clock = new ManualClock();
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => settingsFor(port), clock});
    toStop.push(queue);
    await queue.enqueue(simple('now please'));
    await queue.flush();
    const server = await new SmtpHarness({port}).start();
    toStop.push(server);
    await queue.retryNow();
    await server.waitFor(1);
    expect(queue.status().pending).toBe(0);
  });
});

describe('restart', () => {
  it('a new MailQueue on the same spool sends what the old one left, once, and the spool holds no secret', async () => {
    const port = await freePort();
    const dir = await spoolDir();
    await chmod(dir, 0o755); // as an installer might leave it: the queue tightens it
    const settings = settingsFor(port, {auth: {user: 'backup', password: PASSWORD}});
    const clock = new ManualClock();
    const first = new MailQueue({spoolDir: dir, settings: () => settings, clock});
    await first.enqueue(simple('queued before restart 1'));
    await first.enqueue(simple('queued before restart 2'));
    await first.flush();
    await first.stop();

    const files = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    expect(files).toHaveLength(2);
    const errors: string[] = [];
    for (const name of files) {
      const path = join(dir, name);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const content = await readFile(path, 'utf8');
      expect(content).not.toContain(PASSWORD);
      expect(content).not.toContain(Buffer.from(PASSWORD).toString('base64'));
      errors.push(JSON.parse(content).lastError ?? '');
    }
    // The first was tried and failed; the second waits behind the paused queue.
    expect(errors[0]).toMatch(/was refused/);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);

    const server = await new SmtpHarness({port, credentials: {user: 'backup', password: PASSWORD}}).start();
    toStop.push(server);
    const second = new MailQueue({spoolDir: dir, settings: () => settings, clock: new ManualClock(clock.now() + 1000)});
    toStop.push(second);
    await second.start();
    await second.flush();
    const got = await server.waitFor(2);
    expect(got.map((r) => r.mail.subject).sort()).toEqual(['queued before restart 1', 'queued before restart 2']);
    expect(got.every((r) => r.user === 'backup')).toBe(true);
    expect((await readdir(dir)).filter((n) => n.endsWith('.json'))).toHaveLength(0);
    expect(second.status().pending).toBe(0);
    await second.flush();
    expect(server.received).toHaveLength(2);
  });

  it('moves an unreadable spool file aside and sends the rest', async () => {
    const server = await new SmtpHarness().start();
    toStop.push(server);
    const dir = await spoolDir();
    await writeFile(join(dir, '000000000000001-000001-deadbeef.json'), '{"version":1,"mail":');
    await writeFile(join(dir, '.000000000000002-x.1.tmp'), 'half a write');
    const queue = new MailQueue({spoolDir: dir, settings: () => settingsFor(server.port)});
    toStop.push(queue);
    await queue.enqueue(simple('after the junk'));
    await server.waitFor(1);
    expect(await readdir(join(dir, 'corrupt'))).toEqual(['000000000000001-000001-deadbeef.json']);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('faults that must not fail a session', () => {
  it('a refused recipient delays only that message', async () => {
    const server = await new SmtpHarness({refuseRecipients: ['outside@elsewhere.test']}).start();
    toStop.push(server);
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => settingsFor(server.port), clock: new ManualClock()});
    toStop.push(queue);
    await queue.enqueue(simple('to the outside', ['outside@elsewhere.test']));
    await queue.enqueue(simple('to ops'));
    await queue.flush();
    expect((await server.waitFor(1)).map((r) => r.mail.subject)).toEqual(['to ops']);
    const st = queue.status();
    expect(st.pending).toBe(1);
    expect(st.lastError?.message).toMatch(/will not relay.*554 5.7.1 Relaying denied/);
  });

  it('a spool that cannot be written still delivers from memory and says so', async () => {
    const server = await new SmtpHarness().start();
    toStop.push(server);
    const file = join(await spoolDir(), 'not-a-directory');
    await writeFile(file, 'x');
    const queue = new MailQueue({spoolDir: join(file, 'spool'), settings: () => settingsFor(server.port), clock: new ManualClock()});
    toStop.push(queue);
    const id = await queue.enqueue(simple('in memory'));
    expect(id).toMatch(/^\d{15}-\d{6}-/);
    expect(queue.status().lastError?.message).toMatch(/mail spool/);
    await queue.flush();
    await server.waitFor(1);
    expect(queue.status().pending).toBe(0);
  });

  it('email not set up: the message waits and the status says why', async () => {
    const queue = new MailQueue({spoolDir: await spoolDir(), settings: () => undefined, clock: new ManualClock()});
    toStop.push(queue);
    await queue.enqueue(simple('nobody to send it'));
    await queue.flush();
    expect(queue.status()).toMatchObject({pending: 1, lastError: {message: 'Email is not set up, so reports cannot be sent.'}});
  });

  it('settings that cannot be read back off like a server failure instead of spinning', async () => {
    const clock = new ManualClock();
    let reads = 0;
    const queue = new MailQueue({
      spoolDir: await spoolDir(),
      settings: () => {
        reads++;
        throw new Error('config.json: unexpected end of JSON input');
      },
      clock,
    });
    toStop.push(queue);
    await queue.enqueue(simple('config broken'));
    await queue.flush();
    expect(reads).toBe(1);
    expect(queue.status()).toMatchObject({pending: 1, lastError: {message: 'The email settings could not be read: config.json: unexpected end of JSON input'}});
    expect(clock.nextTimerIn()).toBe(30_000);
  });

  it('gives a message up after maxAgeMs and keeps it in failed/', async () => {
    const port = await freePort();
    const dir = await spoolDir();
    const clock = new ManualClock();
    const queue = new MailQueue({spoolDir: dir, settings: () => settingsFor(port), clock, initialDelayMs: 1000, maxDelayMs: 1000, maxAgeMs: 5000});
    toStop.push(queue);
    await queue.enqueue(simple('too old'));
    await queue.flush();
    while (queue.status().pending > 0) {
      clock.advance(1000);
      await queue.flush();
    }
    expect(queue.status().failed).toBe(1);
    const [name] = await readdir(join(dir, 'failed'));
    expect(JSON.parse(await readFile(join(dir, 'failed', name), 'utf8')).lastError).toMatch(/^Given up after \d+ attempts: The connection/);
  });
});
