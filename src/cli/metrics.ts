/**
 * `vmbackup metrics`: the appliance's figures in the Prometheus text format (api/metrics.ts), for
 * node_exporter's textfile collector (run it from a timer with --output
 * /var/lib/node_exporter/textfile/vmbackup.prom; the file is replaced atomically, as the collector
 * requires) or for anything that reads that format. The daemon also serves them over HTTP when the
 * metrics endpoint is on (settings.metrics; daemon/metrics.ts).
 */
import {rename, writeFile} from 'node:fs/promises';
import {renderMetrics, type MetricsJob, type MetricsSession} from '../api/metrics.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const metrics: Command = {
  words: ['metrics'],
  summary: 'Print the figures in the Prometheus text format (or write them for node_exporter\'s textfile collector)',
  usage: '[--output <file.prom>] | --endpoint <address:port>|off [--socket <path>]',
  help: [
    'With --output the file is written next to itself and renamed into place, as the textfile collector needs.',
    '--endpoint ADDRESS:PORT has the daemon serve GET /metrics there for Prometheus (off by default; --endpoint off',
    'turns it off). Requests need the bearer token in /var/lib/vmbackup/metrics-token (give Prometheus a copy as',
    'its bearer_token_file).',
  ].join('\n'),
  options: {...socketOption, output: {type: 'string'}, endpoint: {type: 'string'}},
  positionals: [0, 0],
  async run(ctx, values) {
    if (typeof values.endpoint === 'string') {
      const off = values.endpoint === 'off';
      const s = await withDaemon(ctx, values, (d) => d.setSettings({metrics: off ? {enabled: false} : {enabled: true, listen: values.endpoint}}));
      const m = (s as {metrics?: {enabled: boolean; listen: string}}).metrics;
      ctx.out.result({metrics: m}, () =>
        m?.enabled ? `The daemon serves http://${m.listen}/metrics; requests need the bearer token in its state directory's metrics-token file.` : 'The metrics endpoint is off.',
      );
      return;
    }
    const text = await withDaemon(ctx, values, async (d) => {
      const [jobs, sessions, status] = await Promise.all([d.list<MetricsJob>('jobs'), d.sessions({limit: 500}), d.status()]);
      return renderMetrics(jobs, sessions as MetricsSession[], status.repositories, status.sessions.filter((s) => s.state === 'running').length);
    });
    if (typeof values.output === 'string') {
      const tmp = `${values.output}.${process.pid}.tmp`;
      await writeFile(tmp, text, {mode: 0o644});
      await rename(tmp, values.output);
      ctx.out.info(`Wrote ${values.output}.`);
      return;
    }
    ctx.out.result({metrics: text}, () => text.trimEnd());
  },
};
