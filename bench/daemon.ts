/**
 * vmbackupd figures (prints them; not a test):
 *   node --import tsx bench/daemon.ts [diskMiB=16]
 * 1. idle CPU and RSS of a fresh daemon (10 s of idling, from /proc);
 * 2. a job of 8 shut-off VMs × 2 qcow2 disks (diskMiB of random data each) on the appliance
 *    worker with 2 slots: session wall time vs the sum of the single-disk task times;
 * 3. GET /status latency while that session runs (p50 / p95 / max).
 */
import {execa} from 'execa';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createTestVm, destroyTestVm, ensureLibvirt, type TestVm} from '../test/lib/libvirt.js';
import {isolate, startDaemon, waitForSession} from '../test/daemon/helpers.js';
import {processCpuMs, processRssKiB} from './lib/measure.js';

const diskMiB = Number(process.argv[2] ?? 16);
const dir = await mkdtemp(join(tmpdir(), 'vmb-bench-daemon-'));
await ensureLibvirt();
const d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
const vms: TestVm[] = [];
try {
  const pid = d.proc.pid!;
  await new Promise((r) => setTimeout(r, 3000));
  const t0 = await processCpuMs(pid);
  await new Promise((r) => setTimeout(r, 10_000));
  const t1 = await processCpuMs(pid);
  console.log(`idle: CPU ${(((t1 - t0) / 1000 / 10) * 100).toFixed(2)}% of one core over 10 s, RSS ${((await processRssKiB(pid)) / 1024).toFixed(1)} MiB`);

  await isolate(d.client);
  const tag = Math.random().toString(36).slice(2, 7);
  for (let i = 0; i < 8; i++) {
    const vm = await createTestVm(`bench-dmn-${tag}-${i}`, [
      {target: 'vda', format: 'qcow2', sizeMiB: diskMiB},
      {target: 'vdb', format: 'qcow2', sizeMiB: diskMiB},
    ]);
    vms.push(vm);
    for (const disk of vm.disks) {
      const raw = join(dir, 'random.raw');
      await execa('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${diskMiB}`, 'status=none']);
      await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, disk.path]);
    }
  }
  const c = d.client;
  await c.update('workers', 'appliance', {name: 'appliance', placement: {kind: 'appliance'}, slots: 2});
  await c.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repo')});
  await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
  await c.create('jobs', {id: 'eight', name: 'Eight', source: {connection: 'kvm', vms: vms.map((v) => ({id: v.uuid}))}, repository: 'r', guestConsistency: false, retries: {count: 0}});

  const started = performance.now();
  const s0 = await c.startJob('eight');
  const latencies: number[] = [];
  for (;;) {
    const t = performance.now();
    await c.status();
    latencies.push(performance.now() - t);
    const s = await c.session(s0.id);
    if (s.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const s = await waitForSession(c, s0.id);
  const wall = performance.now() - started;
  const diskMs = s.vms.reduce((sum, v) => sum + (v.figures?.diskMs ?? 0), 0);
  const vmMs = s.vms.reduce((sum, v) => sum + (v.figures?.durationMs ?? 0), 0);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
  console.log(`job of 8 VMs × 2 disks × ${diskMiB} MiB random (${s.state}): session ${(wall / 1000).toFixed(1)} s, read ${(s.totals.readBytes / 2 ** 20).toFixed(0)} MiB at ${(s.totals.rateBytesPerSec / 2 ** 20).toFixed(1)} MiB/s, bottleneck ${s.totals.bottleneck}`);
  console.log(`  16 single-disk tasks: ${(diskMs / 1000).toFixed(1)} s in all (${(diskMs / 16).toFixed(0)} ms each on average)`);
  console.log(`  8 VM backups: ${(vmMs / 1000).toFixed(1)} s in all (${(vmMs / 8000).toFixed(1)} s each: open + disk tasks + commit + close) → ${(vmMs / wall).toFixed(2)}× VMs side by side on 2 slots (ideal 2×)`);
  console.log(`status latency during the session: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${latencies.at(-1)!.toFixed(1)} ms over ${latencies.length} requests`);
  console.log(`RSS after the session: ${((await processRssKiB(pid)) / 1024).toFixed(1)} MiB`);
} finally {
  await d.stop();
  for (const vm of vms) await destroyTestVm(vm);
  await rm(dir, {recursive: true, force: true});
}
