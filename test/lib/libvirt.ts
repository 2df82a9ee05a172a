/**
 * Test-bed helpers for the libvirt adapter: define VMs with no OS and several disks (qcow2, raw),
 * write known data into a disk of a running VM (HMP qemu-io on the device's QOM path, the form
 * verified in docs/reference/libvirt-backup.md §8) or of a shut-off image (qemu-io), and keep a raw "mirror" of
 * every disk that receives the same writes, so a test can compare what it restored with what the
 * disk held, without reading the live image behind QEMU's back.
 *
 * Every VM lives under /var/lib/vmbackup-test/vms; destroyTestVm removes the domain (with its
 * checkpoint metadata) and the files. ensureLibvirt() runs test/setup.d/20-libvirt.sh.
 */
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, open, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import type {CheckpointRecord, DiskSink, DiskSource, PlatformAdapter, SessionEvent, SourceExtent, VmBackup} from '../../src/platforms/types.js';

const SCRIPT = fileURLToPath(new URL('../setup.d/20-libvirt.sh', import.meta.url));
export const VMS_DIR = '/var/lib/vmbackup-test/vms';
const MiB = 1024 * 1024;

export async function ensureLibvirt(): Promise<void> {
  await execa('bash', [SCRIPT]);
}

export async function virsh(...args: string[]): Promise<string> {
  return (await execa('virsh', ['-q', '-c', 'qemu:///system', ...args])).stdout;
}

export interface TestDisk {
  target: string;
  format: 'qcow2' | 'raw';
  path: string;
  size: number;
  /** A raw file that receives the same writes as the disk. */
  mirror: string;
}

export interface TestVm {
  name: string;
  uuid: string;
  dir: string;
  disks: TestDisk[];
  /** The UEFI variable store file (VMs made with `uefi`). */
  nvram?: string;
}

/** Debian's ovmf package (test/packages.txt): firmware code and the pristine variable store. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** The same size as OVMF_VARS, with Microsoft's Secure Boot keys enrolled: other bytes than the template. */
export const OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

export async function createTestDisk(dir: string, target: string, format: 'qcow2' | 'raw', sizeMiB: number): Promise<TestDisk> {
  const path = join(dir, `${target}.${format}`);
  const size = sizeMiB * MiB;
  await execa('qemu-img', ['create', '-q', '-f', format, path, String(size)]);
  const mirror = join(dir, `mirror-${target}.raw`);
  await execa('truncate', ['-s', String(size), mirror]);
  return {target, format, path, size, mirror};
}

export function diskXml(d: TestDisk): string {
  return `<disk type='file' device='disk'>
      <driver name='qemu' type='${d.format}' discard='unmap'/>
      <source file='${esc(d.path)}'/>
      <target dev='${d.target}' bus='virtio'/>
    </disk>`;
}

export async function createTestVm(
  name: string,
  disks: {target: string; format: 'qcow2' | 'raw'; sizeMiB: number}[],
  opts: {start?: boolean; uefi?: {vars: string}; tpm?: boolean; agent?: boolean} = {},
): Promise<TestVm> {
  await mkdir(VMS_DIR, {recursive: true});
  const dir = await mkdtemp(join(VMS_DIR, 'vm-'));
  try {
    return await defineTestVm(dir, name, disks, opts);
  } catch (err) {
    await rm(dir, {recursive: true, force: true});
    throw err;
  }
}

async function defineTestVm(
  dir: string,
  name: string,
  disks: {target: string; format: 'qcow2' | 'raw'; sizeMiB: number}[],
  opts: {start?: boolean; uefi?: {vars: string}; tpm?: boolean; agent?: boolean},
): Promise<TestVm> {
  const made: TestDisk[] = [];
  for (const d of disks) made.push(await createTestDisk(dir, d.target, d.format, d.sizeMiB));
  // OVMF under this test bed's (nested) KVM stops at once with "KVM internal error ... emulation
  // failure"; under TCG it boots to its boot manager, which is all the tests need.
  const type = existsSync('/dev/kvm') && !opts.uefi ? 'kvm' : 'qemu';
  // UEFI: the varstore starts as a copy of `vars` (the <nvram template> stays the pristine one).
  const nvram = opts.uefi ? join(dir, 'nvram dir', 'test_VARS.fd') : undefined;
  if (nvram) {
    await mkdir(join(dir, 'nvram dir'));
    await execa('cp', ['--', opts.uefi!.vars, nvram]);
  }
  const firmware = nvram
    ? `<loader readonly='yes' type='pflash'>${OVMF_CODE}</loader><nvram template='${OVMF_VARS}'>${esc(nvram)}</nvram>`
    : '';
  const xml = `<domain type='${type}'>
  <name>${esc(name)}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>${firmware}<boot dev='hd'/></os>
  ${nvram ? '<features><acpi/></features>' : ''}
  <on_poweroff>destroy</on_poweroff>
  <devices>
    ${made.map(diskXml).join('\n    ')}
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    ${opts.agent === false ? '' : "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"}${opts.tpm ? "\n    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>" : ''}
  </devices>
</domain>
`;
  const file = join(dir, 'domain.xml');
  await writeFile(file, xml);
  await virsh('define', file);
  const uuid = (await virsh('domuuid', name)).trim();
  if (opts.start) {
    // Only the VM this call defined is undefined again (never one of the same name).
    await virsh('start', uuid).catch(async (err: unknown) => {
      await execa('virsh', ['-c', 'qemu:///system', 'undefine', uuid], {reject: false});
      throw err;
    });
  }
  return {name, uuid, dir, disks: made, ...(nvram ? {nvram} : {})};
}

export async function destroyTestVm(vm: TestVm | undefined): Promise<void> {
  if (!vm) return;
  await execa('virsh', ['-c', 'qemu:///system', 'destroy', vm.uuid], {reject: false});
  await execa('virsh', ['-c', 'qemu:///system', 'undefine', vm.uuid, '--checkpoints-metadata', '--nvram'], {reject: false});
  await rm(vm.dir, {recursive: true, force: true});
}

function disk(vm: TestVm, target: string): TestDisk {
  const d = vm.disks.find((x) => x.target === target);
  if (!d) throw new Error(`test VM has no disk ${target}`);
  return d;
}

/**
 * A guest-like write into a running VM's disk, e.g. "write -P 0xaa 0 1M" or "write -z 4M 64k",
 * through the device (above the backup's copy-before-write filter), mirrored into the raw copy.
 */
export async function guestWrite(vm: TestVm, target: string, command: string): Promise<void> {
  const live = await virsh('dumpxml', vm.uuid);
  const re = new RegExp(`<target dev='${target}'[^>]*/>[\\s\\S]*?<alias name='([^']+)'/>`);
  const alias = re.exec(live)?.[1];
  if (!alias) throw new Error(`no alias for ${target} in the live XML`);
  const out = await virsh('qemu-monitor-command', vm.uuid, '--hmp', `qemu-io -d /machine/peripheral/${alias}/virtio-backend "${command}"`);
  if (/error|fail|not|denied/i.test(out)) throw new Error(`HMP qemu-io said: ${out}`);
  await execa('qemu-io', ['-f', 'raw', '-c', command, disk(vm, target).mirror]);
}

/** A write into the image of a shut-off VM (qemu-io keeps its recording bitmaps up to date). */
export async function offlineWrite(vm: TestVm, target: string, command: string): Promise<void> {
  const d = disk(vm, target);
  await execa('qemu-io', ['-f', d.format, '-c', command, d.path]);
  await execa('qemu-io', ['-f', 'raw', '-c', command, d.mirror]);
}

/**
 * Applies a DiskSource onto a raw image file, the way a restore replays a restore point: 'data'
 * is read and written, 'zero' written as zeros, 'unchanged' left as the file has it. Returns the
 * extents it saw. Creates the file (sparse, all zeros) when `create` is set.
 */
export async function applySource(source: DiskSource, path: string, opts: {create?: boolean; stopAfterBytes?: number} = {}): Promise<SourceExtent[]> {
  if (opts.create) await execa('truncate', ['-s', String(source.size), path]);
  const fh = await open(path, 'r+');
  const seen: SourceExtent[] = [];
  let readBytes = 0;
  try {
    for await (const e of source.extents()) {
      seen.push({...e});
      for (let off = e.offset; off < e.offset + e.length; off += source.maxReadSize) {
        const len = Math.min(source.maxReadSize, e.offset + e.length - off);
        if (e.kind === 'data') {
          const buf = await source.read(off, len);
          await fh.write(buf, 0, len, off);
          readBytes += len;
          if (opts.stopAfterBytes !== undefined && readBytes >= opts.stopAfterBytes) return seen;
        } else if (e.kind === 'zero') {
          await fh.write(Buffer.alloc(len), 0, len, off);
        }
      }
    }
  } finally {
    await fh.close();
  }
  return seen;
}

/** True when qemu-img compare finds the two images identical (content, not allocation). */
export async function imagesIdentical(a: string, b: string, fa = 'raw', fb = 'raw'): Promise<{same: boolean; output: string}> {
  const r = await execa('qemu-img', ['compare', '-f', fa, '-F', fb, a, b], {reject: false});
  return {same: r.exitCode === 0, output: `${r.stdout}${r.stderr}`};
}

export async function copyFile(from: string, to: string): Promise<void> {
  await execa('cp', ['--sparse=always', from, to]);
}

/** Replays a raw image file into a DiskSink as a restore would: zero chunks as zero(), the rest as write(). */
export async function writeRawIntoSink(rawPath: string, sink: DiskSink): Promise<void> {
  const fh = await open(rawPath, 'r');
  try {
    const chunk = Math.min(MiB, sink.maxWriteSize);
    for (let off = 0; off < sink.size; off += chunk) {
      const len = Math.min(chunk, sink.size - off);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, off);
      if (buf.every((b) => b === 0)) await sink.zero(off, len);
      else await sink.write(off, buf);
    }
  } finally {
    await fh.close();
  }
  await sink.flush();
  await sink.close();
}

/**
 * One backup as the engine would run it, replayed onto raw files: a full source creates the file,
 * an incremental one patches a copy of the previous file of that disk (kept in `restored`).
 * Aborts on failure, completes on success. Returns the events and every disk's extents.
 */
export async function backupAndApply(
  platform: PlatformAdapter,
  vm: TestVm,
  restored: Map<string, string>,
  base: CheckpointRecord | undefined,
  extra: {forceFull?: string[]} = {},
): Promise<{backup: VmBackup; events: SessionEvent[]; extents: Map<string, SourceExtent[]>}> {
  const events: SessionEvent[] = [];
  const backup = await platform.openBackup(vm.uuid, {baseCheckpoint: base, log: (e) => events.push(e), ...extra});
  const extents = new Map<string, SourceExtent[]>();
  try {
    for (const s of backup.sources) {
      const out = join(vm.dir, `restored-${s.key}-${Date.now()}.raw`);
      if (s.incremental) await copyFile(restored.get(s.key)!, out);
      extents.set(s.key, await applySource(s, out, {create: !s.incremental}));
      restored.set(s.key, out);
    }
  } catch (err) {
    await backup.abort();
    throw err;
  }
  await backup.complete();
  return {backup, events, extents};
}

/**
 * The checkpoint prefix the adapter tests use: other suites (the daemon's reconciler) clean up
 * checkpoints of the default prefix on the same libvirtd, and must not see these.
 */
export const TEST_PREFIX = 'vmbtest-';

/**
 * Makes every session directory under `scratchDir` look like the session of a process that died
 * (its lease names a pid that has exited), as after a crash or kill -9: tests that simulate a
 * crash by dropping a platform instance inside the still-running test process use it.
 */
export async function expireScratchLeases(scratchDir: string): Promise<void> {
  const {readdir, writeFile} = await import('node:fs/promises');
  const {hostname} = await import('node:os');
  const deadProc = execa('true');
  const deadPid = deadProc.pid!;
  await deadProc;
  for (const entry of await readdir(scratchDir).catch(() => [] as string[])) {
    const marker = join(scratchDir, entry, '.vmbackup-scratch');
    const text = await import('node:fs/promises').then((fs) => fs.readFile(marker, 'utf8')).catch(() => undefined);
    if (text === undefined) continue;
    await writeFile(marker, `${JSON.stringify({pid: deadPid, pidStart: '1', host: hostname(), tag: 'expired'})}\n`);
  }
}

/** A guest-like write or read through the device of a running domain (HMP qemu-io). */
export async function hmpIo(domain: string, target: string, command: string): Promise<string> {
  const live = await virsh('dumpxml', domain);
  const alias = new RegExp(`<target dev='${target}'[^>]*/>[\\s\\S]*?<alias name='([^']+)'/>`).exec(live)?.[1];
  if (!alias) throw new Error(`no alias for ${target}`);
  const out = await virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d /machine/peripheral/${alias}/virtio-backend "${command}"`);
  if (/error|fail|not|denied|Pattern verification/i.test(out)) throw new Error(`HMP qemu-io said: ${out}`);
  return out;
}

/** A domain's state (running, shut off, …), or undefined when there is none. */
export async function domstate(name: string): Promise<string | undefined> {
  const r = await execa('virsh', ['-q', '-c', 'qemu:///system', 'domstate', name], {reject: false});
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}
