/**
 * A copy job's session tries failed VMs again as a backup job's does (the job's retries: count
 * and wait): a target that refuses the first attempt (a full disk, a lock held elsewhere) gets the
 * point on the next one, the row says how many attempts it took and keeps no stale reason; a VM
 * that keeps failing is tried count + 1 times and stays failed with its reason. Repositories in
 * memory (the copy itself is tested on disks and S3 elsewhere); the session code is the daemon's.
 */
import {describe, expect, it} from 'vitest';
import {sessionTotals} from '../../src/daemon/figures.js';
import {runCopySession} from '../../src/daemon/copy-session.js';
import {copySourceOf, jobSchema} from '../../src/config/schema.js';
import type {LogLine, SessionRecord} from '../../src/api/session-model.js';
import {createRepositoryOn, MemoryBackend, type Repository} from '../../src/repository/index.js';
import {backupImage, textLike} from '../repository/helpers.js';

async function bed(failFirst: number) {
  const source = await createRepositoryOn(new MemoryBackend(), {chunkSize: 64 * 1024});
  const target = await createRepositoryOn(new MemoryBackend(), {chunkSize: 64 * 1024});
  const point = await backupImage(source, textLike(256 * 1024, 7), {vmId: 'vm-1', vmName: 'web 01'});
  let refusals = failFirst;
  const begin = target.beginRestorePoint.bind(target);
  target.beginRestorePoint = (o) => (refusals-- > 0 ? Promise.reject(new Error('No space left on the target (simulated)')) : begin(o));
  const job = jobSchema.parse({id: 'c', name: 'Copy', source: {repository: 'src', verify: false}, repository: 'dst', retries: {count: 2, waitMinutes: 3}});
  const startedAt = new Date().toISOString();
  const record: SessionRecord = {id: 's1', jobId: 'c', jobName: 'Copy', state: 'running', trigger: 'manual', attempt: 1, startedAt, repository: 'dst', vms: [], log: [], totals: sessionTotals([], startedAt, startedAt)};
  const waits: number[] = [];
  const deps = {
    repository: async (id: string): Promise<Repository> => (id === 'src' ? source : target),
    log: (r: SessionRecord, line: Omit<LogLine, 'time'>) => void r.log.push({...line, time: new Date().toISOString()}),
    changed: async () => undefined,
    now: () => Date.now(),
    sleep: async (ms: number) => void waits.push(ms),
  };
  await runCopySession(deps, record, job, copySourceOf(job)!, {signal: new AbortController().signal});
  return {record, waits, target, point};
}

describe('copy job retries', () => {
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
});
