/**
 * Workers on oVirt, on a real vmbackupd against the simulator: the appliance's own worker reads
 * a VM's disks through the engine's imageio proxy; a worker placed in the VM's cluster reads from
 * the host's imageio (transfer_url), as the platforms' "worker in the same cluster" does.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, expect, it} from 'vitest';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';

let dir: string;
let sim: Simulator;
let d: RunningDaemon;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-ovirt-workers-'));
  sim = await startSimulator({delayMs: 5});
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, caFingerprint: sim.caFingerprint});
  await d.client.create('jobs', {id: 'web', name: 'Web', source: {connection: 'engine', vms: [{id: sim.vm('web01').id}]}, repository: 'r', retries: {count: 0}});
});
afterAll(async () => {
  await d?.stop();
  await sim?.stop();
  await rm(dir, {recursive: true, force: true});
});

async function runAndSeeVia(): Promise<{worker?: string; via: Set<string>}> {
  sim.imageioLog.length = 0;
  const s = await waitForSession(d.client, (await d.client.startJob('web')).id);
  expect(s.state, JSON.stringify(s.log)).not.toBe('failed');
  return {worker: s.vms[0]?.worker, via: new Set(sim.imageioLog.filter((l) => l.op === 'GET').map((l) => l.via))};
}

it('the appliance worker reads through the engine proxy, a cluster worker from the host', async () => {
  expect(await runAndSeeVia()).toEqual({worker: 'appliance', via: new Set(['proxy'])});
  const cluster = (await d.client.inventory('engine')).vms.find((v) => v.name === 'web01')!.cluster!;
  await d.client.create('workers', {id: 'in-cluster', name: 'in-cluster', placement: {kind: 'cluster', connection: 'engine', cluster}, slots: 2});
  expect(await runAndSeeVia()).toEqual({worker: 'in-cluster', via: new Set(['daemon'])});
});
