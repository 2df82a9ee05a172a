/**
 * Every console action is also a command: the configuration commands (src/cli/config-commands.ts)
 * against a real vmbackupd, the test bed's sshd on 127.0.0.1:2222 as a remote KVM host, and a real
 * repository — text for people, --json for scripts, the daemon's errors with their hints.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {isolate, startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let d: RunningDaemon;
let env: Record<string, string>;
const file = async (name: string, obj: unknown) => {
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(obj));
  return p;
};

beforeAll(async () => {
  await ensureSshd();
  dir = await mkdtemp(join(tmpdir(), 'vmb-cli-config-'));
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  env = {VMBACKUP_SOCKET: join(dir, 'api.sock')};
  await isolate(d.client);
}, 60_000);
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('vmbackup configuration commands', () => {
  it('a KVM host over SSH: host key, add, test, list, show, remove', async () => {
    const keys = JSON.parse((await vmbackup(['connection', 'host-key', '127.0.0.1', '--port', String(SSHD_PORT), '--json'], {env})).stdout) as {keys: {type: string; key: string}[]};
    const key = keys.keys.find((k) => k.type === 'ssh-ed25519')!;
    expect(key.key).toMatch(/^ssh-ed25519 \S+$/);
    const conn = {
      id: 'remote', kind: 'morpheus', name: 'Remote KVM',
      clusters: [{name: 'c1', hosts: [{name: '127.0.0.1', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
    };
    const add = await vmbackup(['connection', 'add', '--file', await file('conn.json', conn)], {env});
    expect(add.exitCode, add.stderr).toBe(0);
    expect(add.stdout).toContain('Added connection remote.');
    const test = await vmbackup(['connection', 'test', 'remote'], {env});
    expect(test.exitCode, test.stderr).toBe(0);
    expect(test.stdout).toMatch(/Reachable and logged in: \d+ VMs/);
    const list = JSON.parse((await vmbackup(['connection', 'list', '--json'], {env})).stdout) as {id: string}[];
    expect(list.map((c) => c.id)).toEqual(['remote']);
    const shown = await vmbackup(['connection', 'show', 'remote'], {env});
    expect(shown.stdout).toContain('"hostKey"');
    // A bad object is refused with the field named, and nothing is saved.
    const bad = await vmbackup(['connection', 'add', '--file', await file('bad.json', {...conn, id: 'bad', clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'h', user: 'root', identityFile: '/x', hostKey: 'localhost ssh-ed25519 AAAA'}}]}]})], {env});
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/hostKey/);
    const rm1 = await vmbackup(['connection', 'remove', 'remote'], {env});
    expect(rm1.exitCode, rm1.stderr).toBe(0);
    expect(await d.client.list('connections')).toEqual([]);
  });

  it('repositories, workers and a job: add, disable, enable, delete', async () => {
    expect((await vmbackup(['repository', 'add', '--file', await file('repo.json', {id: 'r', name: 'Repo', path: join(dir, 'repo')})], {env})).exitCode).toBe(0);
    expect((await vmbackup(['worker', 'add', '--file', await file('w.json', {id: 'w1', name: 'w1', placement: {kind: 'appliance'}, slots: 2})], {env})).exitCode).toBe(0);
    expect((await vmbackup(['worker', 'list'], {env})).stdout).toMatch(/w1\s+w1\s+2 slots/);
    await d.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    const job = {id: 'nightly', name: 'Nightly', source: {connection: 'kvm', vms: [{id: 'x', name: 'x'}]}, repository: 'r', schedule: {kind: 'daily', at: '23:00'}};
    const created = await vmbackup(['job', 'create', '--file', await file('job.json', job)], {env});
    expect(created.exitCode, created.stderr).toBe(0);
    expect((await vmbackup(['job', 'disable', 'nightly'], {env})).stdout).toContain('Job nightly disabled.');
    expect((await d.client.get<{enabled: boolean}>('jobs', 'nightly')).enabled).toBe(false);
    expect((await vmbackup(['job', 'list'], {env})).stdout).toMatch(/nightly\s+Nightly\s+disabled/);
    await vmbackup(['job', 'enable', 'nightly'], {env});
    expect((await d.client.get<{enabled: boolean}>('jobs', 'nightly')).enabled).toBe(true);
    expect((await vmbackup(['job', 'delete', 'nightly'], {env})).exitCode).toBe(0);
    expect((await vmbackup(['point', 'list', 'r', '--json'], {env})).stdout.trim()).toBe('[]');
    expect((await vmbackup(['repository', 'remove', 'r'], {env})).exitCode).toBe(0);
    expect(await d.client.list('repositories')).toEqual([]);
  });

  it("the appliance's SSH key, and e-mail without settings says what to do", async () => {
    const k = await vmbackup(['appliance', 'ssh-key'], {env});
    expect(k.stdout).toMatch(/^ssh-ed25519 \S+ vmbackup@/);
    expect(k.stdout).toContain('>> ~/.ssh/authorized_keys');
    const show = await vmbackup(['email', 'show'], {env});
    expect(show.stdout).toContain('No e-mail settings yet');
    const test = await vmbackup(['email', 'test'], {env});
    expect(test.exitCode).not.toBe(0);
  });
});
