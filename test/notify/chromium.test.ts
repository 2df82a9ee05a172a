/**
 * Renders the report HTML in headless Chromium (Debian's `chromium` package): a screenshot for
 * people to look at (test-artifacts/email-report.png) and the rendered DOM, checked for one
 * table row per VM and for the absence of injected elements.
 */
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {inflateSync} from 'node:zlib';
import {execa} from 'execa';
import {beforeAll, describe, expect, it} from 'vitest';
import {renderDailySummary} from '../../src/notify/daily-summary.js';
import {renderSessionReport} from '../../src/notify/render.js';
import {largeReport, sampleReport} from './fixtures.js';

const ARTIFACTS = resolve('test-artifacts');

async function chromium(args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'vmbackup-chromium-'));
  try {
    const {stdout} = await execa(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      {timeout: 90_000},
    );
    return stdout;
  } finally {
    await rm(profile, {recursive: true, force: true});
  }
}

async function screenshot(html: string, name: string): Promise<Buffer> {
  const page = join(ARTIFACTS, `${name}.html`);
  const png = join(ARTIFACTS, `${name}.png`);
  await writeFile(page, html);
  await rm(png, {force: true});
  await chromium([`--screenshot=${png}`, '--window-size=900,1400', `file://${page}`]);
  return readFile(png);
}

/** Width, height and the number of distinct pixel rows of a PNG (8-bit RGB/RGBA, as Chromium writes). */
function pngFacts(png: Buffer): {width: number; height: number; distinctRows: number} {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 1;
    } else if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  // Rows are compared as filtered bytes: identical rows (a blank margin) filter identically.
  const raw = inflateSync(Buffer.concat(idat));
  const stride = 1 + width * channels;
  const rows = new Set<string>();
  for (let y = 0; y < height; y++) rows.add(raw.subarray(y * stride, (y + 1) * stride).toString('base64'));
  return {width, height, distinctRows: rows.size};
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, {recursive: true});
  // Fails with "command not found" when Chromium is missing: test/packages.txt lists it.
  await execa('chromium', ['--version']);
});

describe('the report in a real browser engine', () => {
  it('renders a non-trivial screenshot (test-artifacts/email-report.png)', async () => {
    const mail = renderSessionReport(sampleReport(), {timeZone: 'UTC'});
    expect(mail.html).toContain('<table id="vms"');
    const png = await screenshot(mail.html, 'email-report');
    const facts = pngFacts(png);
    expect([facts.width, facts.height]).toEqual([900, 1400]);
    expect(png.length).toBeGreaterThan(20_000);
    // Text, table rules and the header bar make hundreds of different rows; a blank page has ~1.
    expect(facts.distinctRows).toBeGreaterThan(200);
  });

  it('reads on a phone (390 px) as at 900 px: nothing wider than the screen, what to do before the details', async () => {
    const mail = renderSessionReport(sampleReport(), {timeZone: 'UTC'});
    // What needs doing comes right after the result, before the figures and the VM list.
    expect(mail.html.indexOf('What to do')).toBeLessThan(mail.html.indexOf('Total size'));
    expect(mail.html.indexOf('Total size')).toBeLessThan(mail.html.indexOf('<table id="vms"'));
    for (const width of [390, 900]) {
      // Chromium's window is at least 500 px wide, so the mail is laid out in a frame of the
      // phone's width; the test page (not the mail, which has no script) measures it there.
      const page = join(ARTIFACTS, `email-report-${width}.html`);
      const frame = `<iframe id="m" style="width:${width}px;height:1400px;border:0" srcdoc="${mail.html.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}" onload="document.body.setAttribute('data-scroll-width', String(this.contentDocument.documentElement.scrollWidth))"></iframe>`;
      await writeFile(page, `<!DOCTYPE html><html><body style="margin:0">${frame}</body></html>`);
      const dom = await chromium(['--window-size=1000,1500', '--dump-dom', `file://${page}`]);
      const scrollWidth = Number(/data-scroll-width="(\d+)"/.exec(dom)?.[1]);
      expect(scrollWidth, `at ${width} px`).toBeGreaterThan(0);
      expect(scrollWidth, `at ${width} px`).toBeLessThanOrEqual(width);
      if (width === 390) await chromium([`--screenshot=${join(ARTIFACTS, 'email-report-390.png')}`, '--window-size=500,1500', `file://${page}`]);
    }
  });

  it('has one rendered row per VM in the DOM', async () => {
    const mail = renderSessionReport(largeReport(25));
    const page = join(ARTIFACTS, 'email-report-25.html');
    await writeFile(page, mail.html);
    const dom = await chromium(['--dump-dom', `file://${page}`]);
    const tbody = /<table id="vms"[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)?.[1] ?? '';
    const rows = tbody.match(/<tr class="vm"/g) ?? [];
    expect(rows).toHaveLength(25);
    expect(dom).toContain('production-application-server-024.example.test');
  });

  it('does not run or create elements from user text', async () => {
    const evil = sampleReport({jobName: '<script>document.title="pwned"</script>'});
    evil.vms[0].name = '<img src=x onerror="document.title=\'pwned\'">';
    const page = join(ARTIFACTS, 'email-report-escaped.html');
    await writeFile(page, renderSessionReport(evil).html);
    const dom = await chromium(['--dump-dom', `file://${page}`]);
    expect(dom).not.toMatch(/<script|<img/i);
    expect(dom).not.toContain('pwned</title>');
    expect(dom).toContain('&lt;script&gt;');
  });

  it('renders the daily summary too (test-artifacts/daily-summary.png)', async () => {
    const TiB = 1024 ** 4;
    const mail = renderDailySummary(
      {
        hostname: 'vmbackup-01.example.test',
        generatedAt: '2026-11-23T08:00:00Z',
        jobs: [
          {name: 'Nightly production', lastResult: 'success', lastRun: '2026-11-23T01:00:00Z', nextRun: '2026-11-24T01:00:00Z'},
          {name: 'Hourly databases', lastResult: 'warning', lastRun: '2026-11-23T07:00:00Z', nextRun: '2026-11-23T09:00:00Z'},
        ],
        repositories: [{name: 'local-1', freeBytes: 1.2 * TiB, totalBytes: 4 * TiB}],
      },
      {timeZone: 'UTC'},
    );
    const facts = pngFacts(await screenshot(mail.html, 'daily-summary'));
    expect(facts.distinctRows).toBeGreaterThan(50);
  });
});
