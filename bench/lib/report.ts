/**
 * The comparison table the platform benchmarks print: one row per figure with our value, the
 * reference's value, the ratio, the target and whether it is met. Pure: rows in, text out.
 */

export interface Row {
  figure: string;
  ours: string;
  theirs: string;
  /** ours / theirs (or ours / limit), shown with two decimals; omitted when meaningless. */
  ratio?: number;
  target: string;
  met: boolean | undefined;
}

export function renderTable(title: string, rows: Row[], header: [string, string] = ['vmbackup', 'reference']): string {
  const head = ['figure', header[0], header[1], 'ratio', 'target', 'met'];
  const body = rows.map((r) => [r.figure, r.ours, r.theirs, r.ratio === undefined ? '' : r.ratio.toFixed(2), r.target, r.met === undefined ? '?' : r.met ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [`${title}`, line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
