/**
 * Restore without waiting: the time from `vmbackup export` (compiled, as the appliance runs it)
 * to the first byte a client reads, for a 3 GiB disk holding 824 MiB of data and for a 100 GiB
 * sparse disk, against what an administrator waits for without it — a full restore to a file
 * first — and against qemu-nbd serving the restored raw file (the peer: QEMU's own server on the
 * plain image). Then a whole copy (nbdcopy to a sparse file) from each, with MiB/s. Then the
 * time to a running instant VM (a real daemon, the test bed's libvirt: request → the VM runs on
 * qcow2 overlays backed by the export) against a restore of the VM followed by `virsh start`.
 *
 *   node --import tsx bench/export.ts
 */
import {execa, type ResultPromise} from 'execa';
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createRepository} from '../src/repository/index.js';
import {NbdClient} from '../src/transports/nbd/index.js';
import {machineLine, MiB} from './lib/measure.js';
import {randomUUID} from 'node:crypto';
import {mkdir} from 'node:fs/promises';
import {ensureLibvirt} from '../test/lib/libvirt.js';
import {startDaemon, waitForSession} from '../test/daemon/helpers.js';

const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', 'qemu:///system', ...args], {reject: false});

/**
 * Request → running instant VM, and the way without it: restore the VM (a new VM on this host),
 * then `virsh start`. Both VMs are removed afterwards.
 */
async function instantVm(dir: string, repoPath: string, point: string, vmName: string): Promise<{instant: number; restore: number}> {
  await ensureLibvirt();
  const storage = path.join(dir, 'storage');
  await mkdir(storage, {recursive: true});
  const d = await startDaemon(path.join(dir, 'state'), path.join(dir, 'api.sock'));
  try {
    const c = d.client;
    await c.create('repositories', {id: 'r', name: 'Bench', path: repoPath});
    await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'Local', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    const t0 = performance.now();
    const r = await c.startInstant({repository: 'r', restorePointId: point, connection: 'kvm', name: `${vmName}-instant`, storage, network: false});
    const instant = performance.now() - t0;
    if (!/running/.test((await virsh('domstate', r.name)).stdout)) throw new Error('the instant VM does not run');
    await c.stopInstant(r.id);
    const r0 = performance.now();
    const s = await c.startRestore({repository: 'r', restorePointId: point, connection: 'kvm', target: {kind: 'new', name: `${vmName}-restored`, storageDomain: storage}});
    const done = await waitForSession(c, s.id);
    if (done.state !== 'success') throw new Error(`restore ${done.state}: ${done.reason}`);
    await virsh('start', `${vmName}-restored`);
    const restore = performance.now() - r0;
    await virsh('destroy', `${vmName}-restored`);
    await virsh('undefine', `${vmName}-restored`);
    return {instant, restore};
  } finally {
    await d.stop();
  }
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GiB = 1024 * MiB;

function block(seed: number, text: boolean): Buffer {
  const b = Buffer.allocUnsafe(MiB);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < MiB; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(text ? 0x20202020 + (x & 0x0f0f0f0f) : x, i);
  }
  return b;
}

/** A small libvirt domain (TCG, no network) whose one disk is `vda`, as a backup records it. */
function domainXml(name: string): string {
  return `<domain type='qemu'><name>${name}</name><uuid>${randomUUID()}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os><on_poweroff>destroy</on_poweroff>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/${name}.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>`;
}

async function writeDisk(repo: Awaited<ReturnType<typeof createRepository>>, vmName: string, size: number, dataMiB: (i: number) => boolean): Promise<string> {
  const w = await repo.beginRestorePoint({vmId: vmName, vmName, platform: 'libvirt', configuration: {kind: 'libvirt-domain-xml', text: domainXml(vmName)}});
  try {
    const d = await w.addDisk({key: 'vda', name: 'vda', size});
    const chunks = size / MiB;
    let zeroFrom = -1;
    for (let i = 0; i <= chunks; i++) {
      const data = i < chunks && dataMiB(i);
      if (!data && i < chunks) {
        if (zeroFrom < 0) zeroFrom = i;
        continue;
      }
      if (zeroFrom >= 0) {
        await d.zero(zeroFrom * MiB, (i - zeroFrom) * MiB);
        zeroFrom = -1;
      }
      if (i < chunks) await d.put(i * MiB, block(i, i % 3 === 0));
    }
    await d.finish();
    return (await w.commit()).id;
  } finally {
    await w.abort();
  }
}

async function firstByte(socketPath: string, exportName: string): Promise<void> {
  for (;;) {
    try {
      const c = await NbdClient.connect({address: {socketPath}, exportName});
      await c.read(0, 4096);
      await c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function main(): Promise<void> {
  console.log(machineLine());
  await execa(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {cwd: ROOT});
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vmb-export-bench-'));
  const repoPath = path.join(dir, 'repo');
  const repo = await createRepository(repoPath);
  const disks = [
    {name: '3 GiB, 824 MiB data', size: 3 * GiB, point: await writeDisk(repo, 'three', 3 * GiB, (i) => i < 824)},
    {name: '100 GiB sparse, 64 MiB data', size: 100 * GiB, point: await writeDisk(repo, 'hundred', 100 * GiB, (i) => i % 1600 < 4)},
  ];
  const cli = (args: string[]) => execa(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), ...args], {env: {MIMALLOC_PURGE_DELAY: '3'}});
  const rows: string[][] = [];
  try {
    for (const disk of disks) {
      // vmbackup export: start → first byte.
      const sock = path.join(dir, `${disk.point}.sock`);
      const t0 = performance.now();
      const exp: ResultPromise = execa(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'export', '--repo', repoPath, '--restore-point', disk.point, '--socket', sock], {reject: false, env: {MIMALLOC_PURGE_DELAY: '3'}});
      await firstByte(sock, 'vda');
      const exportFirst = performance.now() - t0;
      const copy = path.join(dir, 'export-copy.raw');
      const c0 = performance.now();
      await execa('nbdcopy', [`nbd+unix:///vda?socket=${sock}`, copy]);
      const exportCopy = performance.now() - c0;
      exp.kill('SIGINT');
      await exp;
      await rm(copy, {force: true});

      // Without an export: restore the disk to a raw file first, then serve that with qemu-nbd.
      const out = path.join(dir, 'restored');
      const r0 = performance.now();
      await cli(['restore', '--repo', repoPath, '--restore-point', disk.point, '--to-files', out, '--format', 'raw']);
      const restored = performance.now() - r0;
      const file = path.join(out, (await execa('ls', [out])).stdout.split('\n').find((f) => f.endsWith('.raw'))!);
      const qsock = path.join(dir, 'qemu.sock');
      const q0 = performance.now();
      const qemu = execa('qemu-nbd', ['--persistent', '--shared=8', '--read-only', '--format=raw', `--socket=${qsock}`, file], {reject: false});
      await firstByte(qsock, '');
      const qemuFirst = performance.now() - q0;
      const qc0 = performance.now();
      await execa('nbdcopy', [`nbd+unix:///?socket=${qsock}`, copy]);
      const qemuCopy = performance.now() - qc0;
      qemu.kill('SIGTERM');
      await qemu;
      await rm(out, {recursive: true, force: true});
      await rm(copy, {force: true});
      const mibs = (ms: number) => `${((disk.size / MiB) / (ms / 1000)).toFixed(0)} MiB/s`;
      const vm = await instantVm(path.join(dir, disk.point.slice(0, 5)), repoPath, disk.point, disk.point.slice(0, 20));
      rows.push(
        [disk.name, 'time to a running VM', `instant recovery ${(vm.instant / 1000).toFixed(1)} s`, `restore as a new VM, then virsh start: ${(vm.restore / 1000).toFixed(1)} s`],
        [disk.name, 'time to the first byte', `${exportFirst.toFixed(0)} ms`, `restore first ${(restored / 1000).toFixed(1)} s + qemu-nbd ${qemuFirst.toFixed(0)} ms`],
        [disk.name, 'nbdcopy of the whole disk', `${(exportCopy / 1000).toFixed(2)} s (${mibs(exportCopy)})`, `qemu-nbd on the raw file: ${(qemuCopy / 1000).toFixed(2)} s (${mibs(qemuCopy)})`],
      );
    }
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
  console.log('| disk | measure | vmbackup export | without it (restore, then qemu-nbd) |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

await main();
