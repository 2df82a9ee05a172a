/**
 * Webhooks: a session report POSTed as JSON to an HTTP(S) endpoint, in one of four shapes —
 * our own (`json`, documented in docs/email-reports.md "Webhooks"), or a message for Slack
 * (incoming webhook, Block Kit), Microsoft Teams (a Workflows "post to a channel when a webhook
 * request is received" trigger: a message with an Adaptive Card) or Mattermost (incoming webhook,
 * Slack-compatible text + attachments).
 *
 * Delivery goes through a DeliveryQueue (durable spool, backoff per webhook, give up after 7
 * days), like mail. What is spooled is the rendered body and the webhook's id: the URL (often a
 * secret itself: Slack's and Teams' URLs are bearer credentials) and the signing key are read
 * from the configuration at each attempt and never written to the spool or a log line; the log
 * names the webhook and the URL's host only.
 *
 * Rules an endpoint can rely on:
 * - POST, Content-Type application/json; charset=utf-8, User-Agent vmbackup/<version>.
 * - X-Vmbackup-Event (session-report | test), X-Vmbackup-Delivery (unique per message, the same
 *   on every retry of it: a receiver can drop duplicates), X-Vmbackup-Timestamp (seconds).
 * - With a signing secret: X-Vmbackup-Signature: sha256=<hex HMAC-SHA256 of
 *   "<timestamp>.<body>"> with the secret as key.
 * - 2xx is delivered. Redirects are not followed (they would carry the report elsewhere).
 *   400/404/410/413/422 concern the message or the URL: that message is retried on its own
 *   backoff; anything else (connection refused, TLS, 401/403, 429, 5xx) pauses that webhook.
 * - TLS certificates are verified (the system CAs, or the webhook's own CA).
 */
import {createHmac, randomUUID} from 'node:crypto';
import {Agent, request} from 'undici';
import {UserError} from '../util/errors.js';
import type {Clock} from './clock.js';
import {DeliveryQueue, type DeliveryOutcome, type DeliveryQueueStatus} from './delivery-queue.js';
import {formatBytes, formatDuration} from '../util/format.js';
import type {SessionReport} from './model.js';
import type {JobNotificationSettings} from './settings.js';
import {countStatuses, issuesPhrase, RESULT_LABEL, STATUS_SYMBOL as MARK} from './summary.js';

export const WEBHOOK_FORMATS = ['json', 'slack', 'teams', 'mattermost'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** What delivery needs of a configured webhook (config/schema.ts webhookSchema has the rest). */
export interface WebhookTarget {
  id: string;
  name: string;
  url: string;
  format: WebhookFormat;
  /** HMAC-SHA256 signing key; no signature header without it. */
  secret?: string;
  /** Extra CA certificate(s), PEM, for a receiver with a private CA. */
  caPem?: string;
  timeoutSeconds: number;
  enabled: boolean;
}

/** One spooled delivery: the webhook it goes to, and the body as it will be sent. */
export interface WebhookMessage {
  webhookId: string;
  event: 'session-report' | 'test';
  deliveryId: string;
  body: unknown;
}

/** The `json` format's document. Fields are added, never renamed (receivers parse it). */
export interface WebhookSessionDocument {
  kind: 'vmbackup.session-report';
  version: 1;
  appliance: {hostname: string; version: string};
  session: {
    id: string;
    job: {id: string; name: string; description?: string};
    result: SessionReport['result'];
    attempt: number;
    lastAttempt: boolean;
    startedAt: string;
    endedAt: string;
    summary: string;
    totals: SessionReport['totals'];
    repository: SessionReport['repository'];
    vms: {name: string; status: string; sizeBytes: number; readBytes: number; transferredBytes: number; durationMs: number; details?: string; issues: SessionReport['vms'][number]['issues']}[];
    issues: NonNullable<SessionReport['issues']>;
  };
}

/** One line: "Nightly: Success, 3 VMs, 1 warning" (no markup). */
export function reportSummary(report: SessionReport): string {
  const counts = countStatuses(report);
  const issues = issuesPhrase(counts);
  return `${report.jobName}: ${RESULT_LABEL[report.result]}, ${counts.total} VM${counts.total === 1 ? '' : 's'}${issues ? ` ${issues}` : ''}`;
}

export function sessionDocument(report: SessionReport): WebhookSessionDocument {
  return {
    kind: 'vmbackup.session-report',
    version: 1,
    appliance: {hostname: report.hostname, version: report.appVersion},
    session: {
      id: report.sessionId,
      job: {id: report.jobId, name: report.jobName, ...(report.jobDescription ? {description: report.jobDescription} : {})},
      result: report.result,
      attempt: report.attempt,
      lastAttempt: report.lastAttempt,
      startedAt: report.startedAt,
      endedAt: report.endedAt,
      summary: reportSummary(report),
      totals: report.totals,
      repository: report.repository,
      vms: report.vms.map((v) => ({
        name: v.name,
        status: v.status,
        sizeBytes: v.sizeBytes,
        readBytes: v.readBytes,
        transferredBytes: v.transferredBytes,
        durationMs: v.durationMs,
        ...(v.details ? {details: v.details} : {}),
        issues: v.issues,
      })),
      issues: report.issues ?? [],
    },
  };
}

/** At most this many VMs are listed in a chat message; the rest are counted. */
const CHAT_VMS = 10;
const COLOR = {success: '#2e7d32', warning: '#ed6c02', failed: '#c62828'} as const;

/** No angle brackets or ampersands: Slack's <!channel>, <url|text> and entities cannot form. */
function noBrackets(text: string): string {
  return text.replace(/[<>&]/g, (c) => ({'<': '‹', '>': '›', '&': '＆'})[c]!);
}

/** Chat text is markup in every chat: a VM or job name must not become a link, a mention or bold. */
function plain(text: string): string {
  return noBrackets(text).replace(/[*_~`|[\]]/g, (c) => `\\${c}`);
}

/** VMs worth a line in a chat: those with problems first, then the rest, at most CHAT_VMS. */
function chatLines(report: SessionReport): string[] {
  const order = {failed: 0, warning: 1, success: 2} as const;
  const vms = [...report.vms].sort((a, b) => order[a.status] - order[b.status]);
  const lines = vms.slice(0, CHAT_VMS).map((v) => {
    const issue = v.issues.find((i) => i.severity === 'error') ?? v.issues[0];
    return `${MARK[v.status]} ${plain(v.name)} — ${formatBytes(v.readBytes)} read, ${formatDuration(v.durationMs)}${issue ? `: ${plain(issue.message)}` : ''}`;
  });
  if (vms.length > CHAT_VMS) lines.push(`… and ${vms.length - CHAT_VMS} more`);
  return lines;
}

function facts(report: SessionReport): [string, string][] {
  return [
    ['Read', formatBytes(report.totals.readBytes)],
    ['Stored', formatBytes(report.totals.storedBytes)],
    ['Duration', formatDuration(report.totals.durationMs)],
    ['Repository free', `${formatBytes(report.repository.freeBytes)} of ${formatBytes(report.repository.totalBytes)}`],
  ];
}

/** The body for `format` (also used for the console's "send test"). */
export function renderWebhookBody(format: WebhookFormat, report: SessionReport): unknown {
  if (format === 'json') return sessionDocument(report);
  const title = `${MARK[report.result]} ${plain(reportSummary(report))}`;
  const lines = chatLines(report);
  const footer = `${plain(report.hostname)} · vmbackup ${plain(report.appVersion)} · session ${report.sessionId}`;
  if (format === 'slack') {
    return {
      text: title,
      blocks: [
        {type: 'header', text: {type: 'plain_text', text: noBrackets(reportSummary(report)).slice(0, 150)}},
        {type: 'section', fields: facts(report).map(([k, v]) => ({type: 'mrkdwn', text: `*${k}*\n${v}`}))},
        ...(lines.length ? [{type: 'section', text: {type: 'mrkdwn', text: lines.join('\n').slice(0, 3000)}}] : []),
        {type: 'context', elements: [{type: 'mrkdwn', text: footer}]},
      ],
    };
  }
  if (format === 'mattermost') {
    return {
      text: title,
      attachments: [
        {
          fallback: title,
          color: COLOR[report.result],
          text: lines.join('\n'),
          fields: facts(report).map(([k, v]) => ({short: true, title: k, value: v})),
          footer,
        },
      ],
    };
  }
  // Teams (Workflows): a message whose attachment is an Adaptive Card.
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {type: 'TextBlock', size: 'Medium', weight: 'Bolder', wrap: true, text: title, color: report.result === 'success' ? 'Good' : report.result === 'warning' ? 'Warning' : 'Attention'},
            {type: 'FactSet', facts: facts(report).map(([title, value]) => ({title, value}))},
            ...lines.map((text) => ({type: 'TextBlock', wrap: true, text})),
            {type: 'TextBlock', isSubtle: true, size: 'Small', wrap: true, text: footer},
          ],
        },
      },
    ],
  };
}

/** A configured webhook as the policy sees it. */
export interface WebhookPolicy extends WebhookTarget {
  allJobs: boolean;
  onSuccess: boolean;
  onWarning: boolean;
  onFailure: boolean;
}

/**
 * The webhook messages for a finished session: every enabled webhook that is set for all jobs or
 * named by the job, whose result filter takes this report; with the job's "only the last
 * attempt" rule, as for mail.
 */
export function sessionWebhooks(report: SessionReport, job: Pick<JobNotificationSettings, 'webhooks' | 'onlyLastAttempt'>, webhooks: readonly WebhookPolicy[]): WebhookMessage[] {
  if (job.onlyLastAttempt && !report.lastAttempt && report.result !== 'success') return [];
  return webhooks
    .filter((w) => w.enabled && (w.allJobs || job.webhooks.includes(w.id)))
    .filter((w) => (report.result === 'success' ? w.onSuccess : report.result === 'warning' ? w.onWarning : w.onFailure))
    .map((w) => newWebhookMessage(w.id, 'session-report', renderWebhookBody(w.format, report)));
}

export function newWebhookMessage(webhookId: string, event: WebhookMessage['event'], body: unknown): WebhookMessage {
  return {webhookId, event, deliveryId: randomUUID(), body};
}

/** What "send test" posts: a report of a session of a job named "vmbackup test", with no VMs. */
export function testReport(hostname: string, appVersion: string, now = new Date()): SessionReport {
  const at = now.toISOString();
  return {
    sessionId: 'test',
    jobId: 'test',
    jobName: 'vmbackup test',
    jobDescription: 'A test message: if it arrived, session reports will too.',
    result: 'success',
    startedAt: at,
    endedAt: at,
    attempt: 1,
    lastAttempt: true,
    vms: [],
    totals: {readBytes: 0, transferredBytes: 0, storedBytes: 0, dedupRatio: 1, compressionRatio: 1, durationMs: 0, rateBytesPerSec: 0, protectedBytes: 0},
    repository: {name: '', path: '', freeBytes: 0, totalBytes: 0},
    hostname,
    appVersion,
  };
}

/** The host of a URL, for log lines and messages (the path may be a credential). */
export function webhookHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an invalid URL';
  }
}

export interface PostResult {
  status: number;
  /** At most 200 characters of the receiver's answer, one line. */
  answer: string;
}

/**
 * POSTs one message to its webhook; throws a UserError saying what went wrong and what to do,
 * with `scope` on it ('message' for a rejected payload, else the webhook is not usable now).
 */
export async function postWebhook(target: WebhookTarget, message: WebhookMessage, opts: {appVersion?: string; now?: () => number} = {}): Promise<PostResult> {
  const body = JSON.stringify(message.body);
  const timestamp = String(Math.floor((opts.now?.() ?? Date.now()) / 1000));
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': `vmbackup/${opts.appVersion ?? 'dev'}`,
    'x-vmbackup-event': message.event,
    'x-vmbackup-delivery': message.deliveryId,
    'x-vmbackup-timestamp': timestamp,
  };
  if (target.secret) headers['x-vmbackup-signature'] = `sha256=${createHmac('sha256', target.secret).update(`${timestamp}.${body}`).digest('hex')}`;
  const host = webhookHost(target.url);
  const timeout = target.timeoutSeconds * 1000;
  const agent = new Agent({connect: {timeout, ...(target.caPem ? {ca: target.caPem} : {})}, headersTimeout: timeout, bodyTimeout: timeout});
  try {
    // undici's request() follows no redirect (that takes its redirect interceptor, not used here).
    const res = await request(target.url, {method: 'POST', headers, body, dispatcher: agent});
    const answer = (await res.body.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
    if (res.statusCode >= 200 && res.statusCode < 300) return {status: res.statusCode, answer};
    throw httpError(target, host, res.statusCode, answer);
  } catch (err) {
    if (err instanceof WebhookError) throw err;
    throw networkError(target, host, err);
  } finally {
    await agent.close().catch(() => {});
  }
}

export class WebhookError extends UserError {
  constructor(
    message: string,
    hint: string,
    readonly scope: 'target' | 'message',
  ) {
    super(message, {hint});
  }
}

const MESSAGE_STATUSES = new Set([400, 404, 410, 413, 422]);

function httpError(target: WebhookTarget, host: string, status: number, answer: string): WebhookError {
  const said = answer ? ` (it answered: ${answer})` : '';
  const what = `Webhook ${target.name}: ${host} answered HTTP ${status}${said}.`;
  if (status >= 300 && status < 400) return new WebhookError(what, 'The URL redirects elsewhere; redirects are not followed (the report would go to another server). Use the final URL.', 'target');
  if (status === 401 || status === 403) return new WebhookError(what, 'The receiver refused the request: check the URL (its token) and, if the receiver checks one, the signing secret.', 'target');
  if (status === 404 || status === 410) return new WebhookError(what, 'The URL does not exist (any more): copy it again from the receiver (Slack/Teams/Mattermost app settings).', 'message');
  if (status === 429) return new WebhookError(what, 'The receiver limits how often it may be called; delivery is retried later.', 'target');
  if (MESSAGE_STATUSES.has(status)) return new WebhookError(what, `The receiver rejected the message: check that the webhook's format (${target.format}) is what it expects.`, 'message');
  return new WebhookError(what, 'The receiver has a problem; delivery is retried with growing pauses for up to 7 days.', 'target');
}

function networkError(target: WebhookTarget, host: string, err: unknown): WebhookError {
  const code = (err as {code?: string}).code ?? (err as {cause?: {code?: string}}).cause?.code ?? '';
  const msg = err instanceof Error ? err.message : String(err);
  const base = `Webhook ${target.name}: ${host}`;
  if (code === 'ECONNREFUSED') return new WebhookError(`${base} refused the connection.`, 'Check the URL and port, and that the receiver runs; delivery is retried.', 'target');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new WebhookError(`${base}: the host name could not be resolved.`, "Check the URL's host name and the appliance's DNS settings.", 'target');
  if (/TIMEOUT/i.test(code) || /timeout/i.test(msg)) return new WebhookError(`${base} did not answer within ${target.timeoutSeconds} s.`, 'Check that the appliance can reach it (firewall, proxy); delivery is retried.', 'target');
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code) || /certificate/i.test(msg)) {
    return new WebhookError(`${base}: its TLS certificate could not be verified (${code || msg}).`, "Give the receiver's CA certificate in the webhook's settings (caPem), or fix the receiver's certificate.", 'target');
  }
  return new WebhookError(`${base}: ${msg}${code ? ` (${code})` : ''}.`, 'Check the URL and that the appliance can reach the receiver; delivery is retried.', 'target');
}

export interface WebhookQueueOptions {
  spoolDir: string;
  /** The configured webhook with this id, read at every attempt; undefined when it was removed. */
  webhook: (id: string) => WebhookTarget | undefined;
  appVersion?: string;
  clock?: Clock;
  initialDelayMs?: number;
  maxDelayMs?: number;
  maxAgeMs?: number;
  log?: (line: string) => void;
}

export type WebhookQueueStatus = DeliveryQueueStatus;

function isWebhookMessage(p: unknown): p is WebhookMessage {
  const m = p as WebhookMessage;
  return typeof m === 'object' && m !== null && typeof m.webhookId === 'string' && typeof m.deliveryId === 'string' && (m.event === 'session-report' || m.event === 'test') && 'body' in m;
}

/** The durable queue of webhook deliveries; each webhook is its own target (one down holds back no other). */
export class WebhookQueue extends DeliveryQueue<WebhookMessage> {
  constructor(options: WebhookQueueOptions) {
    super({
      ...options,
      kind: 'webhook',
      spoolName: 'the webhook spool',
      valid: isWebhookMessage,
      target: (m) => m.webhookId,
      describe: (m) => `(${m.event}) for webhook ${m.webhookId}`,
      deliver: async (m): Promise<DeliveryOutcome> => {
        const target = options.webhook(m.webhookId);
        if (!target) {
          return {ok: false, scope: 'message', error: new UserError(`Webhook ${m.webhookId} was removed, so this report cannot be delivered.`, {hint: 'It is given up after 7 days; nothing to do.'})};
        }
        try {
          const r = await postWebhook(target, m, {appVersion: options.appVersion, now: () => (options.clock ?? {now: Date.now}).now()});
          return {ok: true, detail: `${target.name} (${webhookHost(target.url)}) answered HTTP ${r.status}`};
        } catch (err) {
          if (err instanceof WebhookError) return {ok: false, scope: err.scope, error: err};
          throw err;
        }
      },
    });
  }
}
