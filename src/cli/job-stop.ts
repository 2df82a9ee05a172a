import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const jobStop: Command = {
  words: ['job', 'stop'],
  summary: 'Stop the running session of a job (finished VMs keep their restore points)',
  usage: '<job id> [--socket <path>]',
  options: socketOption,
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const s = await withDaemon(ctx, values, (c) => c.stopJob(id!));
    ctx.out.result(s, () => `Stopped session ${s.id} of job ${s.jobName}.`);
  },
};
