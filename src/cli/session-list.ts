import {formatBytes, formatDuration, formatTable, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const sessionList: Command = {
  words: ['session', 'list'],
  summary: 'List backup sessions, newest first',
  usage: '[--job <job id>] [--limit N] [--socket <path>]',
  options: {...socketOption, job: {type: 'string'}, limit: {type: 'string'}},
  positionals: [0, 0],
  async run(ctx, values) {
    const limit = typeof values.limit === 'string' ? Number(values.limit) : 20;
    const sessions = await withDaemon(ctx, values, (c) => c.sessions({job: typeof values.job === 'string' ? values.job : undefined, limit}));
    ctx.out.result(sessions, () => {
      if (sessions.length === 0) return 'No sessions yet.';
      return formatTable(
        ['ID', 'JOB', 'STARTED', 'RESULT', 'VMS', 'READ', 'STORED', 'DURATION'],
        sessions.map((s) => [
          s.id,
          s.jobName,
          formatTime(s.startedAt),
          s.state,
          `${s.vms.filter((v) => v.state === 'success' || v.state === 'warning').length}/${s.vms.length}`,
          formatBytes(s.totals.readBytes),
          formatBytes(s.totals.storedBytes),
          s.state === 'running' ? '-' : formatDuration(s.totals.durationMs),
        ]),
      );
    });
  },
};
