/** The repository table of the dashboard and the repositories screen: name, used, free, dedup, points. Pure. */
import type {StatusReply} from '../../api.js';
import {tableLines} from '../../components/table/layout.js';
import {bytes} from '../../format.js';

/** Header line first; `mark` puts ✔/✖ before each name (✖ always marks an unreadable repository). */
export function repositoryLines(repos: StatusReply['repositories'], width: number, mark = false): string[] {
  return tableLines(
    [
      {title: 'Repository', width: 30, flex: true},
      {title: 'Used', width: 9, align: 'right'},
      {title: 'Free', width: 9, align: 'right'},
      {title: 'Dedup', width: 6, align: 'right'},
      {title: 'Points', width: 6, align: 'right'},
    ],
    repos.map((r) => [r.error ? `✖ ${r.name}` : mark ? `✔ ${r.name}` : r.name, bytes(r.usedBytes), bytes(r.freeBytes), r.dedupRatio ? `${r.dedupRatio.toFixed(1)}×` : '–', String(r.restorePoints ?? '–')]),
    width,
  );
}
