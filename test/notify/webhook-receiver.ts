/**
 * A webhook receiver for the tests: a real HTTPS (or HTTP) server on 127.0.0.1 with a certificate
 * from a throw-away CA, that records every request (method, path, headers, raw body) and answers
 * what the test sets (status, body, or a redirect). Nothing is faked on the client side: the
 * appliance's webhook code talks to it over TCP and TLS like to Slack or Teams.
 */
import {createServer as createHttps} from 'node:https';
import {createServer as createHttp, type IncomingHttpHeaders, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {makeSimTls} from '../ovirt-sim/tls.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export class WebhookReceiver {
  readonly received: ReceivedRequest[] = [];
  /** What the next requests get: a status (and body), e.g. 503 while "down". */
  answer: {status: number; body?: string; headers?: Record<string, string>} = {status: 200, body: 'ok'};
  caPem = '';
  private server: Server | undefined;
  private waiters: (() => void)[] = [];

  constructor(private readonly tls = true) {}

  async start(port = 0): Promise<this> {
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        this.received.push({method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(parts).toString('utf8')});
        res.writeHead(this.answer.status, {'content-type': 'text/plain', ...this.answer.headers});
        res.end(this.answer.body ?? '');
        for (const w of this.waiters.splice(0)) w();
      });
    };
    if (this.tls) {
      const t = await makeSimTls();
      this.caPem = t.caPem;
      this.server = createHttps({cert: t.certPem, key: t.keyPem}, handler);
    } else {
      this.server = createHttp(handler);
    }
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}${path}`;
  }

  /** Waits until `count` requests have arrived (bounded by the test's timeout). */
  async waitFor(count: number): Promise<ReceivedRequest[]> {
    while (this.received.length < count) await new Promise<void>((r) => this.waiters.push(r));
    return this.received;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
