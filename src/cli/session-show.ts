import type {SessionRecord} from '../api/session-model.js';
import {formatBytes, formatDuration, formatRate, formatRatio, formatTable, formatTime} from '../util/format.js';
import type {Command} from './command.js';
import {socketOption, withDaemon} from './daemon-client.js';

/** A session as text: result, figures, VMs with reasons, and the log's warnings and errors. */
export function describeSession(s: SessionRecord): string {
  const t = s.totals;
  const lines = [
    `Session ${s.id} of job ${s.jobName}: ${s.state}${s.reason ? ` — ${s.reason}` : ''}`,
    `Started ${formatTime(s.startedAt)}${s.endedAt ? `, ended ${formatTime(s.endedAt)} (${formatDuration(t.durationMs)})` : ''}; trigger ${s.trigger}, attempt ${s.attempt}`,
    `Read ${formatBytes(t.readBytes)}, stored ${formatBytes(t.storedBytes)}, dedup ${formatRatio(t.dedupRatio)}, compression ${formatRatio(t.compressionRatio)}, ${formatRate(t.rateBytesPerSec)}${t.bottleneck ? `, bottleneck: ${t.bottleneck}` : ''}`,
    '',
    formatTable(
      ['VM', 'STATUS', 'READ', 'STORED', 'RESTORE POINT', 'REASON'],
      s.vms.map((v) => [v.name, v.state, formatBytes(v.figures?.readBytes ?? 0), formatBytes(v.figures?.storedBytes ?? 0), v.restorePointId ?? '-', v.reason ?? '']),
    ),
  ];
  const issues = s.log.filter((l) => l.severity !== 'info');
  if (issues.length) {
    lines.push('', 'Warnings and errors:');
    for (const l of issues) lines.push(`  ${formatTime(l.time)} ${l.severity.toUpperCase()} ${l.vm ? `[${l.vm}] ` : ''}${l.message}`);
  }
  return lines.join('\n');
}

export const sessionShow: Command = {
  words: ['session', 'show'],
  summary: 'Show a session: VMs with status and reason, figures, and its log',
  usage: '<session id> [--log] [--socket <path>]',
  help: '--log prints every log line, not only warnings and errors.',
  options: {...socketOption, log: {type: 'boolean'}},
  positionals: [1, 1],
  async run(ctx, values, [id]) {
    const s = await withDaemon(ctx, values, (c) => c.session(id!));
    ctx.out.result(s, () => {
      let text = describeSession(s);
      if (values.log) text += '\n\nLog:\n' + s.log.map((l) => `  ${formatTime(l.time)} ${l.severity.padEnd(7)} ${l.code.padEnd(24)} ${l.vm ? `[${l.vm}] ` : ''}${l.message}`).join('\n');
      return text;
    });
  },
};
