/**
 * Instant recovery end to end on the test bed's real libvirt: a real vmbackupd backs up a VM,
 * starts it again from the restore point (qcow2 overlays backed by the daemon's own NBD export),
 * a guest-like write goes into the running instant VM, `finish` moves it to storage with
 * `virsh blockcopy --pivot` while it runs, and the final disks must equal restore point + write.
 * The same over an SSH host (the test bed's sshd; the export reaches QEMU through `ssh -R`),
 * across a restart of the daemon (the export is served again, QEMU reconnects), and `stop`,
 * which must leave nothing behind. And restore verification, the job option built on it: each new
 * restore point booted without network, watched until its boot loader runs, photographed, discarded.
 */
import {randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createTestVm, destroyTestVm, ensureLibvirt, offlineWrite, virsh, type TestVm} from '../lib/libvirt.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {vmbackup} from '../lib/cli.js';
import {isolate, sleep, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import {consoleApi} from '../../src/console/api.js';
import {FakeApi} from '../console/fake-api.js';
import {outside, shapeOf} from '../lib/shape.js';
import {SmtpHarness} from '../notify/smtp-harness.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {partOf} from '../notify/rfc822.js';

/** The console's fake answers in the real daemon's shapes (test/console/instant.test.tsx relies on it). */
function sameShape(name: string, fake: unknown, real: unknown): void {
  expect(outside(shapeOf(fake), shapeOf(real)), name).toEqual([]);
}

let dir: string;
let d: RunningDaemon;
let vm: TestVm;
let point: string;
const tag = randomBytes(3).toString('hex');
const state = () => join(dir, 'state');
const sock = () => join(dir, 'api.sock');
const env = () => ({VMBACKUP_SOCKET: sock()});
/** Domains this file made (undefined again at the end, whatever happened). */
const made = new Set<string>();

/** A guest-like write or read through the device of a running domain (HMP qemu-io). */
async function hmpIo(domain: string, target: string, command: string): Promise<string> {
  const live = await virsh('dumpxml', domain);
  const alias = new RegExp(`<target dev='${target}'[^>]*/>[\\s\\S]*?<alias name='([^']+)'/>`).exec(live)?.[1];
  if (!alias) throw new Error(`no alias for ${target}`);
  const out = await virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d /machine/peripheral/${alias}/virtio-backend "${command}"`);
  if (/error|fail|not|denied|Pattern verification/i.test(out)) throw new Error(`HMP qemu-io said: ${out}`);
  return out;
}

async function domstate(name: string): Promise<string | undefined> {
  const r = await execa('virsh', ['-q', '-c', 'qemu:///system', 'domstate', name], {reject: false});
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

async function persistent(name: string): Promise<boolean> {
  return /Persistent:\s+yes/.test(await virsh('dominfo', name));
}

beforeAll(async () => {
  await Promise.all([ensureLibvirt(), ensureSshd()]);
  dir = await mkdtemp(join(tmpdir(), 'vmb-instant-'));
  vm = await createTestVm(`inst-${tag}`, [
    {target: 'vda', format: 'qcow2', sizeMiB: 32},
    {target: 'vdb', format: 'raw', sizeMiB: 8},
  ]);
  await offlineWrite(vm, 'vda', 'write -P 0x11 0 4M');
  await offlineWrite(vm, 'vda', 'write -P 0x12 20M 1M');
  await offlineWrite(vm, 'vdb', 'write -P 0x21 1M 2M');
  d = await startDaemon(state(), sock());
  const c = d.client;
  await isolate(c);
  await c.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
  await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'Local KVM', clusters: [{name: 'c1', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  const key = (await c.scanHostKey('127.0.0.1', SSHD_PORT)).keys.find((k) => k.type === 'ssh-ed25519')!;
  await c.create('connections', {
    id: 'remote', kind: 'morpheus', name: 'Remote KVM',
    clusters: [{name: 'c1', hosts: [{name: 'kvm-remote', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
  });
  await c.create('jobs', {id: 'j', name: 'Job', source: {connection: 'kvm', vms: [{id: vm.uuid}]}, repository: 'r', guestConsistency: false, retries: {count: 0}});
  const s = await waitForSession(c, (await c.startJob('j')).id);
  // 'warning': the raw disk is read whole (no bitmaps on raw images).
  expect(s.state, JSON.stringify(s.log)).toBe('warning');
  point = s.vms[0]!.restorePointId!;
}, 120_000);

afterAll(async () => {
  await d?.stop();
  for (const name of made) {
    await execa('virsh', ['-c', 'qemu:///system', 'destroy', name], {reject: false});
    await execa('virsh', ['-c', 'qemu:///system', 'undefine', name, '--nvram'], {reject: false});
  }
  await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('instant recovery on libvirt', () => {
  it('starts a VM from the backup in seconds, takes writes, moves it to storage while it runs: the final disks are the restore point plus the writes', async () => {
    const storage = join(dir, 'instant storage');
    const final = join(dir, 'production');
    await mkdir(storage);
    await mkdir(final);
    const name = `inst-${tag}-a`;
    made.add(name);
    const start = await vmbackup(['instant', 'start', 'r', '--vm', vm.name, '--name', name, '--storage', storage, '--no-network', '--json'], {env: env()});
    expect(start.exitCode, start.stderr).toBe(0);
    const r = JSON.parse(start.stdout) as {id: string; name: string; host: string; startedInMs: number};
    expect(r).toMatchObject({name, host: 'local'});
    const fake = new FakeApi();
    fake.points.r = await d.client.restorePoints('r');
    const real = consoleApi(d.client);
    sameShape('startInstant', await fake.startInstant({repository: 'r', restorePointId: point, network: false}), r);
    sameShape('instantRecoveries', await fake.instantRecoveries(), await real.instantRecoveries());
    expect(await domstate(name)).toBe('running');
    expect(await persistent(name)).toBe(false);
    const live = await virsh('dumpxml', name);
    expect(live).toContain("protocol='nbd'");
    expect(live).not.toContain('<interface');

    // The restore point is held while the VM reads it: forget refuses it.
    await expect(d.client.forgetRestorePoint('r', point)).rejects.toMatchObject({exitCode: 12});
    const list = await vmbackup(['instant', 'list'], {env: env()});
    expect(list.stdout).toContain(name);
    expect(list.stdout).toContain('running');

    // Reads come from the backup; a write lands in the overlay.
    await hmpIo(name, 'vda', 'read -P 0x12 20M 1M');
    await hmpIo(name, 'vda', 'write -P 0x77 2M 4M');
    await hmpIo(name, 'vdb', 'write -P 0x78 0 512k');
    const expectA = join(dir, 'expect-vda.raw');
    const expectB = join(dir, 'expect-vdb.raw');
    await copyFile(vm.disks[0]!.mirror, expectA);
    await copyFile(vm.disks[1]!.mirror, expectB);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 2M 4M', expectA]);
    await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0x78 0 512k', expectB]);

    sameShape('finishInstant', await fake.finishInstant('instant-1', final), await real.finishInstant(r.id, final));
    // The CLI waits for a move already under way.
    const fin = await vmbackup(['instant', 'finish', r.id, '--wait'], {env: env(), timeoutMs: 300_000});
    expect(fin.exitCode, fin.stderr).toBe(0);
    expect(await domstate(name)).toBe('running');
    expect(await persistent(name)).toBe(true);
    const files = (await readdir(final)).sort();
    expect(files).toEqual([expect.stringMatching(new RegExp(`^${name}-vda-\\d{8}T\\d{6}\\.qcow2$`)), expect.stringMatching(new RegExp(`^${name}-vdb-\\d{8}T\\d{6}\\.raw$`))]);
    // The overlays and the socket are gone, the export ended, the hold was released.
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    const inactive = await virsh('dumpxml', name, '--inactive');
    expect(inactive).toContain(join(final, files[0]!));
    expect(inactive).not.toContain('nbd');

    await virsh('destroy', name);
    for (const [file, expected, format] of [[files[0]!, expectA, 'qcow2'], [files[1]!, expectB, 'raw']] as const) {
      const cmp = await execa('qemu-img', ['compare', '-f', format, '-F', 'raw', join(final, file), expected], {reject: false});
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
    }
    const s = await d.client.session(r.id);
    expect(s).toMatchObject({state: 'success', trigger: 'instant', jobName: `Instant recovery of ${vm.name}`});
    expect(s.log.map((l) => l.code)).toEqual(expect.arrayContaining(['instant-started', 'instant-running', 'instant-migrating', 'instant-finished']));
    // Nothing holds the point any more.
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 300_000);

  it('over an SSH host: the export reaches QEMU through the tunnel, survives a restart of the daemon, and stop leaves nothing behind', async () => {
    const storage = join(dir, 'remote storage');
    await mkdir(storage);
    const name = `inst-${tag}-b`;
    made.add(name);
    const r = await d.client.startInstant({repository: 'r', restorePointId: point, connection: 'remote', name, storage, network: false});
    expect(r.host).toBe('kvm-remote');
    expect(await domstate(name)).toBe('running');
    const sockets = (await readdir(storage)).filter((f) => f.endsWith('.sock'));
    expect(sockets).toHaveLength(1);
    await hmpIo(name, 'vda', 'read -P 0x11 0 4M');

    // The daemon stops: the VM keeps running; started again, the daemon serves its disks again.
    expect(await d.stop()).toBe(0);
    expect(await domstate(name)).toBe('running');
    d = await startDaemon(state(), sock());
    for (let i = 0; i < 100; i++) {
      const s = await d.client.session(r.id);
      if (s.log.some((l) => l.code === 'instant-resumed' || l.code === 'instant-resume-failed')) break;
      await sleep(200);
    }
    const s1 = await d.client.session(r.id);
    expect(s1.state).toBe('running');
    expect(s1.log.map((l) => l.code)).toContain('instant-resumed');
    // QEMU reconnects to the export by itself: a read of data it never read before succeeds.
    let read: unknown;
    for (let i = 0; i < 120; i++) {
      read = await hmpIo(name, 'vdb', 'read -P 0x21 1M 2M').catch((err: unknown) => err);
      if (typeof read === 'string') break;
      await sleep(250);
    }
    expect(typeof read, String(read)).toBe('string');

    const fake = new FakeApi();
    fake.points.r = await d.client.restorePoints('r');
    const started = await fake.startInstant({repository: 'r', restorePointId: point, network: false});
    const stop = await vmbackup(['instant', 'stop', r.id, '--json'], {env: env()});
    expect(stop.exitCode, stop.stderr).toBe(0);
    sameShape('stopInstant', await fake.stopInstant(started.id), JSON.parse(stop.stdout));
    expect(await domstate(name)).toBeUndefined();
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    const s2 = await d.client.session(r.id);
    expect(s2.state).toBe('success');
    expect(s2.log.at(-1)?.code).toBe('instant-discarded');
    expect(existsSync(join(state(), 'instant-recoveries.json'))).toBe(true);
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
  }, 300_000);

  it('refuses what it cannot do with a clear error and leaves nothing: a name in use, a missing directory, a bad name, an unknown VM or id', async () => {
    const storage = join(dir, 'refused');
    await mkdir(storage);
    const taken = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--name', vm.name, '--storage', storage], {env: env()});
    expect(taken.exitCode).toBe(17);
    expect(taken.stderr).toContain(`A VM named ${vm.name} already exists`);
    const nodir = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--storage', join(dir, 'nope')], {env: env()});
    expect(nodir.exitCode).toBe(16);
    expect(nodir.stderr).toContain('does not exist');
    const badName = await vmbackup(['instant', 'start', 'r', '--restore-point', point, '--name', '../x'], {env: env()});
    expect(badName.exitCode).toBe(17);
    expect(await readdir(storage)).toEqual([]);
    expect(await d.client.instantRecoveries()).toEqual([]);
    expect((await readdir(join(dir, 'repo', 'points', point))).filter((f) => f.startsWith('held-'))).toEqual([]);
    const noVm = await vmbackup(['instant', 'start', 'r', '--vm', 'no-such-vm'], {env: env()});
    expect(noVm.exitCode).toBe(16);
    const unknown = await vmbackup(['instant', 'stop', 'instant-nope'], {env: env()});
    expect(unknown.exitCode).toBe(16);
  }, 120_000);
});

/**
 * A boot sector that does what a boot loader does first: reads on from its disk through the BIOS
 * (int 13h extended read of 127 sectors from LBA 1 to 1000:0000), then halts. SeaBIOS reads a
 * disk without one (all zeros) once, 512 bytes, and gives up.
 *   cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,7C00h; sti; mov si,dap; mov ah,42h; int 13h;
 *   l: hlt; jmp l;  dap: db 10h,0; dw 127, 0, 1000h; dq 1;  ...  dw 0AA55h
 */
function bootSector(): Buffer {
  const code = [0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0xbe, 0x15, 0x7c, 0xb4, 0x42, 0xcd, 0x13, 0xf4, 0xeb, 0xfd];
  const dap = [0x10, 0, 0x7f, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 0, 0, 0, 0];
  const sector = Buffer.alloc(512);
  Buffer.from([...code, ...dap]).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

async function verifyDomains(): Promise<string[]> {
  return (await virsh('list', '--all', '--name')).split('\n').map((l) => l.trim()).filter((n) => n.includes('-verify-'));
}

describe('restore verification (a job option)', () => {
  let bootable: TestVm;
  let blank: TestVm;
  let smtp: SmtpHarness;

  beforeAll(async () => {
    // No guest agent channel: the boot loader is then all there is to wait for.
    bootable = await createTestVm(`vboot-${tag}`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}], {agent: false});
    blank = await createTestVm(`vblank-${tag}`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}], {agent: false});
    const sector = join(dir, 'bootsector.bin');
    await writeFile(sector, bootSector());
    await offlineWrite(bootable, 'vda', `write -s ${sector} 0 512`);
    await offlineWrite(bootable, 'vda', 'write -P 0x5a 512 64k');
    smtp = await new SmtpHarness().start();
    await d.client.setEmail({transport: 'smtp', host: '127.0.0.1', port: smtp.port, security: 'none', from: 'vmbackup@example.test', recipients: ['ops@example.test'], timeoutSeconds: 5});
    await d.client.create('jobs', {
      id: 'jv', name: 'Verified', source: {connection: 'kvm', vms: [{id: bootable.uuid}, {id: blank.uuid}]}, repository: 'r', guestConsistency: false, retries: {count: 0},
      restoreVerification: {enabled: true, timeoutSeconds: 10},
    });
  }, 120_000);

  afterAll(async () => {
    await smtp?.stop();
    await destroyTestVm(bootable);
    await destroyTestVm(blank);
  });

  it('boots each new restore point without network: the bootable one passes with a screenshot, the blank one fails; the report mail shows both; nothing is left on the host', async () => {
    const s = await waitForSession(d.client, (await d.client.startJob('jv')).id);
    const row = (v: TestVm) => s.vms.find((x) => x.id === v.uuid)!;
    expect(row(bootable).verification, JSON.stringify(s.log)).toMatchObject({result: 'passed', signal: 'boot-loader', connection: 'kvm', host: 'local'});
    expect(row(bootable).verification!.readBytes).toBeGreaterThanOrEqual(512 + 127 * 512);
    expect(row(bootable).state).toBe('success');
    expect(row(blank).verification).toMatchObject({result: 'failed', readBytes: 512});
    expect(row(blank).verification!.message).toContain('did not hand over to a boot loader within 10 s');
    // The backup is there, but the point does not boot: a warning for the VM and the session.
    expect(row(blank).state).toBe('warning');
    expect(s.state).toBe('warning');
    expect(s.log.filter((l) => l.code.startsWith('verify-')).map((l) => `${l.code} ${l.vm}`)).toEqual([
      `verify-started ${bootable.name}`, `verify-passed ${bootable.name}`, `verify-started ${blank.name}`, `verify-failed ${blank.name}`,
    ]);

    // Screenshots: PNG, readable by root only; the throw-away VMs and their overlays are gone.
    const shot = join(state(), 'screenshots', row(bootable).verification!.screenshot!);
    const png = await readFile(shot);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect((await stat(shot)).mode & 0o777).toBe(0o600);
    expect(await verifyDomains()).toEqual([]);
    for (const v of [bootable, blank]) expect((await readdir(v.dir)).filter((f) => f.includes('-instant-') || f.endsWith('.sock'))).toEqual([]);
    expect((await readdir(join(dir, 'repo', 'points', row(bootable).restorePointId!))).filter((f) => f.startsWith('held-'))).toEqual([]);

    // The report: each VM's boot check, and the screenshots inline.
    const [mail] = await smtp.waitFor(1);
    const text = partOf(mail!.mail, 'text/plain')!;
    expect(text).toContain('Boot check passed: the firmware handed over to the boot loader');
    expect(text).toContain('Boot check failed: the firmware did not hand over');
    const html = partOf(mail!.mail, 'text/html')!;
    const images = mail!.mail.parts.filter((p) => p.contentType === 'image/png');
    expect(images.length).toBe(2);
    for (const img of images) {
      const cid = /<([^>]+)>/.exec(img.headers.get('content-id') ?? '')?.[1];
      expect(html).toContain(`cid:${cid}`);
    }
    expect(images.map((i) => i.bytes.equals(png))).toContain(true);
  }, 300_000);

  it('a daemon killed while a restore point boots discards that VM when it starts again', async () => {
    const job = await d.client.get<Record<string, unknown>>('jobs', 'jv');
    await d.client.update('jobs', 'jv', {...job, source: {connection: 'kvm', vms: [{id: blank.uuid}]}, restoreVerification: {enabled: true, timeoutSeconds: 600}});
    await d.client.startJob('jv');
    for (let i = 0; i < 600 && (await verifyDomains()).length === 0; i++) await sleep(200);
    expect(await verifyDomains()).toHaveLength(1);
    await d.kill();
    expect(await verifyDomains()).toHaveLength(1);
    d = await startDaemon(state(), sock());
    for (let i = 0; i < 300 && (await verifyDomains()).length > 0; i++) await sleep(200);
    expect(await verifyDomains()).toEqual([]);
    expect((await readdir(blank.dir)).filter((f) => f.includes('-instant-') || f.endsWith('.sock'))).toEqual([]);
    expect(d.lines.some((l) => l.includes('left running by an earlier start of the daemon, was discarded'))).toBe(true);
  }, 300_000);
});

describe('an oVirt VM started on a libvirt host (cross-platform), and its boot check', () => {
  let sim: Simulator;
  const name = `ovm-${tag}`;

  beforeAll(async () => {
    sim = await startSimulator({
      delayMs: 5,
      vms: [{
        name, status: 'down', memory: 128 * 2 ** 20, cpu: {sockets: 2, cores: 1, threads: 1}, biosType: 2,
        nics: [{name: 'nic1', mac: '56:6f:1a:2b:3c:01', network: 'ovirtmgmt', type: 3}],
        disks: [
          {alias: `${name}_os`, size: 8 * 2 ** 20, format: 'cow', bootable: true, iface: 'virtio'},
          {alias: `${name}_data`, size: 4 * 2 ** 20, format: 'cow', iface: 'virtio_scsi'},
        ],
      }],
    });
    const [os, data] = sim.disksOf(name);
    sim.guestWrite(os!.id, 0, bootSector());
    sim.guestWrite(os!.id, 512, Buffer.alloc(64 * 1024, 0x5a));
    sim.guestWrite(data!.id, 2 ** 20, Buffer.alloc(256 * 1024, 0x77));
    await d.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, caFingerprint: sim.caFingerprint});
    await d.client.create('jobs', {
      id: 'jo', name: 'oVirt verified', source: {connection: 'engine', vms: [{id: sim.vm(name).id}]}, repository: 'r', retries: {count: 0},
      restoreVerification: {enabled: true, timeoutSeconds: 10, connection: 'kvm'},
    });
  }, 120_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('boots the oVirt restore point on the libvirt connection for its boot check (the boot loader runs; no agent answers), and starts it as an instant VM with the OVF’s CPUs, memory, disk buses and data', async () => {
    const s = await waitForSession(d.client, (await d.client.startJob('jo')).id);
    const row = s.vms[0]!;
    // An oVirt VM has a guest agent channel: a boot loader alone (no operating system here) is a warning.
    expect(row.verification, JSON.stringify(s.log)).toMatchObject({result: 'warning', signal: 'boot-loader', connection: 'kvm', host: 'local'});
    expect(row.verification!.message).toContain('the firmware handed over to the boot loader on the disk, which read 64 KiB, but the guest agent did not answer within 10 s');
    expect(row.state).toBe('warning');
    expect(await verifyDomains()).toEqual([]);

    // The same point as an instant VM on the libvirt host, by the CLI.
    const storage = join(dir, 'ovirt instant');
    await mkdir(storage);
    const vmName = `ovm-${tag}-i`;
    made.add(vmName);
    const r = await vmbackup(['instant', 'start', 'r', '--restore-point', row.restorePointId!, '--connection', 'kvm', '--name', vmName, '--storage', storage, '--no-network', '--json'], {env: env()});
    expect(r.exitCode, r.stderr).toBe(0);
    const live = await virsh('dumpxml', vmName);
    expect(live).toMatch(/<vcpu[^>]*>2<\/vcpu>/);
    expect(live).toContain("<topology sockets='2' dies='1' cores='1' threads='1'/>");
    expect(live).toMatch(/<memory unit='KiB'>131072<\/memory>/);
    expect(live).toMatch(/machine='pc-q35/);
    expect(live).toMatch(/<target dev='vda' bus='virtio'\/>/);
    expect(live).toMatch(/<target dev='sda' bus='scsi'\/>/);
    expect(live).toContain("model='virtio-scsi'");
    expect(live).not.toContain('<interface');
    // The guest sees the oVirt disks' data (read through the overlay from the export).
    await hmpIo(vmName, 'vda', 'read -P 0x5a 512 64k');
    const id = (JSON.parse(r.stdout) as {id: string}).id;
    const stop = await vmbackup(['instant', 'stop', id], {env: env()});
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(await domstate(vmName)).toBeUndefined();
    expect(await readdir(storage)).toEqual([]);
  }, 300_000);
});
