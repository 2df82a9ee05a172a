/**
 * Table layout as a pure function: fits columns into a width by shrinking (or growing) the flexible ones,
 * truncates cells with '…' and pads them, so every line is at most `width` characters.
 */
export interface Column {
  title: string;
  /** Preferred width; flexible columns give way first. */
  width: number;
  flex?: boolean;
  align?: 'left' | 'right';
}

export function fitColumns(cols: readonly Column[], width: number): number[] {
  const gaps = Math.max(0, cols.length - 1);
  const widths = cols.map((c) => c.width);
  let over = widths.reduce((a, b) => a + b, 0) + gaps - width;
  // A wider window goes to the flexible columns (names), so the console grows with it.
  const flex = cols.map((c, i) => (c.flex ? i : -1)).filter((i) => i >= 0);
  if (over < 0 && flex.length) {
    const each = Math.floor(-over / flex.length);
    for (const i of flex) widths[i]! += each;
    return widths;
  }
  // Shrink flexible columns down to 4 characters, then the others.
  for (const pass of [true, false]) {
    for (let i = cols.length - 1; i >= 0 && over > 0; i--) {
      if (!!cols[i]!.flex !== pass) continue;
      const give = Math.min(over, Math.max(0, widths[i]! - 4));
      widths[i]! -= give;
      over -= give;
    }
  }
  return widths;
}

export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const chars = [...text];
  const t = chars.length > width ? chars.slice(0, Math.max(0, width - 1)).join('') + '…' : text;
  return align === 'right' ? t.padStart(width) : t.padEnd(width);
}

export function tableLines(cols: readonly Column[], rows: readonly string[][], width: number): string[] {
  const w = fitColumns(cols, width);
  const line = (r: readonly string[]) => r.map((t, i) => cell(t ?? '', w[i]!, cols[i]!.align)).join(' ').trimEnd();
  return [line(cols.map((c) => c.title)), ...rows.map(line)];
}
