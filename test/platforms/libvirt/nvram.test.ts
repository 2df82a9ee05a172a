/**
 * The UEFI variable store (NVRAM) of a libvirt VM, end to end on real libvirt + QEMU + OVMF:
 * a UEFI VM whose varstore holds other bytes than the firmware's template (Microsoft's keys
 * enrolled) is backed up into a real repository; the restore point holds exactly the file's
 * bytes; an incremental stores nothing new for it; a restore as a new VM writes those bytes to a
 * new file that the new domain's <nvram> names, and the VM starts; a restore to files writes it;
 * attaching disks to an existing VM leaves its varstore alone unless `nvram` is named. A missing
 * varstore file is a warning and the backup goes on without it; an emulated TPM is a warning.
 */
import {readdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {backupVm, type VmBackupResult} from '../../../src/engine/backup-vm.js';
import {restoreVm} from '../../../src/engine/restore-vm.js';
import {parseDomainXml} from '../../../src/platforms/libvirt/domain-xml.js';
import {LibvirtPlatform} from '../../../src/platforms/libvirt/index.js';
import {writePlainFile} from '../../../src/platforms/image/plain-file.js';
import {LocalRunner} from '../../../src/transports/command-runner.js';
import type {SessionEvent} from '../../../src/platforms/types.js';
import {createRepository, type Repository} from '../../../src/repository/index.js';
import {ensureSshd, testSshTarget} from '../../lib/sshd.js';
import {createTestVm, destroyTestVm, ensureLibvirt, OVMF_VARS, OVMF_VARS_MS, TEST_PREFIX, virsh, type TestVm} from '../../lib/libvirt.js';

let vm: TestVm | undefined;
let platform: LibvirtPlatform;
let repo: Repository;
let work: string;
/** The varstore's bytes at the time of the first backup. */
let atBackup: Buffer;
let firstPoint: string;
const restoredVms: string[] = [];
const extraFiles: string[] = [];

function backup(): Promise<VmBackupResult> {
  return backupVm({platform, repository: repo, vmId: vm!.uuid, vmName: vm!.name});
}

async function storedNvram(restorePointId: string): Promise<Buffer> {
  const reader = await repo.openRestorePoint(restorePointId);
  const disk = await reader.openDisk('nvram');
  return disk.read(0, disk.size);
}

beforeAll(async () => {
  await ensureLibvirt();
  work = await mkdtemp(join(tmpdir(), 'nvram-'));
  repo = await createRepository(join(work, 'repo'), {chunkSize: 256 * 1024});
  platform = new LibvirtPlatform({checkpointPrefix: TEST_PREFIX, hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: '/var/tmp/vmbackup-test'});
  vm = await createTestVm(`uefi "q" 'x' ü ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true, uefi: {vars: OVMF_VARS_MS}});
  // OVMF may write variables while it starts (boot entries); paused, nothing writes the varstore.
  await new Promise((r) => setTimeout(r, 3000));
  await virsh('suspend', vm.uuid);
}, 60_000);

afterAll(async () => {
  for (const uuid of restoredVms) {
    await execa('virsh', ['-c', 'qemu:///system', 'destroy', uuid], {reject: false});
    await execa('virsh', ['-c', 'qemu:///system', 'undefine', uuid, '--nvram'], {reject: false});
  }
  for (const f of extraFiles) await rm(f, {force: true});
  await destroyTestVm(vm);
  await platform?.close();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('libvirt UEFI variable store (nvram)', () => {
  it('a backup of a running (paused) UEFI VM stores the varstore bytes with its path and template', async () => {
    atBackup = await readFile(vm!.nvram!);
    // The test means something only when the varstore is not the template libvirt would copy.
    expect(atBackup.equals(await readFile(OVMF_VARS))).toBe(false);
    const r = await backup();
    expect(r.error).toBeUndefined();
    expect(r.disks.nvram, 'nvram figures').toBeDefined();
    expect(r.disks.nvram!.size).toBe(atBackup.length);
    expect(r.events.some((e) => e.code === 'nvram-read')).toBe(true);
    firstPoint = r.restorePoint!.id;
    expect((await storedNvram(firstPoint)).equals(atBackup)).toBe(true);
    const reader = await repo.openRestorePoint(firstPoint);
    const disk = reader.manifest.disks.find((d) => d.key === 'nvram')!;
    expect(disk).toMatchObject({name: 'test_VARS.fd', format: 'raw', size: atBackup.length, details: {role: 'nvram', path: vm!.nvram, template: OVMF_VARS}});
  });

  it('an incremental stores nothing new for an unchanged varstore', async () => {
    const r = await backup();
    expect(r.error).toBeUndefined();
    expect(r.incremental).toBe(true);
    expect(r.disks.nvram!.newChunks).toBe(0);
    expect(r.disks.nvram!.reusedChunks).toBeGreaterThan(0);
    expect((await storedNvram(r.restorePoint!.id)).equals(atBackup)).toBe(true);
  });

  it('restored as a new VM, the varstore is a new 0600 file named by the new <nvram>, and the VM starts', async () => {
    const name = `uefi restored "q" ü ${process.pid}`;
    const result = await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'vm', name}});
    restoredVms.push(result.vmId!);
    const xml = parseDomainXml(await virsh('dumpxml', result.vmId!, '--inactive'));
    const path = xml.nvram?.path;
    expect(path).toBeDefined();
    expect(path).not.toBe(vm!.nvram);
    expect(path!.startsWith(join(vm!.dir, 'nvram dir') + '/')).toBe(true);
    expect(path!.endsWith('_VARS.fd')).toBe(true);
    expect(xml.nvram?.template).toBe(OVMF_VARS);
    expect(result.files).toContain(path);
    expect((await readFile(path!)).equals(atBackup)).toBe(true);
    expect((await stat(path!)).mode & 0o777).toBe(0o600);
    await virsh('start', result.vmId!);
    expect((await virsh('domstate', '--reason', result.vmId!)).trim()).toBe('running (booted)');
    await virsh('destroy', result.vmId!);
    // The original's varstore is untouched.
    expect((await readFile(vm!.nvram!)).equals(atBackup)).toBe(true);

    // The original VM's restore point is not restored over this one: it is another VM (its UUID).
    const refused = (await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'vm', name, overwrite: true}}).catch((e: unknown) => e)) as Error;
    expect(refused.message).toContain('is not the VM this restore point was taken of');
    // Restored again over the same VM (overwrite, from a restore point of that VM): the replaced
    // VM's own varstore path gets the bytes.
    const ofCopy = await backupVm({platform, repository: repo, vmId: result.vmId!, vmName: name});
    expect(ofCopy.error).toBeUndefined();
    const copyBytes = await readFile(path!);
    await writeFile(path!, Buffer.alloc(atBackup.length, 0x5a));
    const again = await restoreVm({platform, repository: repo, restorePointId: ofCopy.restorePoint!.id, target: {mode: 'vm', name, overwrite: true}});
    expect(again.vmId).toBe(result.vmId);
    expect(parseDomainXml(await virsh('dumpxml', result.vmId!, '--inactive')).nvram?.path).toBe(path);
    expect((await readFile(path!)).equals(copyBytes)).toBe(true);
  }, 60_000);

  it('a new VM restored without the varstore never shares the original one', async () => {
    const name = `uefi no nvram ${process.pid}`;
    const result = await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'vm', name}, disks: ['vda']});
    restoredVms.push(result.vmId!);
    const xml = parseDomainXml(await virsh('dumpxml', result.vmId!, '--inactive'));
    expect(xml.nvram?.path).not.toBe(vm!.nvram);
    expect(xml.nvram?.template).toBe(OVMF_VARS);
  });

  it("a new VM on a host without the original's varstore directory gets its varstore in libvirt's own directory", async () => {
    const reader = await repo.openRestorePoint(firstPoint);
    const config = reader.manifest.configuration!;
    const moved = {...config, text: config.text.split(vm!.nvram!).join('/nonexistent vmbackup dir/test_VARS.fd')};
    expect(moved.text).toContain('/nonexistent vmbackup dir/');
    const d = reader.manifest.disks.find((x) => x.key === 'nvram')!;
    const name = `uefi elsewhere ${process.pid}`;
    const restore = await platform.openRestore(
      {vmId: vm!.uuid, vmName: vm!.name, configuration: moved, disks: [{key: d.key, name: d.name, size: d.size, format: d.format, details: d.details}]},
      {mode: 'vm', name},
      {log: () => {}},
    );
    await restore.sinks[0]!.write(0, atBackup);
    const out = await restore.finish();
    restoredVms.push(out.vmId!);
    const path = parseDomainXml(await virsh('dumpxml', out.vmId!, '--inactive')).nvram!.path!;
    expect(path).toBe(`/var/lib/libvirt/qemu/nvram/uefi_elsewhere_${process.pid}_VARS.fd`);
    expect((await readFile(path)).equals(atBackup)).toBe(true);
  });

  it('a failed whole-VM restore removes the varstore file it wrote', async () => {
    const before = await readdir(join(vm!.dir, 'nvram dir'));
    // libvirt refuses a name with a slash at define time, after the varstore was written.
    const err = await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'vm', name: `bad/name ${process.pid}`}}).catch((e: unknown) => e);
    expect(String(err)).toMatch(/virsh .*define/);
    expect(await readdir(join(vm!.dir, 'nvram dir'))).toEqual(before);
  });

  it('restored to files, the varstore is one more raw file', async () => {
    const dir = join(work, `files 'q' ü`);
    const result = await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'disks-to-files', directory: dir, format: 'qcow2'}});
    const file = result.files!.find((f) => f.endsWith('-nvram.fd'));
    expect(file, result.files!.join(', ')).toBeDefined();
    expect((await readFile(file!)).equals(atBackup)).toBe(true);
    expect(result.files!.some((f) => f.endsWith('-vda.qcow2'))).toBe(true);
  });

  it("attaching disks to an existing VM leaves its varstore alone unless nvram is named; named, the VM must be shut off", async () => {
    const started: string[][] = [];
    const result = await restoreVm({
      platform,
      repository: repo,
      restorePointId: firstPoint,
      target: {mode: 'disks-to-vm', vmId: vm!.uuid},
      onEvent: (e) => e.type === 'vm-started' && started.push(e.disks.map((d) => d.key)),
    });
    expect(Object.keys(result.disks)).toEqual(['vda']);
    expect(started).toEqual([['vda']]);
    for (const f of result.files ?? []) extraFiles.push(f);
    expect((result.files ?? []).some((f) => f.includes('VARS') || f.endsWith('.fd'))).toBe(false);

    const err = await restoreVm({platform, repository: repo, restorePointId: firstPoint, target: {mode: 'disks-to-vm', vmId: vm!.uuid}, disks: ['nvram']}).catch((e: unknown) => e);
    expect(String(err)).toMatch(/UEFI variable store can only be replaced while it is shut off/);
    expect((await readFile(vm!.nvram!)).equals(atBackup)).toBe(true);
  });

  it('over SSH: the varstore is read from the host and written to it byte for byte', async () => {
    await ensureSshd();
    const t = testSshTarget({});
    const ssh = new LibvirtPlatform({
      checkpointPrefix: TEST_PREFIX,
      hosts: [{name: 'hvm-1', connection: {kind: 'ssh', host: t.host, port: t.port, user: t.user, identityFile: t.identityFile, knownHostsFile: t.knownHostsFile}}],
      scratchDir: '/var/tmp/vmbackup-test-remote',
      localScratchDir: '/var/tmp/vmbackup-test-appliance',
    });
    try {
      const b = await ssh.openBackup(vm!.uuid, {log: () => {}});
      let bytes: Buffer;
      try {
        const src = b.sources.find((s) => s.key === 'nvram')!;
        bytes = await src.read(0, src.size);
      } finally {
        await b.abort();
      }
      expect(bytes.equals(atBackup)).toBe(true);
      const disk = b.vm.disks.find((d) => d.key === 'nvram')!;
      const name = `uefi ssh ${process.pid}`;
      const restore = await ssh.openRestore(
        {vmId: vm!.uuid, vmName: vm!.name, configuration: b.configuration, disks: [{key: 'nvram', name: disk.name, size: disk.size, format: 'raw', details: disk.details}]},
        {mode: 'vm', name},
        {log: () => {}},
      );
      const sink = restore.sinks[0]!;
      await sink.write(0, bytes.subarray(0, 4096));
      await sink.write(4096, bytes.subarray(4096));
      const out = await restore.finish();
      restoredVms.push(out.vmId!);
      const path = parseDomainXml(await virsh('dumpxml', out.vmId!, '--inactive')).nvram!.path!;
      expect((await readFile(path)).equals(atBackup)).toBe(true);
    } finally {
      await ssh.close();
    }
  }, 60_000);

  it('an emulated TPM is a warning that says what to do', async () => {
    const other = await createTestVm(`uefi tpm ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}], {uefi: {vars: OVMF_VARS}, tpm: true});
    try {
      const events: SessionEvent[] = [];
      const b = await platform.openBackup(other.uuid, {log: (e) => events.push(e)});
      await b.abort();
      const w = events.find((e) => e.code === 'tpm-not-backed-up');
      expect(w?.severity).toBe('warning');
      expect(w?.message).toContain(`/var/lib/libvirt/swtpm/${other.uuid}/`);
      expect(w?.message).toMatch(/recovery keys/);
      expect(b.sources.map((s) => s.key)).toEqual(['vda', 'nvram']);
    } finally {
      await destroyTestVm(other);
    }
  });

  it('writing a varstore file: exclusive never overwrites; a replacement is whole, 0600, with no temporary file left', async () => {
    const dir = join(work, `write 'q' ü`);
    await execa('mkdir', ['-p', dir]);
    const path = join(dir, 'x_VARS.fd');
    const runner = new LocalRunner();
    const bytes = Buffer.from(Array.from({length: 3 * 65536 + 17}, (_, i) => (i * 7 + 3) & 0xff));
    await writeFile(path, 'old');
    await expect(writePlainFile(runner, path, bytes, {exclusive: true})).rejects.toThrow(/exists/);
    expect(await readFile(path, 'utf8')).toBe('old');
    await writePlainFile(runner, path, bytes, {exclusive: false});
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['x_VARS.fd']);
  });

  it('a missing varstore file is a warning naming it, and the backup goes on without it', async () => {
    const other = await createTestVm(`uefi gone ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}], {uefi: {vars: OVMF_VARS}});
    try {
      await rm(other.nvram!);
      const events: SessionEvent[] = [];
      const b = await platform.openBackup(other.uuid, {log: (e) => events.push(e)});
      try {
        expect(b.sources.map((s) => s.key)).toEqual(['vda']);
        expect(b.vm.disks.map((d) => d.key)).toEqual(['vda']);
      } finally {
        await b.abort();
      }
      const w = events.find((e) => e.code === 'nvram-unreadable');
      expect(w?.severity).toBe('warning');
      expect(w?.message).toContain(other.nvram!);
    } finally {
      await destroyTestVm(other);
    }
  });
});
