/** Pure parts of the daemon: VM selection, the resource scheduler, VM locks, the token bucket, figures. */
import {describe, expect, it} from 'vitest';
import {jobSchema, vmSourceSchema} from '../../src/config/schema.js';
import {bottleneckOf, sessionTotals} from '../../src/daemon/figures.js';
import {selectVms} from '../../src/daemon/selection.js';
import {tokenBucket} from '../../src/daemon/throttle.js';
import {VmLocks} from '../../src/daemon/vm-locks.js';
import {ResourceScheduler} from '../../src/daemon/workers.js';
import type {InventoryVm} from '../../src/platforms/types.js';

const vm = (id: string, host: string, cluster: string, tags: string[] = []): InventoryVm => ({id, name: `vm-${id}`, state: 'running', host, cluster, tags, disks: [{key: 'vda', name: 'vda', format: 'qcow2', size: 1, trackable: true}, {key: 'vdb', name: 'vdb', format: 'qcow2', size: 1, trackable: true}]});
const inventory = [vm('1', 'h1', 'c1', ['prod']), vm('2', 'h2', 'c1'), vm('3', 'h3', 'c2', ['prod']), vm('4', 'h3', 'c2')];
const source = (s: Record<string, unknown>) => vmSourceSchema.parse(jobSchema.parse({id: 'j', name: 'J', repository: 'r', source: {connection: 'k', ...s}}).source);

describe('VM selection', () => {
  it('by id, cluster, host and tag, minus exclusions, without duplicates', () => {
    expect(selectVms(source({vms: [{id: '2', disks: ['vdb']}], clusters: ['c2'], exclude: ['4']}), inventory).vms).toEqual([
      {id: '2', name: 'vm-2', host: 'h2', cluster: 'c1', disks: ['vdb'], diskCount: 1},
      {id: '3', name: 'vm-3', host: 'h3', cluster: 'c2', disks: undefined, diskCount: 2},
    ]);
    expect(selectVms(source({tags: ['prod'], hosts: ['h1']}), inventory).vms.map((v) => v.id)).toEqual(['1', '3']);
  });
  it('reports picked VMs that are gone', () => {
    expect(selectVms(source({vms: [{id: 'gone', name: 'old'}, {id: '1'}]}), inventory)).toMatchObject({vms: [{id: '1'}], missing: [{id: 'gone', name: 'old'}]});
  });
});

describe('resource scheduler', () => {
  const workers = [
    {id: 'appliance', name: 'appliance', placement: {kind: 'appliance' as const}, slots: 1},
    {id: 'near-h1', name: 'near-h1', placement: {kind: 'host' as const, connection: 'k', host: 'h1'}, slots: 2},
    {id: 'c2', name: 'c2', placement: {kind: 'cluster' as const, connection: 'k', cluster: 'c2'}, slots: 1},
  ];
  it('prefers the same host, then the same cluster, then any; queues the rest in order', async () => {
    const s = new ResourceScheduler(workers);
    const g1 = await s.acquire({connection: 'k', host: 'h1', cluster: 'c1', want: 2});
    expect(g1).toMatchObject({worker: 'near-h1', slots: 2});
    const g2 = await s.acquire({connection: 'k', host: 'h3', cluster: 'c2', want: 2});
    expect(g2).toMatchObject({worker: 'c2', slots: 1});
    const g3 = await s.acquire({connection: 'k', host: 'h2', cluster: 'c1', want: 1});
    expect(g3.worker).toBe('appliance');
    const order: string[] = [];
    const w4 = s.acquire({connection: 'k', host: 'h1', cluster: 'c1', want: 1}).then((g) => (order.push('h1'), g));
    const w5 = s.acquire({connection: 'k', host: 'h9', cluster: 'c9', want: 1}).then((g) => (order.push('h9'), g));
    expect(s.waiting).toBe(2);
    g3.release();
    g3.release(); // idempotent
    // The freed appliance slot goes to the first waiter ("any" placement fits both).
    expect((await w4).worker).toBe('appliance');
    expect(order).toEqual(['h1']);
    expect(s.status().find((w) => w.id === 'appliance')!.used).toBe(1);
    g1.release();
    expect((await w5).worker).toBe('near-h1');
    expect(order).toEqual(['h1', 'h9']);
  });
  it('shares a worker fairly between requests that arrive together', async () => {
    const s = new ResourceScheduler([{id: 'appliance', name: 'appliance', placement: {kind: 'appliance'}, slots: 2}]);
    const [a, b] = await Promise.all([s.acquire({connection: 'k', want: 2}), s.acquire({connection: 'k', want: 2})]);
    expect([a.slots, b.slots]).toEqual([1, 1]);
    a.release();
    b.release();
    // Alone, a VM gets one slot per disk.
    expect((await s.acquire({connection: 'k', want: 2})).slots).toBe(2);
  });

  it('a stopped session leaves the queue', async () => {
    const s = new ResourceScheduler([workers[0]!]);
    const g = await s.acquire({connection: 'k', want: 1});
    const ac = new AbortController();
    const waiting = s.acquire({connection: 'k', want: 1}, ac.signal);
    ac.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
    expect(s.waiting).toBe(0);
    g.release();
  });
});

describe('VM locks', () => {
  it('one holder per VM, in arrival order; a stopped waiter passes its turn on', async () => {
    const locks = new VmLocks();
    const r1 = await locks.acquire('vm', 's1');
    expect(locks.holder('vm')).toBe('s1');
    const ac = new AbortController();
    const w2 = locks.acquire('vm', 's2', ac.signal);
    const w3 = locks.acquire('vm', 's3');
    ac.abort(new Error('stop'));
    await expect(w2).rejects.toThrow('stop');
    r1();
    const r3 = await w3;
    expect(locks.holder('vm')).toBe('s3');
    r3();
    expect(locks.holder('vm')).toBeUndefined();
    (await locks.acquire('other', 's4'))();
  });
});

describe('token bucket', () => {
  it('lets a burst of one second through, then paces to the rate', async () => {
    let now = 0;
    const slept: number[] = [];
    const take = tokenBucket(1000, {now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms))});
    await take(1000);
    expect(slept).toEqual([]);
    await take(500);
    expect(slept).toEqual([500]);
    now += 2000; // idle: the bucket refills to one second, no more
    await take(1500);
    expect(slept).toEqual([500, 500]);
  });
});

describe('session figures', () => {
  it('sums VMs, computes ratios, rate and the bottleneck', () => {
    const f = (read: number, plain: number, stored: number, src: number, repo: number) => ({sizeBytes: 10 * read, readBytes: read, storedBytes: stored, newPlainBytes: plain, processedBytes: read, durationMs: 1000, sourceMs: src, repositoryMs: repo});
    const t = sessionTotals(
      [
        {id: 'a', name: 'a', state: 'success', attempts: 1, figures: f(4000, 2000, 1000, 900, 100)},
        {id: 'b', name: 'b', state: 'failed', attempts: 1},
        {id: 'c', name: 'c', state: 'success', attempts: 1, figures: f(4000, 2000, 1000, 100, 300)},
      ],
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00:02Z',
    );
    expect(t).toEqual({sizeBytes: 80000, readBytes: 8000, transferredBytes: 2000, storedBytes: 2000, dedupRatio: 2, compressionRatio: 2, durationMs: 2000, rateBytesPerSec: 4000, bottleneck: 'source'});
  });

  it('names the stage that took longest: source, processing (hash + LZ4) or repository I/O', () => {
    expect(bottleneckOf(100, 300, 200)).toBe('processing');
    expect(bottleneckOf(100, 50, 400)).toBe('repository');
    expect(bottleneckOf(500, 50, 400)).toBe('source');
    expect(bottleneckOf(0, 0, 0)).toBeUndefined();
  });
});
