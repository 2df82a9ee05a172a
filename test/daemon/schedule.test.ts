/**
 * A schedule that fires, on a clock the test controls: the daemon runs in this process with a
 * ManualClock; moving the clock to the job's next run starts a session with trigger 'schedule'
 * at exactly that time, and the job is armed for the following run.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DaemonClient} from '../../src/api/client.js';
import {Daemon} from '../../src/daemon/daemon.js';
import {ManualClock} from '../../src/notify/clock.js';
import {ensureLibvirt} from '../lib/libvirt.js';
import {isolate, sleep, waitForSession} from './helpers.js';

let dir: string;
let daemon: Daemon;
let client: DaemonClient;
const clock = new ManualClock(Date.parse('2026-11-23T08:00:00Z'));
const lines: string[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-sched-'));
  daemon = await Daemon.start({stateDir: join(dir, 'state'), socketPath: join(dir, 'api.sock'), clock, write: (l) => lines.push(l)});
  client = new DaemonClient({socketPath: join(dir, 'api.sock')});
  await isolate(client);
  await client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
  await client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
});

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('scheduler', () => {
  it('starts the job at its scheduled time and re-arms for the next run', async () => {
    const job = await client.create<{info: {nextRuns: string[]; scheduleText: string}}>('jobs', {
      id: 'j',
      name: 'Evening',
      source: {connection: 'kvm', vms: [{id: 'no-such-vm-uuid', name: 'ghost'}]},
      repository: 'r',
      schedule: {kind: 'daily', at: '22:30'},
      retries: {count: 0},
    });
    const [first, second] = job.info.nextRuns.map((t) => Date.parse(t));
    expect(daemon.scheduler.nextRun('job:j')).toBe(new Date(first!).toISOString());
    expect(await client.sessions({job: 'j'})).toEqual([]);
    // One minute early: nothing yet.
    clock.advance(first! - clock.now() - 60_000);
    await sleep(50);
    expect(daemon.sessions.list()).toEqual([]);
    clock.advance(60_000);
    // The timer fired; the session starts on the next turn of the event loop.
    while (daemon.sessions.list().length === 0) await sleep(10);
    const started = daemon.sessions.list();
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({jobId: 'j', trigger: 'schedule', startedAt: new Date(first!).toISOString()});
    expect(daemon.scheduler.nextRun('job:j')).toBe(new Date(second!).toISOString());
    // The record says 'running' until retention and the report are done (sessions.ts): wait for
    // its final state, not just for the session to leave the running list.
    const s = await waitForSession(client, started[0]!.id);
    expect(s).toMatchObject({state: 'failed', trigger: 'schedule'});
    expect(s!.vms[0]).toMatchObject({name: 'ghost', state: 'failed', reason: expect.stringMatching(/no longer in the inventory/)});
  });

  it('disabling the job disarms it; a schedule of none is never armed', async () => {
    const j = await client.get<Record<string, unknown>>('jobs', 'j');
    await client.update('jobs', 'j', {...j, enabled: false});
    expect(daemon.scheduler.nextRun('job:j')).toBeUndefined();
    await client.update('jobs', 'j', {...j, enabled: true, schedule: {kind: 'none'}});
    expect(daemon.scheduler.nextRun('job:j')).toBeUndefined();
    // GC and the health check of the repository stay armed.
    expect(daemon.scheduler.nextRun('gc:r')).toBeDefined();
    expect(daemon.scheduler.nextRun('verify:r')).toBeDefined();
  });

  it('runs the daily GC and the weekly health check of each repository at their times', async () => {
    const seen: string[] = [];
    const off = daemon.hub.subscribe((e) => {
      if (e.type === 'maintenance' && e.state === 'finished') seen.push(`${e.action}:${e.repository}`);
    });
    try {
      for (const key of ['gc:r', 'verify:r']) {
        const at = Date.parse(daemon.scheduler.nextRun(key)!);
        clock.advance(at - clock.now());
        while (!seen.includes(key)) await sleep(10);
      }
      // Local times: GC at 03:00 (settings.gcAt), the health check on Sundays at 04:00.
      // (Jumping days ahead fires the GC that fell due once more, never once per missed day.)
      expect(seen[0]).toBe('gc:r');
      expect(seen.filter((k) => k === 'verify:r')).toEqual(['verify:r']);
      expect(seen.filter((k) => k === 'gc:r').length).toBeLessThanOrEqual(2);
      const verifyAt = new Date(clock.now());
      expect([verifyAt.getDay(), verifyAt.getHours(), verifyAt.getMinutes()]).toEqual([0, 4, 0]);
    } finally {
      off();
    }
  });
});
