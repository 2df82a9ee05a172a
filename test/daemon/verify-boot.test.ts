/**
 * Restore verification (a job option, built on instant recovery) end to end on the test bed's
 * real libvirt and a real vmbackupd: each new restore point is booted without network, watched
 * until its boot loader runs, photographed and discarded, with the result in the session and its
 * report mail (a real SMTP server); a daemon killed meanwhile discards the VM at its next start.
 * And an oVirt VM's point (the engine simulator) started on the libvirt host from its OVF.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createTestVm, destroyTestVm, domstate, ensureLibvirt, hmpIo, offlineWrite, virsh, type TestVm} from '../lib/libvirt.js';
import {vmbackup} from '../lib/cli.js';
import {isolate, sleep, startDaemon, waitForSession, type RunningDaemon} from './helpers.js';
import {SmtpHarness} from '../notify/smtp-harness.js';
import {partOf} from '../notify/rfc822.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';

let dir: string;
let d: RunningDaemon;
const tag = randomBytes(3).toString('hex');
const state = () => join(dir, 'state');
const sock = () => join(dir, 'api.sock');
const env = () => ({VMBACKUP_SOCKET: sock()});
/** Instant VMs this file made (undefined again at the end, whatever happened). */
const made = new Set<string>();

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-verify-'));
  d = await startDaemon(state(), sock());
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: 'Repo', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'Local KVM', clusters: [{name: 'c1', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
}, 120_000);

afterAll(async () => {
  await d?.stop();
  for (const name of made) {
    await virsh('destroy', name).catch(() => {});
  }
  for (const name of await verifyDomains().catch(() => [])) await virsh('destroy', name).catch(() => {});
  if (dir) await rm(dir, {recursive: true, force: true});
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
    // The rate is the backups' own, not diluted by the boot checks after them (≥ 10 s here).
    expect(s.totals.rateBytesPerSec).toBeGreaterThan(Math.round((s.totals.readBytes / s.totals.durationMs) * 1000));
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
    // Listed is not yet running: libvirt lists a domain while its QEMU still starts and connects to
    // the daemon's NBD socket (a kill then fails that start: nothing left to discard). Its CPUs
    // run once every disk is open.
    const running = async () => {
      const [name] = await verifyDomains();
      return name !== undefined && (await domstate(name).catch(() => '')) === 'running';
    };
    for (let i = 0; i < 600 && !(await running()); i++) await sleep(200);
    expect(await running()).toBe(true);
    expect(await verifyDomains()).toHaveLength(1);
    await d.kill();
    const leftByTheKill = await verifyDomains();
    d = await startDaemon(state(), sock());
    expect(leftByTheKill).toHaveLength(1);
    // The domain goes first, its overlays and socket after it: wait for the discard to be done.
    const discarded = () => d.lines.some((l) => l.includes('left running by an earlier start of the daemon, was discarded'));
    for (let i = 0; i < 300 && !discarded(); i++) await sleep(200);
    expect(discarded()).toBe(true);
    expect(await verifyDomains()).toEqual([]);
    expect((await readdir(blank.dir)).filter((f) => f.includes('-instant-') || f.endsWith('.sock'))).toEqual([]);
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
