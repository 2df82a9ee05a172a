/** The daemon's CLI subcommands against a real vmbackupd: status, job list|start|stop, session list|show. */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {ensureLibvirt} from '../lib/libvirt.js';
import {isolate, startDaemon, type RunningDaemon} from './helpers.js';
import {VERSION} from '../../src/daemon/version.js';

let dir: string;
let d: RunningDaemon;
let env: Record<string, string>;
beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-cli-'));
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  env = {VMBACKUP_SOCKET: join(dir, 'api.sock')};
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  await d.client.create('jobs', {id: 'ghost', name: 'Ghost job', source: {connection: 'kvm', vms: [{id: 'no-such-uuid', name: 'ghost vm'}]}, repository: 'r', retries: {count: 0}, schedule: {kind: 'daily', at: '23:15'}});
});
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('vmbackup CLI for the daemon', () => {
  it('status and job list', async () => {
    const s = await vmbackup(['status'], {env});
    expect(s.exitCode, s.stderr).toBe(0);
    expect(s.stdout).toContain(`vmbackupd ${VERSION} `);
    // One version: package.json's is the daemon's and the command's (the Debian build stamps its own).
    expect(JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version).toBe(VERSION);
    expect(s.stdout).toMatch(/No session is running/);
    expect(s.stdout).toMatch(/Repo/);
    const j = await vmbackup(['job', 'list'], {env});
    expect(j.stdout).toMatch(/ghost\s+Ghost job\s+At 23:15/);
    const json = JSON.parse((await vmbackup(['job', 'list', '--json'], {env})).stdout) as {id: string}[];
    expect(json.map((x) => x.id)).toEqual(['ghost']);
  });

  it('job start --wait follows the session and exits 1 when it failed; session list and show explain why', async () => {
    const r = await vmbackup(['job', 'start', 'ghost', '--wait'], {env});
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/Session .* of job Ghost job: failed/);
    expect(r.stdout).toMatch(/ghost vm\s+failed.*no longer in the inventory/);
    const list = await vmbackup(['session', 'list', '--job', 'ghost'], {env});
    const id = /^(\S+Z-\S+)\s+Ghost job/m.exec(list.stdout)?.[1];
    expect(id, list.stdout).toBeTruthy();
    const show = await vmbackup(['session', 'show', id!, '--log'], {env});
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/vm-not-found/);
  });

  it('errors say what to do: nothing to stop, unknown job, no daemon', async () => {
    const stop = await vmbackup(['job', 'stop', 'ghost'], {env});
    expect(stop.exitCode).toBe(16);
    expect(stop.stderr).toMatch(/No running session/);
    const unknown = await vmbackup(['job', 'start', 'nope'], {env});
    expect(unknown.exitCode).toBe(16);
    const none = await vmbackup(['status'], {env: {VMBACKUP_SOCKET: join(dir, 'nothing.sock')}});
    expect(none.exitCode).toBe(20);
    expect(none.stderr).toMatch(/vmbackupd is not running/);
    expect(none.stderr).toMatch(/systemctl start vmbackupd/);
  });
});
