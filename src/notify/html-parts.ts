/**
 * The pieces every HTML mail shares: the page shell (a centred 880-pixel card in table layout),
 * the header bar coloured by result, the footer, and the palette. Inline CSS only: many mail
 * clients drop <style> blocks and never load external resources.
 */
import {escapeHtml as esc} from './format.js';
import type {SessionResult, VmStatus} from './model.js';

export const FONT = "font-family:'Segoe UI',Helvetica,Arial,sans-serif";
export const MUTED = '#5f6b7a';
export const BORDER = '#d9dee5';

/** Header bar: background, text and secondary text colour per result. */
export const HEADER: Record<SessionResult, {bg: string; fg: string; sub: string}> = {
  success: {bg: '#2e7d32', fg: '#ffffff', sub: '#d7f0d8'},
  warning: {bg: '#f2a900', fg: '#2b1d00', sub: '#4a3500'},
  failed: {bg: '#c62828', fg: '#ffffff', sub: '#ffdede'},
};

/** Text colour of a status in the tables. */
export const STATUS_COLOUR: Record<VmStatus, string> = {success: '#2e7d32', warning: '#b36b00', failed: '#c62828'};

/** The whole document around `rows` (each a <tr> of the card). */
export function documentShell(title: string, rows: string[]): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title></head>
<body style="margin:0;padding:0;background:#eef1f5">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" bgcolor="#eef1f5" style="background:#eef1f5"><tr><td align="center" style="padding:16px 8px">
<table role="presentation" width="880" cellpadding="0" cellspacing="0" style="width:100%;max-width:880px;background:#ffffff;border:1px solid ${BORDER};${FONT};font-size:13px;color:#1f2937">
${rows.filter((r) => r).join('\n')}
</table></td></tr></table>
</body></html>
`;
}

/**
 * The coloured bar at the top: a small caption, a title and a subtitle on the left, a big word
 * (the result) and a line under it on the right. All arguments are plain text (escaped here).
 */
export function headerBar(result: SessionResult, p: {caption: string; title: string; subtitle?: string; right: string; rightSub: string}): string {
  const h = HEADER[result];
  return `<tr><td bgcolor="${h.bg}" style="background:${h.bg};color:${h.fg};padding:16px 20px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr>
<td style="color:${h.fg};${FONT}"><div style="font-size:12px;color:${h.sub};text-transform:uppercase;letter-spacing:1px">${esc(p.caption)}</div>
<div style="font-size:22px;font-weight:bold;margin-top:2px">${esc(p.title)}</div>${
    p.subtitle ? `<div style="font-size:13px;color:${h.sub};margin-top:2px">${esc(p.subtitle)}</div>` : ''
  }</td>
<td align="right" valign="top" style="color:${h.fg};${FONT};white-space:nowrap"><div style="font-size:22px;font-weight:bold">${esc(p.right)}</div>
<div style="font-size:13px;color:${h.sub};margin-top:2px">${esc(p.rightSub)}</div></td>
</tr></table></td></tr>`;
}

/** A section heading and its content, as one card row. */
export function section(heading: string, content: string): string {
  return `<tr><td style="padding:14px 20px 4px 20px"><div style="font-size:15px;font-weight:bold;margin-bottom:6px">${esc(heading)}</div>
${content}</td></tr>`;
}

/** The foot of every mail: which appliance sent it (HTML already escaped by the caller). */
export function footer(html: string): string {
  return `<tr><td style="padding:14px 20px;border-top:1px solid ${BORDER};color:${MUTED};font-size:11px">${html}</td></tr>`;
}

/** A table header cell. */
export function th(label: string, right = false): string {
  return `<th align="${right ? 'right' : 'left'}" style="border-bottom:2px solid ${BORDER};color:${MUTED};font-weight:600;white-space:nowrap">${esc(label)}</th>`;
}

/** Joins number and unit with a no-break space (one byte more than a space, unlike &nbsp;). */
export function nb(figure: string): string {
  return figure.replace(' ', '\u00a0');
}

/**
 * A used/free bar for a repository, as two table cells (mail clients ignore CSS widths on divs
 * more often than on cells). Red when low on space.
 */
export function spaceBar(freeBytes: number, totalBytes: number, low: boolean, widthPx = 200): string {
  const used = totalBytes > 0 ? Math.min(1, Math.max(0, 1 - freeBytes / totalBytes)) : 0;
  const usedPx = Math.round(used * widthPx);
  const colour = low ? STATUS_COLOUR.failed : '#5b7db1';
  const cells = [
    usedPx > 0 ? `<td width="${usedPx}" bgcolor="${colour}" style="background:${colour};height:8px;font-size:1px;line-height:1px">&nbsp;</td>` : '',
    usedPx < widthPx ? `<td width="${widthPx - usedPx}" bgcolor="#e3e8ef" style="background:#e3e8ef;height:8px;font-size:1px;line-height:1px">&nbsp;</td>` : '',
  ];
  return `<table role="presentation" width="${widthPx}" cellpadding="0" cellspacing="0" style="width:${widthPx}px"><tr>${cells.join('')}</tr></table>`;
}
