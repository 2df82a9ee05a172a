/**
 * A minimal RFC 822 / MIME reader for the tests: headers (unfolded, encoded words decoded),
 * and the leaf parts of a multipart message decoded from quoted-printable or base64. Enough to
 * check what nodemailer put on the wire; not a general mail parser.
 */

export interface ParsedPart {
  headers: Map<string, string>;
  contentType: string;
  body: string;
  /** The decoded bytes (an image's, say); body is them as UTF-8. */
  bytes: Buffer;
}

export interface ParsedMail {
  headers: Map<string, string>;
  subject: string;
  parts: ParsedPart[];
}

function splitHeaders(raw: string): {headers: Map<string, string>; body: string} {
  const norm = raw.replace(/\r\n/g, '\n');
  const end = norm.indexOf('\n\n');
  const head = end < 0 ? norm : norm.slice(0, end);
  const body = end < 0 ? '' : norm.slice(end + 2);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return {headers, body};
}

export function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
    );
}

function decodeBody(body: string, encoding: string | undefined): Buffer {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64');
    case 'quoted-printable': {
      const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1');
    }
    default:
      return Buffer.from(body, 'utf8');
  }
}

function leafParts(headers: Map<string, string>, body: string): ParsedPart[] {
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (type.toLowerCase().startsWith('multipart/') && boundary) {
    const sections = body.split(`--${boundary}`).slice(1);
    const out: ParsedPart[] = [];
    for (const section of sections) {
      if (section.startsWith('--')) break;
      const inner = splitHeaders(section.replace(/^\n/, ''));
      out.push(...leafParts(inner.headers, inner.body.replace(/\n$/, '')));
    }
    return out;
  }
  const bytes = decodeBody(body, headers.get('content-transfer-encoding'));
  return [{headers, contentType: type.split(';')[0].trim().toLowerCase(), body: bytes.toString('utf8'), bytes}];
}

export function parseMail(raw: string): ParsedMail {
  const {headers, body} = splitHeaders(raw);
  return {headers, subject: decodeWords(headers.get('subject') ?? ''), parts: leafParts(headers, body)};
}

export function partOf(mail: ParsedMail, contentType: string): string | undefined {
  return mail.parts.find((p) => p.contentType === contentType)?.body;
}
