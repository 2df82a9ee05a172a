/**
 * Workers on oVirt, on a real vmbackupd against the simulator: the appliance's own worker reads
 * a VM's disks through the engine's imageio proxy; a worker placed in the VM's cluster reads from
 * the host's imageio (transfer_url), as the platforms' "worker in the same cluster" does.
 */
import {afterAll, beforeAll, expect, it} from 'vitest';
import type {Simulator} from '../ovirt-sim/index.js';
import {startEngineBed, waitForSession, type EngineBed, type RunningDaemon} from './helpers.js';

let bed: EngineBed;
let sim: Simulator;
let d: RunningDaemon;
beforeAll(async () => {
  bed = await startEngineBed('vmb-ovirt-workers-');
  ({sim, d} = bed);
});
afterAll(async () => bed?.stop());

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
