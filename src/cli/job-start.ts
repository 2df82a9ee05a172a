import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';
import {describeSession} from './session-show.js';

export const jobStart: Command = {
  words: ['job', 'start'],
  summary: 'Start a backup job now (with --wait, follow it to the end)',
  usage: '<job id> [--wait] [--socket <path>]',
  help: 'Exit code with --wait: 0 when the session ended with success or warnings, 1 when it failed or was stopped.',
  options: {...socketOption, wait: {type: 'boolean'}},
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    return withDaemon(ctx, values, async (c) => {
      const s = await c.startJob(id!);
      if (!values.wait) {
        ctx.out.result(s, () => `Started session ${s.id} of job ${s.jobName}.`);
        return;
      }
      ctx.out.info(`Session ${s.id} of job ${s.jobName} started.`);
      const ac = new AbortController();
      const following = c
        .events((e) => {
          if (e.type === 'engine' && e.sessionId === s.id && e.event.type === 'vm-finished') ctx.out.info(`  ${e.event.vmName}: ${e.event.status}${e.event.error ? ` (${e.event.error})` : ''}`);
          if (e.type === 'session' && e.session.id === s.id && e.session.state !== 'running') ac.abort();
        }, ac.signal)
        .catch(() => {});
      // The session may have ended before the event stream connected: ask once it is open.
      for (;;) {
        const now = await c.session(s.id);
        if (now.state !== 'running') {
          ac.abort();
          await following;
          ctx.out.result(now, () => describeSession(now));
          return now.state === 'success' || now.state === 'warning' ? 0 : 1;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
  },
};
