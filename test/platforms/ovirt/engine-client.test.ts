/**
 * The engine client's login, trust and error handling against the simulator (§2 of
 * docs/reference/ovirt-backup-api.md), plus the pure URL normalisation.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {EngineClient, fetchEngineCa, normalizeEngineUrl, OvirtPlatform} from '../../../src/platforms/ovirt/index.js';
import {engineVersion} from '../../../src/platforms/ovirt/inventory.js';
import {startSimulator, type Simulator} from '../../ovirt-sim/index.js';
import {makeSimTls} from '../../ovirt-sim/tls.js';

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({delayMs: 5});
});
afterAll(async () => {
  await sim.stop();
});

describe('engine client', () => {
  it('normalises engine addresses', () => {
    expect(normalizeEngineUrl('engine.example.com')).toBe('https://engine.example.com/ovirt-engine');
    expect(normalizeEngineUrl('https://engine:8443/ovirt-engine/api/')).toBe('https://engine:8443/ovirt-engine');
    expect(normalizeEngineUrl('https://engine/ovirt-engine/api/v4')).toBe('https://engine/ovirt-engine');
    expect(() => normalizeEngineUrl('http://engine')).toThrow(/https/);
    expect(() => normalizeEngineUrl('https://')).toThrow(/not a valid URL/);
  });

  it('fetchEngineCa downloads the CA without trusting it and gives its SHA-256 fingerprint', async () => {
    expect(sim.vms.map((v) => v.name)).toEqual(['web01', `db 01 'quoted'; ünï`, 'empty-vm']);
    const ca = await fetchEngineCa(sim.url);
    expect(ca.fingerprint).toBe(sim.caFingerprint);
    expect(ca.pem).toContain('BEGIN CERTIFICATE');
    expect(ca.subject).toContain('engine-sim CA');
  });

  it('logs in, sends Version: 4 and reads the engine version', async () => {
    const c = new EngineClient({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
    const v = await engineVersion(c);
    expect([v.major, v.minor]).toEqual([4, 5]);
    await c.close();
    // close() revoked the token.
    expect(sim.apiLog.some((l) => l.path === '/ovirt-engine/services/sso-logout')).toBe(true);
  });

  it('a wrong password is UserError authFailed and never shows the password', async () => {
    const c = new EngineClient({url: sim.url, user: sim.user, password: 'hunter2-wrong', caPem: sim.caPem});
    const err = await c.get('/vms').catch((e) => e);
    expect(err).toMatchObject({name: 'UserError', exitCode: 21});
    expect(err.message).toContain('admin@internal');
    expect(`${err.message} ${err.hint}`).not.toContain('hunter2');
    await c.close();
  });

  it('an unreachable engine is UserError unreachable', async () => {
    const p = new OvirtPlatform({url: 'https://127.0.0.1:1/ovirt-engine', user: 'a@internal', password: 'x', caPem: sim.caPem});
    await expect(p.inventory()).rejects.toMatchObject({name: 'UserError', exitCode: 20});
    await p.close();
    await expect(fetchEngineCa('https://127.0.0.1:1')).rejects.toMatchObject({exitCode: 20});
  });

  it('an engine certificate from another CA is UserError untrusted naming the presented fingerprint', async () => {
    const other = await makeSimTls();
    const p = new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: other.caPem});
    const err = await p.inventory().catch((e) => e);
    expect(err).toMatchObject({name: 'UserError', exitCode: 22});
    expect(err.message).toContain(sim.caFingerprint);
    await p.close();
  });

  it('engine faults keep status and detail without brackets (§10.1)', async () => {
    const c = new EngineClient({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
    const vm = sim.vm('web01');
    const err = await c.post(`/vms/${vm.id}/backups`, {disks: {disk: [{id: 'nope'}]}}).catch((e) => e);
    expect(err).toMatchObject({name: 'EngineError', status: 400, exitCode: 23});
    expect(err.detail).toMatch(/^Cannot backup VM. The following disk\(s\) ID\(s\) does not exist: nope/);
    expect(await c.find('/vms/00000000-0000-0000-0000-000000000000')).toBeUndefined();
    await c.close();
  });
});
