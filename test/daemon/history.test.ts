import {mkdtemp, readdir, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {sessionTotals} from '../../src/daemon/figures.js';
import {History} from '../../src/daemon/history.js';
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
  it('keeps logs in one file per session, survives reopening, drops the oldest finished sessions with their logs', async () => {
    const h = await History.open(dir, () => 10);
    await h.save(session(0, 'running'));
    for (let i = 1; i <= 12; i++) await h.save(session(i, 'success'));
    // 13 sessions, cap 10: the three oldest finished ones go; the running one stays.
    expect(h.list().map((s) => s.id)).toEqual(['s000', 's004', 's005', 's006', 's007', 's008', 's009', 's010', 's011', 's012']);
    expect((await readdir(join(dir, 'sessions'))).sort()).toEqual(h.list().map((s) => `${s.id}.json`).sort());
    expect((await stat(join(dir, 'sessions.json'))).mode & 0o777).toBe(0o600);
    const again = await History.open(dir, () => 10);
    expect((await again.get('s012'))!.log[0]!.message).toBe('line of 12');
    expect(again.list()[0]).not.toHaveProperty('log');
    expect(await again.get('s001')).toBeUndefined();
  });
});
