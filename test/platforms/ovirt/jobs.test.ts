/**
 * Engine jobs and locks (simulator: engine-api.ts jobs, state.ts engineLocks): a new disk reads
 * `ok` while AddDisk's command still holds its lock, so a restore waits for the job of its
 * request's correlation_id before the upload; a command refused with "try again later" is retried.
 */
import {randomUUID} from 'node:crypto';
import {afterEach, describe, expect, it} from 'vitest';
import type {DiskSink} from '../../../src/platforms/types.js';
import {startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed | undefined;
afterEach(async () => {
  await stopBed(bed);
  bed = undefined;
});

async function fillZeros(sink: DiskSink): Promise<void> {
  await sink.write(0, Buffer.alloc(65536, 1));
  await sink.flush();
}

describe('oVirt engine jobs and locks', () => {
  it('a restore sends a correlation_id with every changing request and waits for the disk job before its upload', async () => {
    bed = await startBed();
    const [os] = bed.sim.disksOf('web01');
    const source = {vmId: bed.sim.vm('web01').id, vmName: 'web01', disks: [{key: os!.id, name: 'web01_os', size: os!.image.size, format: 'qcow2', details: {engineFormat: 'cow'}}]};
    const target = bed.sim.vm('empty-vm');
    const r = await bed.platform.openRestore(source, {mode: 'disks-to-vm', vmId: target.id}, {log: bed.log});
    for (const s of r.sinks) await fillZeros(s);
    await r.finish();
    const changing = bed.sim.apiLog.filter((l) => l.method !== 'GET' && l.path.startsWith('/ovirt-engine/api'));
    expect(changing.length).toBeGreaterThan(3);
    for (const l of changing) expect(l.correlationId, `${l.method} ${l.path}`).toMatch(/^[0-9a-f-]{36}$/);
    // Never refused for a held lock: the upload started after AddDisk's job had ended.
    expect(bed.sim.apiLog.filter((l) => l.status === 409)).toHaveLength(0);
    const addDisk = bed.sim.apiLog.findIndex((l) => l.method === 'POST' && l.path === '/ovirt-engine/api/disks');
    const cid = bed.sim.apiLog[addDisk]!.correlationId!;
    const jobPoll = bed.sim.apiLog.findIndex((l) => l.path.includes('/jobs') && l.path.includes(cid));
    const transfer = bed.sim.apiLog.findIndex((l) => l.method === 'POST' && l.path === '/ovirt-engine/api/imagetransfers');
    expect(jobPoll).toBeGreaterThan(addDisk);
    expect(transfer).toBeGreaterThan(jobPoll);
    expect(bed.sim.state.jobs.find((j) => j.correlationId === cid)!.status).toBe('finished');
    expect(bed.sim.vm('empty-vm').attachments).toHaveLength(1);
  });

  it('a command refused because another holds the lock ("Please try again later") is retried until the lock goes', async () => {
    bed = await startBed();
    const [os] = bed.sim.disksOf('db 01 \'quoted\'; ünï');
    // Another command (an administrator's move, say) holds the disk's engine lock for a while.
    const job = {id: randomUUID(), description: 'Moving disk', status: 'started' as const, start: Date.now()};
    bed.sim.state.jobs.push(job);
    bed.sim.state.engineLocks.set(os!.id, job);
    setTimeout(() => bed!.sim.state.endJob(job), 300);
    const created = await bed.platform.client.post('/imagetransfers', {disk: {id: os!.id}, direction: 'download', format: 'raw'});
    expect(created.id).toBeTruthy();
    const attempts = bed.sim.apiLog.filter((l) => l.method === 'POST' && l.path === '/ovirt-engine/api/imagetransfers');
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.slice(0, -1).every((l) => l.status === 409)).toBe(true);
    expect(attempts.at(-1)!.status).toBe(201);
  });

  it('a lock that is never released ends in a clear error after the retry time', async () => {
    bed = await startBed({}, {phaseTimeoutMs: 400});
    const [os] = bed.sim.disksOf('db 01 \'quoted\'; ünï');
    const job = {id: randomUUID(), description: 'Moving disk', status: 'started' as const, start: Date.now()};
    bed.sim.state.engineLocks.set(os!.id, job);
    await expect(bed.platform.client.post('/imagetransfers', {disk: {id: os!.id}, direction: 'download', format: 'raw'}))
      .rejects.toThrow(/HTTP 409.*Related operation is currently in progress/);
  });
});
