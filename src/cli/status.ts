import {formatBytes, formatRatio, formatTable} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

export const status: Command = {
  words: ['status'],
  summary: 'Show the daemon: running sessions, workers, repositories (used, free, dedup)',
  usage: '[--socket <path>]',
  options: socketOption,
  positionals: [0, 0],
  async run(ctx, values) {
    const s = await withDaemon(ctx, values, (c) => c.status());
    ctx.out.result(s, () => {
      const lines = [`vmbackupd ${s.daemon.version} (pid ${s.daemon.pid}), running since ${s.daemon.startedAt}`, ''];
      lines.push(s.sessions.length ? formatTable(['RUNNING SESSION', 'JOB', 'VMS DONE'], s.sessions.map((x) => [x.id, x.jobName, `${x.vms.filter((v) => !['pending', 'waiting', 'running'].includes(v.state)).length}/${x.vms.length}`])) : 'No session is running.');
      lines.push('', formatTable(['WORKER', 'SLOTS', 'IN USE'], s.workers.map((w) => [w.name, String(w.slots), String(w.used)])));
      if (s.repositories.length) {
        lines.push(
          '',
          formatTable(
            ['REPOSITORY', 'PATH', 'USED', 'FREE', 'DEDUP', 'POINTS'],
            s.repositories.map((r) => [r.name, r.path, r.usedBytes === undefined ? '…' : formatBytes(r.usedBytes), r.freeBytes === undefined ? '?' : formatBytes(r.freeBytes), r.dedupRatio === undefined ? '…' : formatRatio(r.dedupRatio), r.restorePoints === undefined ? '…' : String(r.restorePoints)]),
          ),
        );
      }
      return lines.join('\n');
    });
  },
};
