/**
 * The demo lab on a real vmbackupd: POST /demo-lab runs appliance/demo-lab.sh (libvirt VMs with
 * data, the oVirt simulator in the background), saves the repository and both connections, whose
 * tests pass and whose inventories list the demo VMs; a job per connection runs; a second call
 * changes nothing. Bad options and a port taken by something else are clear errors that save
 * nothing. VM names, directories and the simulator port are this test's own; cleanup runs
 * `demo-lab.sh down` (VMs undefined, simulator stopped).
 */
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {vmbackup} from '../lib/cli.js';
import {ensureLibvirt} from '../lib/libvirt.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import type {DemoLabResult} from '../../src/api/contract.js';
import {freePort} from '../lib/ports.js';

const SCRIPT = fileURLToPath(new URL('../../appliance/demo-lab.sh', import.meta.url));
const tag = Math.random().toString(36).slice(2, 7);
const PREFIX = `dlt${tag}-`;

let dir: string;
let d: RunningDaemon;
let opts: {prefix: string; vmDir: string; simPort: number; repositoryPath: string; packages: boolean};

function demoLab(body: unknown): Promise<DemoLabResult> {
  return d.client.request('POST', '/demo-lab', body);
}

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-demo-lab-'));
  opts = {prefix: PREFIX, vmDir: join(dir, 'vms'), simPort: await freePort(), repositoryPath: join(dir, 'demo repo ü'), packages: false};
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
});

afterAll(async () => {
  await d?.stop();
  if (opts) {
    await execa('bash', [SCRIPT, 'down', '--prefix', opts.prefix, '--dir', opts.vmDir, '--sim-dir', join(dir, 'state', 'demo'), '--sim-port', String(opts.simPort)], {reject: false});
  }
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('the simulator unit', () => {
  it('passes systemd-analyze verify and keeps the password off the command line', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
    const unit = (await readFile(join(root, 'systemd/vmbackup-ovirt-sim.service'), 'utf8')).replaceAll('@ROOT@', root);
    expect(unit).toContain('demo-lab.sh sim-run');
    expect(unit).not.toMatch(/--password/);
    const file = join(dir, 'vmbackup-ovirt-sim.service');
    await writeFile(file, unit);
    const r = await execa('systemd-analyze', ['verify', file], {reject: false});
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('vmbackup-ovirt-sim.service'))).toEqual([]);
  });
});

describe('POST /demo-lab', () => {
  it('rejects bad options by field, and saves nothing', async () => {
    await expect(demoLab({prefix: 'Bad Prefix'})).rejects.toMatchObject({exitCode: 17, message: expect.stringContaining('demo-lab.prefix')});
    await expect(demoLab({simPort: 80})).rejects.toMatchObject({exitCode: 17, message: expect.stringContaining('demo-lab.simPort')});
    await expect(demoLab({colour: 'blue'})).rejects.toMatchObject({exitCode: 17});
    expect(await d.client.list('connections')).toEqual([]);
  });

  it('vmbackup demo-lab: a bad --sim-port is a usage error', async () => {
    const cli = await vmbackup(['demo-lab', '--socket', join(dir, 'api.sock'), '--sim-port', 'eighty']);
    expect(cli.exitCode).toBe(2);
    expect(cli.stderr).toContain('--sim-port');
  });

  it('says so when the simulator port is taken by something else, and saves nothing', async () => {
    const busy: Server = createServer((s) => s.destroy());
    const port = await freePort();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', () => r()));
    try {
      const err = await demoLab({...opts, simPort: port}).catch((e: unknown) => e);
      expect(err).toMatchObject({exitCode: 23, message: expect.stringMatching(/demo lab failed: .*127\.0\.0\.1:\d+/), hint: expect.stringContaining('demo-lab.sh')});
      expect(await d.client.list('connections')).toEqual([]);
      expect(await d.client.list('repositories')).toEqual([]);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });

  it('never adopts a VM of the same name that is not one of the demo lab', async () => {
    const other = `${PREFIX}x-`;
    const xml = join(dir, 'other.xml');
    await writeFile(xml, `<domain type='qemu'><name>${other}web</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`);
    await execa('virsh', ['-c', 'qemu:///system', 'define', xml]);
    try {
      const err = await demoLab({...opts, prefix: other}).catch((e: unknown) => e);
      expect(err).toMatchObject({exitCode: 23, message: expect.stringContaining(`a VM named ${other}web exists and is not the demo lab's`)});
      expect(await d.client.list('connections')).toEqual([]);
      expect((await execa('virsh', ['-c', 'qemu:///system', 'domuuid', `${other}db`], {reject: false})).exitCode).not.toBe(0);
    } finally {
      await execa('virsh', ['-c', 'qemu:///system', 'undefine', `${other}web`], {reject: false});
    }
  });

  let lab: DemoLabResult;
  it('sets up the VMs, the simulator, the repository and both connections', async () => {
    lab = await demoLab(opts);
    expect(lab.libvirt.vms.map((v) => v.name).sort()).toEqual([`${PREFIX}db`, `${PREFIX}web`]);
    expect(lab.ovirt.vms.map((v) => v.name)).toContain('web01');
    expect(lab.changed.sort()).toEqual(['connection Demo KVM host', 'connection Demo oVirt engine', 'repository Demo repository']);
    expect(lab.summary).toMatch(/^Demo lab ready: 2 libvirt VMs .*, 2 oVirt VMs, repository Demo repository .*next: create a job$/);

    const conns = await d.client.list<{id: string; name: string; kind: string; password?: string}>('connections');
    expect(conns.map((c) => [c.name, c.kind]).sort()).toEqual([['Demo KVM host', 'morpheus'], ['Demo oVirt engine', 'ovirt']]);
    expect(conns.find((c) => c.kind === 'ovirt')?.password).toBe('••••');
    expect(await d.client.list('repositories')).toMatchObject([{name: 'Demo repository', path: opts.repositoryPath}]);
    expect(await d.client.testRepository(lab.repository.id)).toMatchObject({ok: true, writable: true});

    expect(await d.client.testConnection(lab.libvirt.connection)).toMatchObject({ok: true, authenticated: true});
    expect(await d.client.testConnection(lab.ovirt.connection)).toEqual({ok: true, reachable: true, authenticated: true, vms: 2});
    const libvirtInv = await d.client.inventory(lab.libvirt.connection, true);
    const web = libvirtInv.vms.find((v) => v.name === `${PREFIX}web`)!;
    expect(web).toMatchObject({state: 'running', cluster: 'demo', host: 'local'});
    expect(web.disks.map((k) => [k.key, k.format, k.size])).toEqual([['vda', 'qcow2', 256 * 2 ** 20], ['vdb', 'raw', 64 * 2 ** 20]]);
    expect(libvirtInv.vms.find((v) => v.name === `${PREFIX}db`)?.disks.map((k) => [k.format, k.size])).toEqual([['qcow2', 128 * 2 ** 20]]);

    // The simulator's password: generated, 0600 in the daemon's state directory, never logged.
    const pwFile = join(dir, 'state', 'demo', 'ovirt-sim.password');
    expect((await stat(pwFile)).mode & 0o777).toBe(0o600);
    const password = (await readFile(pwFile, 'utf8')).trim();
    expect(password).toMatch(/^[0-9a-f]{32}$/);
    expect(d.lines.join('\n')).not.toContain(password);
    expect(d.lines.some((l) => l.includes('Demo lab: VM') && l.includes('defining'))).toBe(true);
  });

  it('runs a job over the demo VMs of each connection', async () => {
    const repository = lab.repository.id;
    await d.client.create('jobs', {id: 'demo-kvm', name: 'Demo KVM', source: {connection: lab.libvirt.connection, vms: lab.libvirt.vms}, repository, retries: {count: 0}});
    const web01 = lab.ovirt.vms.find((v) => v.name === 'web01')!;
    await d.client.create('jobs', {id: 'demo-ovirt', name: 'Demo oVirt', source: {connection: lab.ovirt.connection, vms: [web01]}, repository, retries: {count: 0}});
    const [kvm, ovirt] = await Promise.all([d.client.startJob('demo-kvm'), d.client.startJob('demo-ovirt')]);
    for (const id of [kvm.id, ovirt.id]) {
      const s = await waitForSession(d.client, id);
      expect(['success', 'warning'], JSON.stringify(s.log)).toContain(s.state);
      expect(s.vms.every((v) => v.state === 'success' || v.state === 'warning')).toBe(true);
    }
    const points = await d.client.request<unknown[]>('GET', `/repositories/${repository}/restore-points`);
    expect(points.length).toBe(3);
  });

  it('restores demo-web to files: its system disk holds the ext4 file system, its data disk the data', async () => {
    const points = await d.client.request<{id: string; vmName: string}[]>('GET', `/repositories/${lab.repository.id}/restore-points`);
    const web = points.find((p) => p.vmName === `${PREFIX}web`)!;
    const out = join(dir, 'restored');
    const {id} = await d.client.request<{id: string}>('POST', '/restores', {restorePointId: web.id, repository: lab.repository.id, target: {kind: 'files', directory: out, format: 'raw'}});
    const record = await waitForSession(d.client, id);
    expect(record.state, JSON.stringify(record.log)).toBe('success');
    const files = record.log.find((l) => l.code === 'restore-finished')!.message.split(/files |, /).map((f) => f.replace(/\.$/, ''));
    const vda = files.find((f) => f.includes('vda'))!;
    const vdb = files.find((f) => f.includes('vdb'))!;
    const listing = await execa('debugfs', ['-R', 'ls -l /', vda]);
    expect(listing.stdout).toContain('Apache-2.0');
    const same = await execa('cmp', [vdb, join(opts.vmDir, `${PREFIX}web`, 'data.raw')], {reject: false});
    expect(same.exitCode, same.stdout).toBe(0);
  });

  it('is idempotent: a second call (vmbackup demo-lab) keeps everything and changes nothing', async () => {
    const cli = await vmbackup(['demo-lab', '--json', '--socket', join(dir, 'api.sock'), '--prefix', opts.prefix, '--vm-dir', opts.vmDir, '--sim-port', String(opts.simPort), '--repository', opts.repositoryPath, '--no-packages']);
    expect(cli.exitCode, cli.stderr).toBe(0);
    const again = JSON.parse(cli.stdout) as DemoLabResult;
    expect(again.changed).toEqual([]);
    expect(again.repository).toEqual(lab.repository);
    expect(again.libvirt.connection).toBe(lab.libvirt.connection);
    expect(again.ovirt.connection).toBe(lab.ovirt.connection);
    expect(again.libvirt.vms).toEqual(lab.libvirt.vms);
    expect(again.ovirt.vms).toEqual(lab.ovirt.vms);
    expect((await d.client.list('connections')).length).toBe(2);
    expect((await d.client.list('repositories')).length).toBe(1);
    expect(d.lines.some((l) => l.includes(`VM ${PREFIX}web: already defined`))).toBe(true);
  });

  it('follows a restarted simulator (new CA): the oVirt connection is updated and works', async () => {
    await execa('bash', [SCRIPT, 'down', '--prefix', 'nothing-', '--dir', opts.vmDir, '--sim-dir', join(dir, 'state', 'demo'), '--sim-port', String(opts.simPort)]);
    const again = await demoLab(opts);
    expect(again.changed).toEqual(['connection Demo oVirt engine']);
    expect(again.ovirt.caFingerprint).not.toBe(lab.ovirt.caFingerprint);
    expect(await d.client.testConnection(again.ovirt.connection)).toMatchObject({ok: true, vms: 2});
  });
});
