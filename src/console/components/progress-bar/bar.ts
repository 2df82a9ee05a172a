/** The text of a progress bar: `width` cells of █ (done) and ░ (left). Pure; NaN counts as 0. */
export function barText(fraction: number, width: number): string {
  const w = Math.max(1, Math.floor(width));
  const f = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) : 0;
  const done = Math.floor(f * w);
  return '█'.repeat(done) + '░'.repeat(w - done);
}
