/**
 * `vmbackup config export` and `vmbackup config import`: the appliance's configuration as one
 * JSON file, to rebuild an appliance from its repositories and that file. The export comes from
 * the daemon with every secret shown as "••••" (it never leaves the appliance in the clear); the
 * import creates, in order, repositories, connections, workers, webhooks, jobs, then the e-mail and
 * appliance settings. An object that exists already is left as it is; one whose secret was
 * exported as "••••" is refused by the daemon and reported with what to do (give the secret with
 * `connection edit` / `webhook edit` / `email set`), and the objects that depend on it are reported too.
 */
import {readFile} from 'node:fs/promises';
import {savedJob} from '../api/jobs.js';
import type {Collection} from '../config/store.js';
import {ExitCode, isUserError, UserError} from '../util/errors.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

// Webhooks before jobs: a job names the webhooks it reports to.
const ORDER: Collection[] = ['repositories', 'connections', 'workers', 'webhooks', 'jobs'];

export interface ConfigFile {
  vmbackupConfig: 1;
  exportedAt: string;
  repositories: Record<string, unknown>[];
  connections: Record<string, unknown>[];
  workers: Record<string, unknown>[];
  jobs: Record<string, unknown>[];
  /** Absent in files of versions before webhooks. */
  webhooks?: Record<string, unknown>[];
  email: Record<string, unknown> | null;
  settings: Record<string, unknown>;
}

/** What is saved of a listed object (a job's computed `info` is not). */
function stored(c: Collection, x: Record<string, unknown>): Record<string, unknown> {
  return c === 'jobs' ? savedJob(x) : x;
}

export const configExport: Command = {
  words: ['config', 'export'],
  summary: 'Print the whole configuration as one JSON file (secrets as "••••"), to rebuild an appliance with config import',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const file = await withDaemon(ctx, values, async (d) => {
      const [repositories, connections, workers, webhooks, jobs, email, settings] = await Promise.all([
        ...ORDER.map((c) => d.list<Record<string, unknown>>(c)),
        d.email(),
        d.settings() as Promise<Record<string, unknown>>,
      ]);
      const out: ConfigFile = {
        vmbackupConfig: 1, exportedAt: new Date().toISOString(),
        repositories: repositories as Record<string, unknown>[], connections: connections as Record<string, unknown>[],
        workers: workers as Record<string, unknown>[],
        webhooks: (webhooks as Record<string, unknown>[]).map(({info: _info, ...w}) => w), jobs: (jobs as Record<string, unknown>[]).map((j) => stored('jobs', j)),
        email: email as Record<string, unknown> | null, settings: settings as Record<string, unknown>,
      };
      return out;
    });
    // Always JSON: this is the file.
    process.stdout.write(`${JSON.stringify(file, null, 2)}\n`);
  },
};

export const configImport: Command = {
  words: ['config', 'import'],
  summary: 'Create what a config export holds on this appliance (existing objects are left as they are)',
  usage: '<file> [--socket <path>]',
  help: 'Secrets exported as "••••" are not imported: give them again with "vmbackup connection edit", "vmbackup webhook add/edit" or "vmbackup email set".',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [path]) {
    let file: ConfigFile;
    try {
      file = JSON.parse(await readFile(path!, 'utf8')) as ConfigFile;
    } catch (err) {
      throw new UserError(`${path} is not a vmbackup configuration file: ${(err as Error).message}.`, {exitCode: ExitCode.invalidInput});
    }
    if (!file || file.vmbackupConfig !== 1) throw new UserError(`${path} is not a vmbackup configuration file (made by "vmbackup config export").`, {exitCode: ExitCode.invalidInput});
    const report = await withDaemon(ctx, values, async (d) => {
      const lines: {what: string; id: string; result: 'created' | 'exists' | 'refused'; reason?: string}[] = [];
      for (const c of ORDER) {
        const existing = new Set((await d.list<{id: string}>(c)).map((x) => x.id));
        for (const item of file[c] ?? []) {
          const id = String(item.id);
          if (existing.has(id)) {
            lines.push({what: c, id, result: 'exists'});
            continue;
          }
          try {
            await d.create(c, stored(c, item));
            lines.push({what: c, id, result: 'created'});
          } catch (err) {
            lines.push({what: c, id, result: 'refused', reason: isUserError(err) ? err.message : String(err)});
          }
        }
      }
      if (file.email && !(await d.email())) {
        try {
          await d.setEmail(file.email);
          lines.push({what: 'email', id: 'settings', result: 'created'});
        } catch (err) {
          lines.push({what: 'email', id: 'settings', result: 'refused', reason: isUserError(err) ? err.message : String(err)});
        }
      }
      if (file.settings) {
        const {dailySummary, ...rest} = file.settings;
        await d.setSettings({...rest, ...(dailySummary ? {dailySummary} : {})}).catch(() => undefined);
      }
      return lines;
    });
    const refused = report.filter((l) => l.result === 'refused');
    ctx.out.result(report, () =>
      [
        ...report.map((l) => `${l.result === 'created' ? '✔' : l.result === 'exists' ? '·' : '✖'} ${l.what} ${l.id}: ${l.result}${l.reason ? ` — ${l.reason}` : ''}`),
        ...(refused.length ? ['', 'Give the secrets exported as "••••" again (vmbackup connection edit / webhook add / email set), then run the import again.'] : []),
      ].join('\n'),
    );
    return refused.length ? ExitCode.invalidInput : 0;
  },
};
