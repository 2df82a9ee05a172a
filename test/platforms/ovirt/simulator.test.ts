/**
 * The simulator keeps the engine rules that the adapter relies on (docs/reference/ovirt-backup-api.md §4, §5,
 * §13). These pin the simulator to the reference, so an adapter test that passes here is not
 * passing against a lenient fake.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {Agent, request} from 'undici';
import {EngineClient} from '../../../src/platforms/ovirt/engine-client.js';
import {startSimulator, type Simulator} from '../../ovirt-sim/index.js';

let sim: Simulator;
let c: EngineClient;
const wait = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};
beforeAll(async () => {
  sim = await startSimulator({delayMs: 5});
  c = new EngineClient({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
});
afterAll(async () => {
  await c.close();
  await sim.stop();
});

describe('simulated engine rules', () => {
  it('backup phases, 409 on a second backup, engine-assigned checkpoint, finalize rules', async () => {
    const vm = sim.vm('web01');
    const [os] = sim.disksOf('web01');
    const b = await c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: os!.id}]}, to_checkpoint_id: 'mine'});
    expect(b.phase).toBe('initializing');
    expect(b.to_checkpoint_id).toBeUndefined(); // only once ready (gotcha 7)
    // §4.2: a second backup of the same VM is refused (disks locked while initializing, then "during a backup").
    await expect(c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: os!.id}]}})).rejects.toMatchObject({status: 409});
    const sb = sim.state.backups.get(b.id as string)!;
    await wait(() => sb.phase === 'ready');
    await expect(c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: os!.id}]}})).rejects.toMatchObject({status: 409, detail: 'Cannot backup VM. The VM is during a backup operation.'});
    expect(sb.toCheckpointId).toBeTruthy();
    expect(sb.toCheckpointId).not.toBe('mine'); // client value ignored (§4.1)
    // Gotcha 1: no direction = upload; gotcha 20: format cow refused for a backup.
    await expect(c.post('/imagetransfers', {disk: {id: os!.id}, backup: {id: b.id}, format: 'cow', direction: 'download'})).rejects.toMatchObject({status: 400});
    const t = await c.post('/imagetransfers', {disk: {id: os!.id}, backup: {id: b.id}});
    expect(t.direction).toBe('upload');
    expect(t.transfer_url).toBeUndefined(); // URLs only while transferring (gotcha 12)
    const st = sim.state.transfers.get(t.id as string)!;
    await wait(() => st.phase === 'transferring');
    const tj = await c.get(`/imagetransfers/${t.id}`);
    expect(String(tj.transfer_url)).not.toContain(String(t.id)); // ticket != transfer id
    // Gotcha 3: finalize backup refused while a transfer is not finished.
    await expect(c.post(`/vms/${vm.id}/backups/${b.id}/finalize`, {})).rejects.toMatchObject({status: 409});
    await c.post(`/imagetransfers/${t.id}/finalize`, {});
    await wait(() => st.phase === 'finished_success');
    await c.post(`/vms/${vm.id}/backups/${b.id}/finalize`, {});
    // Double finalize: 400 "already in ... phase".
    await expect(c.post(`/vms/${vm.id}/backups/${b.id}/finalize`, {})).rejects.toMatchObject({status: 400, detail: expect.stringContaining('no need to stop the backup again')});
    await wait(() => sb.phase === 'succeeded');
    // §4.2: unknown checkpoint is a 400, not a full backup.
    await expect(c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: os!.id}]}, from_checkpoint_id: 'nope'}))
      .rejects.toMatchObject({status: 400, detail: "Cannot backup VM. Checkpoint ID nope doesn't exist."});
    // §4.7: checkpoints root→leaf with parent links; removal then 404.
    const b2 = await c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: os!.id}]}, from_checkpoint_id: sb.toCheckpointId});
    const sb2 = sim.state.backups.get(b2.id as string)!;
    await wait(() => sb2.phase === 'ready');
    const modes = await c.get(`/vms/${vm.id}/backups/${b2.id}/disks`);
    expect((modes.disk as {backup_mode: string}[])[0]!.backup_mode).toBe('incremental');
    await c.post(`/vms/${vm.id}/backups/${b2.id}/finalize`, {});
    await wait(() => sb2.phase === 'succeeded');
    const chain = (await c.get(`/vms/${vm.id}/checkpoints`)).checkpoint as {id: string; parent_id?: string}[];
    expect(chain.map((x) => x.id)).toEqual([sb.toCheckpointId, sb2.toCheckpointId]);
    expect(chain[1]!.parent_id).toBe(sb.toCheckpointId);
    await c.delete(`/vms/${vm.id}/checkpoints/${sb.toCheckpointId}`);
    await wait(() => sim.state.checkpoints.length === 1);
    expect(await c.find(`/vms/${vm.id}/checkpoints/${sb.toCheckpointId}`)).toBeUndefined();
  });

  it('cancelling an upload deletes its disk (gotcha 2); empty collections are {} (gotcha 22)', async () => {
    const sd = sim.state.storageDomains[0]!;
    const d = await c.post('/disks', {alias: 'tmp', format: 'cow', provisioned_size: 2 ** 20, storage_domains: {storage_domain: [{id: sd.id}]}});
    expect(d.status).toBe('locked');
    await wait(() => sim.state.disks.get(d.id as string)?.status === 'ok');
    const t = await c.post('/imagetransfers', {disk: {id: d.id}, direction: 'upload', format: 'raw'});
    const st = sim.state.transfers.get(t.id as string)!;
    await wait(() => st.phase === 'transferring');
    await c.post(`/imagetransfers/${t.id}/cancel`, {});
    await wait(() => st.phase === 'finished_failure');
    expect(await c.find(`/disks/${d.id}`)).toBeUndefined();
    expect(await c.get(`/vms/${sim.vm('empty-vm').id}/diskattachments`)).toEqual({});
    // raw + incremental is refused at creation (§3).
    await expect(c.post('/disks', {alias: 'x', format: 'raw', backup: 'incremental', provisioned_size: 2 ** 20, storage_domains: {storage_domain: [{id: sd.id}]}}))
      .rejects.toMatchObject({status: 400});
  });

  it('the SSO endpoint insists on scope ovirt-app-api and answers errors as JSON 400 (gotcha 27)', async () => {
    const agent = new Agent({connect: {ca: sim.caPem}});
    const token = async (form: string) => {
      const r = await request(`${sim.url}/sso/oauth/token`, {method: 'POST', body: form, dispatcher: agent,
        headers: {'content-type': 'application/x-www-form-urlencoded', accept: 'application/json'}});
      return {status: r.statusCode, body: (await r.body.json()) as Record<string, string>};
    };
    const user = encodeURIComponent(sim.user);
    expect(await token(`grant_type=password&username=${user}&password=${sim.password}`)).toMatchObject({status: 400, body: {error: 'invalid_scope'}});
    expect(await token(`grant_type=password&scope=ovirt-app-api&username=${user}&password=x`)).toMatchObject({status: 400, body: {error_code: 'access_denied'}});
    const ok = await token(`grant_type=password&scope=ovirt-app-api&username=${user}&password=${sim.password}`);
    expect(ok).toMatchObject({status: 200, body: {token_type: 'bearer', exp: '9223372036854775807'}});
    await agent.close();
  });
});
