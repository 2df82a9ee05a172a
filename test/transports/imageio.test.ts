/**
 * The imageio client against the simulator's data plane, and the simulator's fidelity to the
 * captured imageio behaviour (docs/reference/ovirt-backup-api.md §6: status codes, bodies, ranges).
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {Agent, request} from 'undici';
import {ImageioClient, ImageioError} from '../../src/transports/imageio/imageio-client.js';
import {pattern, startSimulator, type Simulator} from '../ovirt-sim/index.js';
import type {SimTransfer} from '../ovirt-sim/state.js';
import {makeSimTls} from '../ovirt-sim/tls.js';

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({delayMs: 5});
});
afterAll(async () => {
  await sim.stop();
});

async function transfer(diskAlias: string, direction: 'download' | 'upload'): Promise<SimTransfer> {
  const disk = [...sim.state.disks.values()].find((d) => d.alias === diskAlias)!;
  // The previous test's finalize unlocks the disk after an engine phase step.
  while (disk.status === 'locked') await new Promise((r) => setTimeout(r, 5));
  const vm = sim.state.attachedTo(disk.id)!;
  const wasUp = vm.status;
  if (direction === 'upload') vm.status = 'down';
  const t = sim.state.createTransfer({diskId: disk.id, direction});
  vm.status = wasUp;
  while (!t.ticket) await new Promise((r) => setTimeout(r, 5));
  return t;
}

const urls = (t: SimTransfer) => ({transferUrl: `${sim.imageio.daemon}/images/${t.ticket!.uuid}`, proxyUrl: `${sim.imageio.proxy}/images/${t.ticket!.uuid}`});

describe('imageio client', () => {
  it('OPTIONS first, then extents and ranged reads over parallel keep-alive connections', async () => {
    const t = await transfer('web01_os', 'download');
    const io = await ImageioClient.open({...urls(t), caPem: sim.caPem});
    expect(io.via).toBe('transfer_url');
    expect([...io.caps.features].sort()).toEqual(['checksum', 'extents']);
    expect(io.caps.maxReaders).toBe(8);
    expect(sim.imageioLog.find((l) => l.ticket === t.ticket!.uuid)!.op).toBe('OPTIONS');
    const disk = sim.state.disk(t.diskId);
    const ext = await io.extents('zero', disk.image.size);
    expect(ext).toEqual(disk.image.zeroExtents());
    const reads = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => io.read(i * 300_001, 300_001)));
    for (const [i, b] of reads.entries()) expect(b.equals(disk.image.read(i * 300_001, 300_001))).toBe(true);
    const into = Buffer.alloc(70_000, 0xff);
    await io.read(20 * 2 ** 20 - 5, 70_000, into);
    expect(into.equals(disk.image.read(20 * 2 ** 20 - 5, 70_000))).toBe(true);
    expect(io.readPath).toBe('own connections');
    // A download ticket has no dirty extents (gotcha 19): 404.
    await expect(io.extents('dirty')).rejects.toMatchObject({status: 404});
    await io.close();
    sim.state.transferAction(t.id, 'finalize');
  });

  it('falls back to proxy_url when transfer_url cannot be reached; both down is UserError unreachable', async () => {
    const t = await transfer('web01_os', 'download');
    const dead = 'https://127.0.0.1:1/images/' + t.ticket!.uuid;
    const io = await ImageioClient.open({transferUrl: dead, proxyUrl: urls(t).proxyUrl, caPem: sim.caPem});
    expect(io.via).toBe('proxy_url');
    expect((await io.read(0, 4096)).equals(sim.state.disk(t.diskId).image.read(0, 4096))).toBe(true);
    await io.close();
    const err = await ImageioClient.open({transferUrl: dead, proxyUrl: 'https://127.0.0.1:2/images/' + t.ticket!.uuid, caPem: sim.caPem}).catch((e) => e);
    expect(err).toMatchObject({name: 'UserError', exitCode: 20});
    expect(err.message).not.toContain(t.ticket!.uuid);
    expect(err.message).toContain('/images/<ticket>');
    sim.state.transferAction(t.id, 'finalize');
  });

  it('a ticket that is gone is a 403 ImageioError (ticketGone) that does not reveal the ticket', async () => {
    const t = await transfer('web01_os', 'download');
    const io = await ImageioClient.open({...urls(t), caPem: sim.caPem});
    sim.state.transferAction(t.id, 'finalize');
    const err = await io.read(0, 4096).catch((e) => e);
    expect(err).toBeInstanceOf(ImageioError);
    expect(err.ticketGone).toBe(true);
    expect(err.message).not.toContain(t.ticket!.uuid);
    await io.close();
  });

  it('a certificate from another CA is UserError untrusted', async () => {
    const t = await transfer('web01_os', 'download');
    const other = await makeSimTls();
    await expect(ImageioClient.open({...urls(t), caPem: other.caPem})).rejects.toMatchObject({name: 'UserError', exitCode: 22});
    sim.state.transferAction(t.id, 'finalize');
  });

  it('uploads with PUT ?flush=n, PATCH zero and one PATCH flush (gotchas 15, 16)', async () => {
    const t = await transfer('db disk ü', 'upload');
    const io = await ImageioClient.open({...urls(t), caPem: sim.caPem});
    expect(io.caps.features.has('zero') && io.caps.features.has('flush')).toBe(true);
    const data = pattern(77, 3 * 2 ** 20);
    await Promise.all([io.write(0, data.subarray(0, 2 ** 20)), io.write(2 ** 20, data.subarray(2 ** 20)), io.zero(8 * 2 ** 20, 2 ** 20)]);
    await io.flush();
    const img = sim.state.disk(t.diskId).image;
    expect(img.read(0, data.length).equals(data)).toBe(true);
    expect(img.read(8 * 2 ** 20, 2 ** 20).every((b) => b === 0)).toBe(true);
    const ops = sim.imageioLog.filter((l) => l.ticket === t.ticket!.uuid).map((l) => l.op);
    expect(ops.filter((o) => o === 'PUT')).toHaveLength(2);
    expect(ops.at(-1)).toBe('PATCH:flush');
    await expect(io.write(img.size - 10, Buffer.alloc(20))).rejects.toMatchObject({status: 416});
    await io.close();
    sim.state.transferAction(t.id, 'finalize');
  });
});

describe('simulated imageio answers as captured (§6)', () => {
  it('rejects what the real daemon rejects', async () => {
    const t = await transfer('web01_os', 'download');
    const base = urls(t).transferUrl;
    const agent = new Agent({connect: {ca: sim.caPem}});
    const call = async (method: string, url: string, headers: Record<string, string> = {}, body?: string) => {
      const r = await request(url, {method: method as 'GET', headers, body, dispatcher: agent});
      return {status: r.statusCode, headers: r.headers, text: await r.body.text()};
    };
    expect(await call('GET', base, {range: 'bytes=0-1,4-5'})).toMatchObject({status: 416, text: expect.stringContaining('multiple ranges')});
    expect(await call('GET', base, {range: 'bytes=-100'})).toMatchObject({status: 416, text: expect.stringContaining('suffix-byte-range-spec')});
    const size = sim.state.disk(t.diskId).image.size;
    const beyond = await call('GET', base, {range: `bytes=${size}-${size + 10}`});
    expect(beyond).toMatchObject({status: 416});
    expect(beyond.headers['content-range']).toBe(`bytes */${size}`);
    const ok = await call('GET', base, {range: 'bytes=0-9'});
    expect(ok.status).toBe(206);
    expect(ok.headers['content-range']).toBe(`bytes 0-9/${size}`);
    expect(await call('GET', `${base}/extents?context=foo`)).toMatchObject({status: 400, text: expect.stringContaining("Unsupported value 'foo'")});
    expect(await call('PUT', base, {'content-length': '4'}, 'abcd')).toMatchObject({status: 403, text: expect.stringContaining('forbids write')});
    const gone = await call('GET', sim.imageio.daemon + '/images/nope');
    expect(gone).toMatchObject({status: 403, text: expect.stringContaining('No such ticket nope')});
    expect(gone.headers.connection).toBe('close');
    expect(await call('GET', sim.imageio.daemon + '/foo')).toMatchObject({status: 404, text: expect.stringContaining("No handler for '/foo'")});
    sim.state.transferAction(t.id, 'finalize');
    const up = await transfer('db disk ü', 'upload');
    const ub = urls(up).transferUrl;
    const patch = (b: string) => call('PATCH', ub, {'content-type': 'application/json'}, b);
    expect(await patch('{"op":"zero","offset":0,"size":"4096"}')).toMatchObject({status: 400, text: expect.stringContaining("Integer required '4096'")});
    expect(await patch('{"op":"zero","offset":0}')).toMatchObject({status: 400, text: expect.stringContaining("Missing required value for 'size'")});
    expect(await patch('{"op":"trim"}')).toMatchObject({status: 400, text: expect.stringContaining("Unsupported value 'trim' for 'op'")});
    expect(await patch('nope')).toMatchObject({status: 400, text: expect.stringContaining('Invalid JSON message')});
    sim.state.transferAction(up.id, 'finalize');
    await agent.close();
  });
});
