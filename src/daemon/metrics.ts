/**
 * The Prometheus metrics endpoint (off by default; settings.metrics): GET /metrics on its own TCP
 * address, in the text format (api/metrics.ts), for a Prometheus server to scrape. Every request
 * must carry `Authorization: Bearer <token>`, the token the daemon keeps in
 * <state directory>/metrics-token (0600, 32 random bytes, made when the endpoint is first turned
 * on; give Prometheus a copy as its bearer_token_file). Nothing but GET /metrics is served, and
 * the figures hold no secret; the token keeps the job and VM names to those who may see them.
 * The endpoint follows the settings: turned on, off or moved without a restart of the daemon.
 */
import {randomBytes, timingSafeEqual} from 'node:crypto';
import {readFile, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:http';
import {join} from 'node:path';
import type {SettingsConfig} from '../config/schema.js';
import {errnoCode} from '../util/errors.js';
import type {DaemonLog} from './log.js';

export const METRICS_TOKEN_FILE = 'metrics-token';

export class MetricsEndpoint {
  private server: Server | undefined;
  private listening: string | undefined;
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly d: {stateDir: string; settings: () => SettingsConfig['metrics']; render: () => Promise<string>; log: DaemonLog},
  ) {}

  /** Starts, stops or moves the endpoint to match the settings (calls are serialized). */
  apply(): Promise<void> {
    this.applying = this.applying.then(() => this.reconcile()).catch((err: unknown) => {
      this.d.log('warn', `The metrics endpoint could not be started: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.applying;
  }

  private async reconcile(): Promise<void> {
    const want = this.d.settings();
    const at = want.enabled ? want.listen : undefined;
    if (at === this.listening) return;
    await this.stop();
    if (!at) return;
    const token = Buffer.from(await this.token());
    const server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://metrics');
        if (req.method !== 'GET' || url.pathname !== '/metrics') {
          res.writeHead(404, {'content-type': 'text/plain'}).end('Only GET /metrics is served here.\n');
          return;
        }
        const given = Buffer.from(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
        if (given.length !== token.length || !timingSafeEqual(given, token)) {
          res.writeHead(401, {'content-type': 'text/plain', 'www-authenticate': 'Bearer'}).end(`A bearer token is needed: the one in ${join(this.d.stateDir, METRICS_TOKEN_FILE)}.\n`);
          return;
        }
        try {
          const text = await this.d.render();
          res.writeHead(200, {'content-type': 'text/plain; version=0.0.4; charset=utf-8'}).end(text);
        } catch (err) {
          res.writeHead(500, {'content-type': 'text/plain'}).end(`The figures could not be read: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      })();
    });
    const port = Number(at.slice(at.lastIndexOf(':') + 1));
    const host = at.slice(0, at.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.listening = at;
    this.d.log('info', `Metrics endpoint listening on http://${at}/metrics`);
  }

  /** The bearer token, made (0600) on first use. */
  private async token(): Promise<string> {
    const file = join(this.d.stateDir, METRICS_TOKEN_FILE);
    try {
      const t = (await readFile(file, 'utf8')).trim();
      if (t.length >= 32) return t;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const t = randomBytes(32).toString('hex');
    await writeFile(file, `${t}\n`, {mode: 0o600});
    return t;
  }

  private async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.listening = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  async close(): Promise<void> {
    await this.applying;
    await this.stop();
  }
}
