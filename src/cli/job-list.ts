import {formatTime, formatTable} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

interface JobRow {
  id: string;
  name: string;
  enabled: boolean;
  info: {scheduleText: string; nextRuns: string[]; running?: string; lastSession?: {state: string; endedAt?: string}};
}

export const jobList: Command = {
  words: ['job', 'list'],
  summary: 'List backup jobs: schedule, next run, last result',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const jobs = await withDaemon(ctx, values, (c) => c.list<JobRow>('jobs'));
    ctx.out.result(jobs, () => {
      if (jobs.length === 0) return 'No jobs yet.';
      return formatTable(
        ['ID', 'NAME', 'SCHEDULE', 'NEXT RUN', 'LAST RESULT'],
        jobs.map((j) => [
          j.id,
          j.name,
          j.enabled ? j.info.scheduleText : 'disabled',
          j.info.nextRuns[0] ? formatTime(j.info.nextRuns[0]) : '-',
          j.info.running ? 'running' : (j.info.lastSession?.state ?? 'never run'),
        ]),
      );
    });
  },
};
