/**
 * A copy job's session (src/daemon/copy-session.ts) tries failed VMs again as a backup job's
 * does (the job's retries: count and wait): a target that refuses the first attempt (a full
 * disk, a lock held elsewhere) gets the point on the next one, the row says how many attempts it
 * took and keeps no stale reason; a VM that keeps failing is tried count + 1 times and stays
 * failed with its reason. Every byte read goes through the job's bandwidth limit; a copy that
 * verify finds damaged at the target is removed there (so that the next session copies it
 * again). Repositories in memory (the copy itself is tested on disks and S3 elsewhere); the
 * session code is the daemon's.
 */
import {describe, expect, it} from 'vitest';
import {sessionTotals} from '../../src/daemon/figures.js';
import {runCopySession} from '../../src/daemon/copy-session.js';
import {copySourceOf, jobSchema} from '../../src/config/schema.js';
import type {LogLine, SessionRecord} from '../../src/api/session-model.js';
import {createRepositoryOn, MemoryBackend, type Repository} from '../../src/repository/index.js';
import {backupImage, textLike} from '../repository/helpers.js';

async function bed(failFirst: number, o: {verify?: boolean; damage?: boolean} = {}) {
  const source = await createRepositoryOn(new MemoryBackend(), {chunkSize: 64 * 1024});
  const target = await createRepositoryOn(new MemoryBackend(), {chunkSize: 64 * 1024});
  const point = await backupImage(source, textLike(256 * 1024, 7), {vmId: 'vm-1', vmName: 'web 01'});
  let refusals = failFirst;
  const begin = target.beginRestorePoint.bind(target);
  target.beginRestorePoint = (o) => (refusals-- > 0 ? Promise.reject(new Error('No space left on the target (simulated)')) : begin(o));
  if (o.damage) {
    // Verify at the target finds a chunk of the new copy damaged (bit rot between write and read back).
    const verify = target.verify.bind(target);
    target.verify = (opts) => {
      const backend = target.backend as MemoryBackend;
      const key = [...backend.objects.keys()].find((k) => k.startsWith('chunks/'))!;
      backend.objects.get(key)!.data = Buffer.from('damaged');
      return verify(opts);
    };
  }
  const job = jobSchema.parse({id: 'c', name: 'Copy', source: {repository: 'src', verify: o.verify ?? false}, repository: 'dst', retries: {count: o.damage ? 0 : 2, waitMinutes: 3}});
  const startedAt = new Date().toISOString();
  const record: SessionRecord = {id: 's1', jobId: 'c', jobName: 'Copy', state: 'running', trigger: 'manual', attempt: 1, startedAt, repository: 'dst', vms: [], log: [], totals: sessionTotals([], startedAt, startedAt)};
  const waits: number[] = [];
  const throttled: number[] = [];
  const deps = {
    repository: async (id: string): Promise<Repository> => (id === 'src' ? source : target),
    log: (r: SessionRecord, line: Omit<LogLine, 'time'>) => void r.log.push({...line, time: new Date().toISOString()}),
    changed: async () => undefined,
    now: () => Date.now(),
    sleep: async (ms: number) => void waits.push(ms),
  };
  await runCopySession(deps, record, job, copySourceOf(job)!, {signal: new AbortController().signal, throttle: async (n) => void throttled.push(n)});
  return {record, waits, target, point, throttled};
}

describe('copy job sessions', () => {
  it('a VM that failed is copied on the next attempt, after the wait', async () => {
    const {record, waits, target, point} = await bed(1);
    expect(record.vms).toHaveLength(1);
    expect(record.vms[0]).toMatchObject({id: 'vm-1', state: 'success', attempts: 2});
    expect(record.vms[0]!.reason).toBeUndefined();
    expect(record.attempt).toBe(2);
    expect(waits).toEqual([3 * 60_000]);
    expect(record.log.map((l) => l.code)).toEqual(['vm-copy-failed', 'retry-wait', 'copied']);
    expect(record.log[1]!.message).toBe('1 VM(s) failed; retry 1 of 2 in 3 minute(s).');
    expect((await target.listRestorePoints()).map((p) => p.id)).toEqual([point.id]);
  });

  it('a VM that keeps failing is tried count + 1 times and stays failed with its reason', async () => {
    const {record, waits, target} = await bed(99);
    expect(record.vms[0]).toMatchObject({state: 'failed', attempts: 3, reason: 'No space left on the target (simulated)'});
    expect(record.attempt).toBe(3);
    expect(waits).toEqual([3 * 60_000, 3 * 60_000]);
    expect(await target.listRestorePoints()).toEqual([]);
  });

  it('every byte read from the source goes through the job\'s bandwidth limit', async () => {
    const {record, throttled} = await bed(0);
    expect(record.vms[0]!.state).toBe('success');
    expect(throttled.reduce((a, b) => a + b, 0)).toBe(record.vms[0]!.figures!.readBytes);
    expect(record.vms[0]!.figures!.readBytes).toBe(256 * 1024);
  });

  it('a copy that verify finds damaged at the target is removed there, so the next session copies it again', async () => {
    const {record, target} = await bed(0, {verify: true, damage: true});
    expect(record.vms[0]!.state).toBe('failed');
    expect(record.vms[0]!.reason).toMatch(/The copies read back from the target show 1 damaged or missing chunk\(s\)\. They were removed from the target; the next session copies them again\./);
    expect(record.log.map((l) => l.code)).toContain('copy-verify-failed');
    expect(await target.listRestorePoints()).toEqual([]);
  });
});
