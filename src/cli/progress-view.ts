/**
 * Renders engine progress events on a terminal: one redrawn line with a bar, the rate and the
 * time left for the disk being worked on, and a permanent line per finished disk and per
 * warning. (The console and the daemon render the same events their own way.)
 */
import type {EngineEvent} from '../engine/events.js';
import {formatBytes, formatDuration, formatRate} from '../util/format.js';
import type {Printer} from './output.js';
import {progressBar} from './output.js';

export function terminalProgress(out: Printer): (e: EngineEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'vm-started':
        out.info(`${e.vmName}: ${e.incremental ? 'incremental' : 'full'}, ${e.disks.length} disk(s) (${e.disks.map((d) => `${d.name} ${formatBytes(d.size)}`).join(', ')})`);
        break;
      case 'disk-progress': {
        const left = e.rate > 0 ? formatDuration(((e.size - e.doneBytes) / Math.max(e.rate, 1)) * 1000) : '–';
        out.progress(`${e.disk} ${progressBar(e.size ? e.doneBytes / e.size : 1)} ${formatRate(e.rate)}  ${left} left`);
        break;
      }
      case 'disk-finished': {
        const f = e.figures;
        out.info(
          `  ✔ ${e.disk}: read ${formatBytes(f.readBytes)}, zero ${formatBytes(f.zeroBytes)}, unchanged ${formatBytes(f.unchangedBytes)}, stored ${formatBytes(f.storedBytes)} in ${formatDuration(f.durationMs)}`,
        );
        break;
      }
      case 'log':
        if (e.event.severity === 'warning') out.warn(e.event.message);
        else if (e.event.severity === 'error') out.info(`  ✖ ${e.event.message}`);
        break;
      default:
        break;
    }
  };
}
