/**
 * Email report benchmark (prints figures; not a test).
 *   node --import tsx bench/notify.ts [--vms 200] [--messages 50]
 *
 * 1. Rendering: renderSessionReport for a session of --vms VMs (each with a warning), repeated;
 *    prints time per report and the HTML / text sizes (budget: HTML ≤ 100 KB).
 * 2. Delivery: --messages reports through MailQueue (durable spool, fsync per message) into a
 *    local smtp-server; prints messages per second from enqueue of the first to receipt of the last.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {MailQueue} from '../src/notify/mail-queue.js';
import {renderSessionReport} from '../src/notify/render.js';
import {largeReport, sampleReport} from '../test/notify/fixtures.js';
import {SmtpHarness, smtpSettings} from '../test/notify/smtp-harness.js';

const {values} = parseArgs({options: {vms: {type: 'string', default: '200'}, messages: {type: 'string', default: '50'}}});
const vms = Number(values.vms);
const messages = Number(values.messages);

const report = largeReport(vms);
renderSessionReport(report); // warm-up
const rounds = 20;
let t0 = performance.now();
let mail = renderSessionReport(report);
for (let i = 1; i < rounds; i++) mail = renderSessionReport(report);
const perReport = (performance.now() - t0) / rounds;
console.log(
  `render: ${vms} VMs in ${perReport.toFixed(1)} ms/report; HTML ${(Buffer.byteLength(mail.html) / 1024).toFixed(1)} KiB${
    mail.html.includes('many messages') ? ' (compact form)' : ''
  }, text ${(Buffer.byteLength(mail.text) / 1024).toFixed(1)} KiB`,
);

const server = await new SmtpHarness().start();
const dir = await mkdtemp(join(tmpdir(), 'vmbackup-bench-spool-'));
const settings = smtpSettings(server.port);
const queue = new MailQueue({spoolDir: dir, settings: () => settings});
const small = renderSessionReport(sampleReport());
t0 = performance.now();
for (let i = 0; i < messages; i++) await queue.enqueue({to: ['ops@example.test'], subject: `bench ${i}`, text: small.text, html: small.html});
const enqueued = performance.now() - t0;
await server.waitFor(messages);
const total = performance.now() - t0;
console.log(
  `queue: ${messages} reports enqueued in ${enqueued.toFixed(0)} ms (${(enqueued / messages).toFixed(2)} ms each, durable); all received after ${total.toFixed(0)} ms (${(
    (messages / total) *
    1000
  ).toFixed(0)} messages/s)`,
);
await queue.stop();
await server.stop();
await rm(dir, {recursive: true, force: true});
