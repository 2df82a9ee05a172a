import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, rm, stat, writeFile} from 'node:fs/promises';
import {DatabaseSync} from 'node:sqlite';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {sessionTotals} from '../../src/daemon/figures.js';
import {History, HISTORY_DB, LEGACY_FILE, LEGACY_LOG_DIR} from '../../src/daemon/history.js';
import type {SessionRecord} from '../../src/api/session-model.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-history-'));
});
afterEach(async () => {
  await rm(dir, {recursive: true, force: true});
});

const session = (i: number, state: SessionRecord['state']): SessionRecord => ({
  id: `s${String(i).padStart(3, '0')}`,
  jobId: 'j',
  jobName: 'J',
  state,
  trigger: 'manual',
  attempt: 1,
  startedAt: '2026-01-01T00:00:00Z',
  repository: 'r',
  vms: [],
  log: [{time: '2026-01-01T00:00:00Z', severity: 'warning', code: 'x', message: `line of ${i}`}],
  totals: sessionTotals([], '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
});

describe('session history', () => {
  it('survives reopening, drops the oldest finished sessions with their logs, and is 0600', async () => {
    const h = await History.open(dir, () => 10);
    await h.save(session(0, 'running'));
    for (let i = 1; i <= 12; i++) await h.save(session(i, 'success'));
    // 13 sessions, cap 10: the three oldest finished ones go; the running one stays.
    expect(h.list().map((s) => s.id)).toEqual(['s000', 's004', 's005', 's006', 's007', 's008', 's009', 's010', 's011', 's012']);
    expect((await stat(join(dir, HISTORY_DB))).mode & 0o777).toBe(0o600);
    for (const f of await readdir(dir)) expect((await stat(join(dir, f))).mode & 0o077, f).toBe(0);
    h.close();
    const again = await History.open(dir, () => 10);
    expect((await again.get('s012'))!.log[0]!.message).toBe('line of 12');
    expect(again.list()[0]).not.toHaveProperty('log');
    expect(again.list().map((s) => s.id)).toEqual(h.list().map((s) => s.id));
    expect(await again.get('s001')).toBeUndefined();
    const raw = new DatabaseSync(join(dir, HISTORY_DB));
    expect(raw.prepare("SELECT count(*) AS n FROM log WHERE session = 's001'").get()).toEqual({n: 0});
    raw.close();
    again.close();
  });

  it('a running session grows its log line by line; only new lines are written, and a replaced summary keeps its place', async () => {
    const h = await History.open(dir, () => 100);
    const s = session(1, 'running');
    await h.save(s);
    await h.save(session(2, 'success'));
    for (let i = 0; i < 50; i++) {
      s.log.push({time: '2026-01-01T00:00:01Z', severity: 'info', code: 'vm', message: `vm ${i} done`});
      s.vms.push({id: `vm-${i}`, name: `vm ${i}`, state: 'success', attempts: 1});
      await h.save(s);
    }
    s.state = 'success';
    await h.save(s);
    expect(h.list().map((x) => [x.id, x.state])).toEqual([
      ['s001', 'success'],
      ['s002', 'success'],
    ]);
    const got = (await h.get('s001'))!;
    expect(got.log.map((l) => l.message)).toEqual(['line of 1', ...Array.from({length: 50}, (_, i) => `vm ${i} done`)]);
    expect(got.vms).toHaveLength(50);
    // A log that was rewritten shorter is stored as it is now.
    await h.save({...s, log: [s.log[0]!]});
    expect((await h.get('s001'))!.log).toHaveLength(1);
    h.close();
  });

  it('imports the JSON history of an older daemon on first start and sets its files aside', async () => {
    const old = [session(1, 'success'), session(2, 'failed'), session(3, 'running')];
    await writeFile(join(dir, LEGACY_FILE), JSON.stringify({version: 2, sessions: old.map(({log: _l, ...rest}) => rest)}), {mode: 0o600});
    await mkdir(join(dir, LEGACY_LOG_DIR));
    for (const s of old.slice(0, 2)) await writeFile(join(dir, LEGACY_LOG_DIR, `${s.id}.json`), JSON.stringify(s.log));
    await writeFile(join(dir, LEGACY_LOG_DIR, 's003.json'), '{"truncated'); // a log the old format's crash cut short
    const h = await History.open(dir, () => 100);
    expect(h.list().map((s) => [s.id, s.state])).toEqual([
      ['s001', 'success'],
      ['s002', 'failed'],
      ['s003', 'running'],
    ]);
    expect((await h.get('s002'))!.log[0]!.message).toBe('line of 2');
    expect((await h.get('s003'))!.log).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(expect.arrayContaining([`${LEGACY_FILE}.migrated`, `${LEGACY_LOG_DIR}.migrated`]));
    expect(existsSync(join(dir, LEGACY_FILE))).toBe(false);
    h.close();
    // Once: a second start finds nothing to import and keeps what it has.
    const again = await History.open(dir, () => 100);
    expect(again.list()).toHaveLength(3);
    again.close();
  });
});
