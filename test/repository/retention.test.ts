import {afterEach, describe, expect, it} from 'vitest';
import {join} from 'node:path';
import {createRepository, periodKey, planRetention, type RestorePointSummary} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {backupImage, pseudoRandom, scratch} from './helpers.js';

function point(id: string, time: string, extra: Partial<RestorePointSummary> = {}): RestorePointSummary {
  return {id, vmId: 'vm', vmName: 'vm', platform: 'libvirt', time, type: 'full', protected: false, disks: [], logicalSize: 0, storedSize: 0, ...extra};
}

/** One point a day at 22:00 UTC from 2026-01-01 for `days` days. */
function daily(days: number): RestorePointSummary[] {
  return Array.from({length: days}, (_, i) => point(`p${String(i).padStart(3, '0')}`, new Date(Date.UTC(2026, 0, 1 + i, 22)).toISOString()));
}

const kept = (ds: ReturnType<typeof planRetention>) => ds.filter((d) => d.keep).map((d) => d.id).sort();

describe('retention planning', () => {
  const now = new Date('2026-04-11T00:00:00Z');

  it('keep-last keeps the newest N', () => {
    const plan = planRetention(daily(10), {keepLast: 3}, now);
    expect(kept(plan)).toEqual(['p007', 'p008', 'p009']);
    expect(plan.find((d) => d.id === 'p009')!.reasons).toEqual(['keep-last']);
  });

  it('keep-within keeps everything younger than D days', () => {
    const pts = daily(100); // last one 2026-04-10T22:00
    expect(kept(planRetention(pts, {keepWithinDays: 3}, now))).toEqual(['p097', 'p098', 'p099']);
  });

  it('keeps the newest point of each of the N latest days, weeks, months and years', () => {
    const pts = [
      point('a', '2026-03-01T01:00:00Z'),
      point('b', '2026-03-01T23:00:00Z'),
      point('c', '2026-03-02T10:00:00Z'),
      point('d', '2026-03-09T10:00:00Z'),
      point('e', '2026-02-10T10:00:00Z'),
      point('f', '2025-12-31T10:00:00Z'),
      point('g', '2024-06-30T10:00:00Z'),
    ];
    expect(kept(planRetention(pts, {keepDaily: 2}, now))).toEqual(['c', 'd']);
    // ISO weeks: 03-02 and 03-09 are Mondays; 03-01 is the Sunday of the week before.
    expect(kept(planRetention(pts, {keepWeekly: 3}, now))).toEqual(['b', 'c', 'd']);
    expect(kept(planRetention(pts, {keepMonthly: 3}, now))).toEqual(['d', 'e', 'f']);
    expect(kept(planRetention(pts, {keepYearly: 5}, now))).toEqual(['d', 'f', 'g']);
    const gfs = planRetention(pts, {keepLast: 1, keepDaily: 1, keepMonthly: 2}, now);
    expect(kept(gfs)).toEqual(['d', 'e']);
    expect(gfs.find((x) => x.id === 'd')!.reasons).toEqual(['keep-last', 'daily', 'monthly']);
  });

  it('protected points are always kept and not counted', () => {
    const pts = daily(5);
    pts[4]!.protected = true;
    pts[0]!.protected = true;
    const plan = planRetention(pts, {keepLast: 2}, now);
    expect(kept(plan)).toEqual(['p000', 'p002', 'p003', 'p004']);
    expect(plan.find((d) => d.id === 'p000')!.reasons).toEqual(['protected']);
  });

  it('an empty policy keeps everything', () => {
    expect(planRetention(daily(4), {}, now).every((d) => d.keep && d.reasons[0] === 'no-policy')).toBe(true);
  });

  it('applies per VM', () => {
    const pts = [...daily(3), ...daily(3).map((p) => ({...p, id: `x${p.id}`, vmId: 'other'}))];
    expect(kept(planRetention(pts, {keepLast: 1}, now))).toEqual(['p002', 'xp002']);
  });

  it('computes ISO weeks across year ends', () => {
    expect(periodKey(new Date('2026-01-01T00:00:00Z'), 'weekly')).toBe('2026-W1');
    expect(periodKey(new Date('2027-01-01T00:00:00Z'), 'weekly')).toBe('2026-W53');
    expect(periodKey(new Date('2024-12-30T00:00:00Z'), 'weekly')).toBe('2025-W1');
  });
});

describe('prune', () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => cleanup?.());

  it('removes manifests and indexes only, honours dry-run, protection and the VM filter', async () => {
    const s = await scratch();
    cleanup = s.cleanup;
    const repo = await createRepository(join(s.dir, 'r'), {chunkSize: 64 * 1024});
    const a = await backupImage(repo, pseudoRandom(65536, 1));
    const b = await backupImage(repo, pseudoRandom(65536, 2), {protected: true});
    const c = await backupImage(repo, pseudoRandom(65536, 3));
    const d = await backupImage(repo, pseudoRandom(65536, 4));
    const other = await backupImage(repo, pseudoRandom(65536, 5), {vmId: 'vm-2'});
    const dry = await repo.prune({keepLast: 1}, {dryRun: true, vmId: 'vm-1'});
    expect(dry.dryRun).toBe(true);
    expect(dry.removed.map((x) => x.id).sort()).toEqual([a.id, c.id].sort());
    expect((await repo.listRestorePoints()).length).toBe(5);
    const chunksBefore = (await repo.stats()).chunks;
    const res = await repo.prune({keepLast: 1}, {vmId: 'vm-1'});
    expect(res.removed.map((x) => x.id).sort()).toEqual([a.id, c.id].sort());
    expect(res.kept.map((x) => [x.id, x.reasons])).toEqual([
      [d.id, ['keep-last']],
      [b.id, ['protected']],
    ]);
    expect((await repo.listRestorePoints()).map((x) => x.id)).toEqual([b.id, d.id, other.id]);
    expect((await repo.stats()).chunks).toBe(chunksBefore);
    await repo.setProtected(b.id, false);
    const res2 = await repo.prune({keepLast: 1}, {vmId: 'vm-1'});
    expect(res2.removed.map((x) => x.id)).toEqual([b.id]);
    await expect(repo.prune({keepLast: -1})).rejects.toMatchObject({exitCode: ExitCode.invalidInput});
    await expect(repo.setProtected('no-such-point', true)).rejects.toMatchObject({exitCode: ExitCode.notFound});
  });
});
