/** Plain-text formatting of sizes, rates, durations and times for the console. Pure. */

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const rate = (bytesPerSec: number | undefined): string => (bytesPerSec ? `${bytes(bytesPerSec)}/s` : '–');

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Time left from bytes done, total and rate; undefined when it cannot be told yet. */
export function timeLeft(done: number, total: number, bytesPerSec: number): number | undefined {
  if (!(bytesPerSec > 0) || total <= 0 || done >= total) return done >= total && total > 0 ? 0 : undefined;
  return ((total - done) / bytesPerSec) * 1000;
}

/** "2026-11-23 21:05" in local time; '–' for nothing. */
export function when(iso: string | undefined | Date): string {
  if (!iso) return '–';
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
