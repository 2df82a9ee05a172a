/**
 * Pure formatters for the figures in reports: sizes, durations, ratios, rates, times, and
 * escaping for HTML. Both the HTML and the plain-text renderers use these, so a figure reads the
 * same in both parts. Sizes come from util/format (binary units, as libvirt and oVirt show disks).
 */

// Sizes, rates and ratios read the same in the console, the CLI and the mails: one implementation.
export {formatBytes, formatRate, formatRatio} from '../util/format.js';

/**
 * 754000 → "0:12:34"; over a day → "1d 2:03:04". Unlike util/format's "12m 34s", a clock
 * format lines up in the report's Duration column, and it is how Veeam's reports show it.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const total = Math.round(ms / 1000);
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const clock = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}

export function formatPercent(part: number, whole: number): string {
  if (!(whole > 0) || !Number.isFinite(part)) return '–';
  return `${Math.round((part / whole) * 100)}%`;
}

/** Options shared by the renderers: which time zone dates are shown in (default: the process's). */
export interface TimeOptions {
  timeZone?: string;
}

/** Building an Intl.DateTimeFormat costs far more than using one: one per time zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? '';
  let fmt = formatters.get(key);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      weekday: 'short',
    });
    formatters.set(key, fmt);
  }
  return fmt;
}

function parts(iso: string, timeZone: string | undefined): Record<string, string> | undefined {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return undefined;
  const out: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(date)) out[p.type] = p.value;
  return out;
}

/** "2026-11-23 19:31:07"; an unparsable or missing time → "–". */
export function formatDateTime(iso: string | undefined, opts: TimeOptions = {}): string {
  const p = iso === undefined ? undefined : parts(iso, opts.timeZone);
  if (!p) return '–';
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** "Mon 2026-11-23 19:31:07": the long form for the session line. */
export function formatLongDateTime(iso: string | undefined, opts: TimeOptions = {}): string {
  const p = iso === undefined ? undefined : parts(iso, opts.timeZone);
  if (!p) return '–';
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** "19:31:07" when `iso` falls on the same day as `sameDayAs`, else the full date and time. */
export function formatTimeOfDay(iso: string | undefined, sameDayAs: string | undefined, opts: TimeOptions = {}): string {
  const p = iso === undefined ? undefined : parts(iso, opts.timeZone);
  if (!p) return '–';
  const ref = sameDayAs === undefined ? undefined : parts(sameDayAs, opts.timeZone);
  if (ref && ref.year === p.year && ref.month === p.month && ref.day === p.day) {
    return `${p.hour}:${p.minute}:${p.second}`;
  }
  return formatDateTime(iso, opts);
}

const HTML_ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};

/** Escapes text for an HTML element body or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** Removes control characters (CR, LF, ESC, ...) from a user-supplied one-line string. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** Pads or cuts `text` to exactly `width` columns (cutting with "…"). */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const chars = [...text];
  if (chars.length > width) return chars.slice(0, Math.max(0, width - 1)).join('') + '…';
  const pad = ' '.repeat(width - chars.length);
  return align === 'left' ? text + pad : pad + text;
}

/**
 * Word-wraps `text` to `width` columns, every line prefixed with `indent`; words longer than a
 * line (paths, IDs) are broken hard so that no line exceeds the width.
 */
export function wrap(text: string, width: number, indent = ''): string[] {
  const room = Math.max(10, width - [...indent].length);
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (let word of paragraph.split(/\s+/).filter((w) => w.length > 0)) {
      while ([...word].length > room) {
        if (line) {
          lines.push(line);
          line = '';
        }
        const chars = [...word];
        lines.push(chars.slice(0, room).join(''));
        word = chars.slice(room).join('');
      }
      if (!line) line = word;
      else if ([...line].length + 1 + [...word].length <= room) line += ` ${word}`;
      else {
        lines.push(line);
        line = word;
      }
    }
    lines.push(line);
  }
  return lines.map((l) => (l ? indent + l : l));
}
