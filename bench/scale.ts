/**
 * Scale (prints figures; not a test): one job over many VMs on one real vmbackupd.
 *   node --import tsx bench/scale.ts [--vms 500] [--slots 20] [--libvirt 40] [--libvirt-slots 4]
 *
 * 1. oVirt: the simulator (test/ovirt-sim, engine REST + imageio over TLS, in this process)
 *    serves --vms running VMs, each with one 64 MiB cow disk holding 1 MiB of distinct data. One
 *    job over all of them (selected by tag) runs twice: a full, then an incremental with nothing
 *    changed (the nightly case without the data). The daemon's appliance worker gets --slots
 *    slots: oVirt's per-VM time is mostly waiting for engine phases (the adapter polls every
 *    second, as against a real engine), so a big estate needs more slots than cores.
 * 2. libvirt: --libvirt running no-OS VMs on this machine's libvirt (QEMU under TCG), each with
 *    one 32 MiB qcow2 disk holding 1 MiB of data, one job over them, full then incremental.
 * 3. Repository at scale: --gc-chunks chunk files (4 KiB chunks of distinct data, one restore
 *    point, in this process), then GC with nothing to remove and with one point forgotten
 *    (mark + sweep of every chunk file) and a listing of the restore points: the per-file costs
 *    that docs/scale.md multiplies up to a 50 TB repository.
 * For each run: session wall time, VMs per minute, per-VM overhead outside data transfer (a VM's
 * time minus its disk tasks' time: open, engine phases, commit, close), the daemon's peak RSS
 * and CPU (from /proc), GET /status and GET /sessions/<id> latency while it runs (one request
 * every 250 ms), and the platform's commands or API calls per VM. After the oVirt runs: the
 * session report email's size and render time for the 500-VM session, and the console's first
 * dashboard frame and the session's VM list against the real daemon (ink, 80×24).
 *
 * The daemon runs under tsx (test/daemon/helpers.ts startDaemon), which adds ~30 MiB of RSS
 * compared with the installed, compiled daemon.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {hostname, tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {createElement} from 'react';
import {execa} from 'execa';
import type {DaemonClient} from '../src/api/client.js';
import type {SessionRecord} from '../src/api/session-model.js';
import {App} from '../src/console/app/app.js';
import {consoleApi} from '../src/console/api.js';
import {toSessionReport} from '../src/daemon/report.js';
import {renderSessionReport} from '../src/notify/index.js';
import {createRepository} from '../src/repository/index.js';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from '../test/daemon/helpers.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, type TestVm} from '../test/lib/libvirt.js';
import {startSimulator, type Simulator, type VmSpec} from '../test/ovirt-sim/index.js';
import {KEY, renderTree} from '../test/console/harness.js';
import {machineLine, processCpuMs, processRssKiB} from './lib/measure.js';

(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = true;
process.env.FORCE_COLOR = '0';

const {values} = parseArgs({
  options: {
    vms: {type: 'string', default: '500'},
    slots: {type: 'string', default: '20'},
    libvirt: {type: 'string', default: '40'},
    'libvirt-slots': {type: 'string', default: '4'},
    'gc-chunks': {type: 'string', default: '200000'},
  },
});
const MiB = 2 ** 20;
const ovirtVms = Number(values.vms);
const libvirtVms = Number(values.libvirt);

const q = (xs: number[], p: number) => (xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!);
const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;

interface RunFigures {
  label: string;
  session: SessionRecord;
  wallMs: number;
  statusMs: number[];
  sessionMs: number[];
  peakRssMiB: number;
  cpuS: number;
}

/** Runs the job once, polling status and the session every 250 ms; the daemon's RSS and CPU from /proc. */
async function runJob(d: RunningDaemon, jobId: string, label: string): Promise<RunFigures> {
  const c = d.client;
  const pid = d.proc.pid!;
  const cpu0 = await processCpuMs(pid);
  const t0 = performance.now();
  const started = await c.startJob(jobId);
  const statusMs: number[] = [];
  const sessionMs: number[] = [];
  let peak = await processRssKiB(pid);
  for (;;) {
    let t = performance.now();
    await c.status();
    statusMs.push(performance.now() - t);
    t = performance.now();
    const s = await c.session(started.id);
    sessionMs.push(performance.now() - t);
    peak = Math.max(peak, await processRssKiB(pid));
    if (s.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const session = (await waitForSession(c, started.id)) as SessionRecord;
  const wallMs = performance.now() - t0;
  return {label, session, wallMs, statusMs, sessionMs, peakRssMiB: peak / 1024, cpuS: ((await processCpuMs(pid)) - cpu0) / 1000};
}

function report(f: RunFigures, calls: {what: string; count: number}): string {
  const vms = f.session.vms;
  const ok = vms.filter((v) => v.state === 'success' || v.state === 'warning').length;
  const overhead = vms.map((v) => (v.figures?.durationMs ?? 0) - (v.figures?.diskMs ?? 0));
  const vmMs = vms.map((v) => v.figures?.durationMs ?? 0);
  const read = f.session.totals.readBytes;
  return [
    `${f.label}: ${ok}/${vms.length} VMs backed up (${f.session.state}) in ${(f.wallMs / 1000).toFixed(1)} s = ${((vms.length / f.wallMs) * 60_000).toFixed(0)} VMs/min; read ${(read / MiB).toFixed(0)} MiB`,
    `  per VM: time p50 ${ms(q(vmMs, 0.5))}, p95 ${ms(q(vmMs, 0.95))}; overhead outside its disk tasks p50 ${ms(q(overhead, 0.5))}, p95 ${ms(q(overhead, 0.95))}, max ${ms(q(overhead, 1))}`,
    `  ${calls.what} per VM: ${(calls.count / vms.length).toFixed(1)}`,
    `  daemon: peak RSS ${f.peakRssMiB.toFixed(0)} MiB, CPU ${f.cpuS.toFixed(1)} s (${((f.cpuS * 1000) / vms.length).toFixed(0)} ms per VM)`,
    `  GET /status while it ran: p50 ${ms(q(f.statusMs, 0.5))}, p95 ${ms(q(f.statusMs, 0.95))}, max ${ms(q(f.statusMs, 1))} (${f.statusMs.length} requests); GET /sessions/<id>: p50 ${ms(q(f.sessionMs, 0.5))}, p95 ${ms(q(f.sessionMs, 0.95))}, max ${ms(q(f.sessionMs, 1))}`,
  ].join('\n');
}

/** The report email of a finished session, as the daemon builds it: size and render time. */
async function emailFigures(s: SessionRecord): Promise<string> {
  const rep = toSessionReport(s, {lastAttempt: true, repository: {name: 'R', path: '/srv/repo', freeBytes: 2 ** 40, totalBytes: 2 ** 41}, hostname: hostname(), appVersion: 'bench'});
  renderSessionReport(rep); // warm
  const times: number[] = [];
  let out = renderSessionReport(rep);
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    out = renderSessionReport(rep);
    times.push(performance.now() - t);
  }
  const html = Buffer.byteLength(out.html ?? '');
  const text = Buffer.byteLength(out.text ?? '');
  return `report email of the ${s.vms.length}-VM session: HTML ${(html / 1024).toFixed(0)} KiB, text ${(text / 1024).toFixed(0)} KiB; render p50 ${ms(q(times, 0.5))} (5 renders)`;
}

/** The console against the real daemon: first dashboard frame, then the last session's VM list. */
async function consoleFigures(client: DaemonClient, jobName: string): Promise<string> {
  let t = performance.now();
  const r = await renderTree(createElement(App, {api: consoleApi(client)}));
  await r.waitFor(jobName, 60_000);
  const first = performance.now() - t;
  // Menu → Sessions (the 7th entry), then the newest session (the incremental of all VMs) and its VM list.
  t = performance.now();
  await r.press('m');
  await r.waitFor('history of every job', 60_000);
  await r.press(KEY.down.repeat(6) + KEY.enter);
  await r.waitFor(/Scale/, 60_000);
  await r.press(KEY.enter);
  const frame = await r.waitFor(/scale-\d+/, 60_000);
  const open = performance.now() - t;
  await r.unmount();
  return `console (80×24, real daemon): first dashboard frame ${ms(first)}; sessions → the ${jobName} session with its VMs ${ms(open)}\n${frame.split('\n').map((l) => `    | ${l}`).join('\n')}`;
}

async function ovirtScale(d: RunningDaemon, dir: string): Promise<void> {
  const specs: VmSpec[] = Array.from({length: ovirtVms}, (_, i) => ({
    name: `scale-${String(i).padStart(3, '0')}`,
    status: 'up',
    tags: ['scale'],
    disks: [{alias: `scale-${i}-os`, size: 64 * MiB, format: 'cow', bootable: true, fill: [{offset: (i % 32) * MiB, length: MiB, seed: i + 1}]}],
  }));
  let sim: Simulator | undefined;
  try {
    sim = await startSimulator({vms: specs});
    const c = d.client;
    await c.update('workers', 'appliance', {name: 'appliance', placement: {kind: 'appliance'}, slots: Number(values.slots)});
    await c.create('repositories', {id: 'ro', name: 'R', path: join(dir, 'repo-ovirt')});
    await c.create('connections', {id: 'engine', kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, caFingerprint: sim.caFingerprint});
    await c.create('jobs', {id: 'scale', name: 'Scale', source: {connection: 'engine', tags: ['scale']}, repository: 'ro', retries: {count: 0}});
    const calls = () => sim!.apiLog.length + sim!.imageioLog.length;
    let before = calls();
    const full = await runJob(d, 'scale', `oVirt, ${ovirtVms} VMs, full, ${values.slots} slots`);
    console.log(report(full, {what: 'engine API + imageio requests', count: calls() - before}));
    before = calls();
    const inc = await runJob(d, 'scale', `oVirt, ${ovirtVms} VMs, incremental with nothing changed`);
    console.log(report(inc, {what: 'engine API + imageio requests', count: calls() - before}));
    console.log(await emailFigures(inc.session));
    console.log(await consoleFigures(c, 'Scale'));
  } finally {
    await sim?.stop();
  }
}

async function libvirtScale(d: RunningDaemon, dir: string): Promise<void> {
  await ensureLibvirt();
  const tag = Math.random().toString(36).slice(2, 7);
  const vms: TestVm[] = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < libvirtVms; i++) {
      const vm = await createTestVm(`scale-${tag}-${i}`, [{target: 'vda', format: 'qcow2', sizeMiB: 32}], {start: true});
      vms.push(vm);
      await guestWrite(vm, 'vda', `write -P ${(i % 250) + 1} ${(i % 16) * MiB} 1M`);
    }
    console.log(`libvirt: ${libvirtVms} running VMs made in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const c = d.client;
    await c.update('workers', 'appliance', {name: 'appliance', placement: {kind: 'appliance'}, slots: Number(values['libvirt-slots'])});
    await c.create('repositories', {id: 'rl', name: 'RL', path: join(dir, 'repo-libvirt')});
    await c.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    await c.create('jobs', {id: 'many', name: 'Many', source: {connection: 'kvm', vms: vms.map((v) => ({id: v.uuid}))}, repository: 'rl', guestConsistency: false, retries: {count: 0}});
    const full = await runJob(d, 'many', `libvirt, ${libvirtVms} running VMs, full, ${values['libvirt-slots']} slots`);
    console.log(report(full, {what: 'session log lines', count: full.session.log.length}));
    const inc = await runJob(d, 'many', `libvirt, ${libvirtVms} running VMs, incremental with nothing changed`);
    console.log(report(inc, {what: 'session log lines', count: inc.session.log.length}));
  } finally {
    for (const vm of vms) await destroyTestVm(vm).catch(() => undefined);
  }
}

/** GC and listing over many chunk files (see the header). */
async function repositoryScale(dir: string): Promise<void> {
  const n = Number(values['gc-chunks']);
  const cs = 4096;
  const repo = await createRepository(join(dir, 'repo-gc'), {chunkSize: cs});
  const perPoint = Math.ceil(n / 2);
  let t = performance.now();
  const ids: string[] = [];
  for (let p = 0; p < 2; p++) {
    const w = await repo.beginRestorePoint({vmId: `gc-vm-${p}`, vmName: `gc vm ${p}`, platform: 'libvirt'});
    const disk = await w.addDisk({key: 'vda', name: 'vda', size: perPoint * cs});
    const buf = Buffer.alloc(cs);
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < perPoint; i++) {
      buf.fill(0);
      buf.writeUInt32LE(p, 0);
      buf.writeUInt32LE(i, 4);
      buf.writeUInt32LE(0x5ca1e, 8);
      const put = disk.put(i * cs, Buffer.from(buf)).then(() => void inFlight.delete(put));
      inFlight.add(put);
      if (inFlight.size >= 64) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    await disk.finish();
    ids.push((await w.commit()).id);
  }
  const writeS = (performance.now() - t) / 1000;
  t = performance.now();
  const g1 = await repo.gc({safetyMarginMs: 0});
  const gcKeepS = (performance.now() - t) / 1000;
  t = performance.now();
  await repo.listRestorePoints();
  const listS = (performance.now() - t) / 1000;
  await repo.forget(ids[0]!);
  await new Promise((r) => setTimeout(r, 1100)); // GC's clock slack
  t = performance.now();
  const g2 = await repo.gc({safetyMarginMs: 0});
  const gcSweepS = (performance.now() - t) / 1000;
  const per = (s: number, files: number) => `${((s / files) * 1e6).toFixed(1)} µs per chunk file`;
  console.log(`repository with ${2 * perPoint} chunk files (4 KiB chunks, 2 restore points): written in ${writeS.toFixed(0)} s`);
  console.log(`  GC, nothing to remove: ${gcKeepS.toFixed(1)} s (${per(gcKeepS, 2 * perPoint)}; ${g1.referencedChunks} referenced)`);
  console.log(`  GC after forgetting one point: ${gcSweepS.toFixed(1)} s (${per(gcSweepS, 2 * perPoint)}; removed ${g2.removedChunks})`);
  console.log(`  list restore points: ${(listS * 1000).toFixed(0)} ms`);
}

const dir = await mkdtemp(join(tmpdir(), 'vmb-bench-scale-'));
console.log(`${new Date().toISOString()}  ${machineLine()}`);
const d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
try {
  await isolate(d.client);
  console.log(`daemon at start: RSS ${((await processRssKiB(d.proc.pid!)) / 1024).toFixed(0)} MiB`);
  if (ovirtVms > 0) await ovirtScale(d, dir);
  if (libvirtVms > 0) await libvirtScale(d, dir);
  if (Number(values['gc-chunks']) > 0) await repositoryScale(dir);
  console.log(`repository files: ${(await execa('find', [dir, '-path', '*/repo-*', '-type', 'f'])).stdout.split('\n').filter(Boolean).length}; load ${machineLine().split('load ')[1]}`);
} finally {
  await d.stop();
  await rm(dir, {recursive: true, force: true});
}
process.exit(0);
