/**
 * `vmbackup config export` on one real vmbackupd and `config import` on a fresh one: everything
 * comes across but the secrets, which are never exported in the clear; what needs a secret is
 * refused with what to do, and the second import after giving it completes the rest.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let a: RunningDaemon;
let b: RunningDaemon;
let sim: Simulator;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-config-io-'));
  sim = await startSimulator({delayMs: 5});
  [a, b] = await Promise.all([startDaemon(join(dir, 'a'), join(dir, 'a.sock')), startDaemon(join(dir, 'b'), join(dir, 'b.sock'))]);
  await a.client.create('repositories', {id: 'r', name: 'main', path: join(dir, 'repo')});
  await a.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
  await a.client.create('workers', {id: 'w1', name: 'w1', placement: {kind: 'appliance'}, slots: 2});
  const web = sim.vm('web01');
  await a.client.create('jobs', {id: 'nightly', name: 'Nightly', source: {connection: 'engine', vms: [{id: web.id, name: web.name}]}, repository: 'r', schedule: {kind: 'daily', at: '23:00'}});
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await sim?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('vmbackup config export / import', () => {
  it('exports without secrets, imports what needs none, and the rest once the secret is given', async () => {
    const out = await vmbackup(['config', 'export'], {env: {VMBACKUP_SOCKET: join(dir, 'a.sock')}});
    expect(out.exitCode, out.stderr).toBe(0);
    expect(out.stdout).not.toContain(sim.password);
    const file = join(dir, 'config.json');
    await writeFile(file, out.stdout);
    const exported = JSON.parse(out.stdout) as {jobs: Record<string, unknown>[]; connections: {password?: string}[]};
    expect(exported.connections[0]!.password).toBe('••••');
    expect(exported.jobs[0]).not.toHaveProperty('info');

    const envB = {VMBACKUP_SOCKET: join(dir, 'b.sock')};
    const first = await vmbackup(['config', 'import', file], {env: envB});
    expect(first.exitCode).not.toBe(0);
    expect(first.stdout).toMatch(/✔ repositories r: created/);
    expect(first.stdout).toMatch(/✖ connections engine: refused — .*password.*stands for a stored secret/);
    expect(first.stdout).toMatch(/✔ workers w1: created/);
    expect(first.stdout).toMatch(/✖ jobs nightly: refused/);
    expect(first.stdout).toContain('Give the secrets exported as "••••" again');
    // The secret stored "••••" nowhere.
    expect((await b.client.list('connections')).length).toBe(0);

    await b.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem});
    const second = await vmbackup(['config', 'import', file], {env: envB});
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.stdout).toMatch(/· repositories r: exists/);
    expect(second.stdout).toMatch(/✔ jobs nightly: created/);
    const job = await b.client.get<{source: {connection: string}; schedule: unknown}>('jobs', 'nightly');
    expect(job).toMatchObject({source: {connection: 'engine'}, schedule: {kind: 'daily', at: '23:00'}});
  });

  it('refuses a file that is not a configuration export', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"hello": 1}');
    const r = await vmbackup(['config', 'import', bad], {env: {VMBACKUP_SOCKET: join(dir, 'b.sock')}});
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/not a vmbackup configuration file/);
  });
});
