/** Human-readable figures, shared by the CLI, the console and the email report. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${bytes < 0 ? '-' : ''}${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/** "3.2x"; a ratio below 1 or not finite shows as 1.0x. */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio <= 0) return '1.0x';
  return `${ratio.toFixed(ratio >= 10 ? 0 : 1)}x`;
}

/** Local time without seconds, e.g. "2026-11-23 19:40". */
export function formatTime(iso: string | Date): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Pads cells into aligned columns; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * Text from outside (a VM name from a hypervisor, a repository file, a log line) made safe for a
 * terminal: C0 and C1 control characters and DEL, which could move the cursor, retitle the
 * window or rewrite what the screen shows (ESC [ … , ESC ] …), become visible escapes such as
 * "\x1b". Newlines and tabs stay unless `oneLine`. See docs/security.md.
 */
export function terminalSafe(text: string, opts: {oneLine?: boolean} = {}): string {
  const re = opts.oneLine ? /[\u0000-\u001f\u007f-\u009f]/g : /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
  return text.replace(re, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** terminalSafe() applied to every string in a JSON-like value (keys included); a new value. */
export function terminalSafeDeep<T>(value: T): T {
  if (typeof value === 'string') return terminalSafe(value) as T;
  if (Array.isArray(value)) return value.map((v) => terminalSafeDeep(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[terminalSafe(k)] = terminalSafeDeep(v);
    return out as T;
  }
  return value;
}

/** A UTC time as a compact stamp for ids and file names: 20261207T141500 (to the second). */
export function compactStamp(d: Date = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').slice(0, 15);
}
