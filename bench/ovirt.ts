/**
 * oVirt read throughput through the simulator (prints figures; not a test).
 *   node --import tsx bench/ovirt.ts [diskGiB=4] [dataGiB=1]
 *
 * A 4 GiB disk holding 1 GiB of data (4 MiB runs every 16 MiB; the simulator shares block
 * buffers, so its memory stays small) is backed up in full through the OvirtPlatform: backup,
 * image transfer, imageio OPTIONS/extents, and the data extents read in 8 MiB pieces by as many
 * workers as the source allows. Then curl downloads the same ranges from the same ticket with the
 * same number of parallel processes (keep-alive within each). Both rates are printed; they
 * measure the HTTPS + imageio path on this machine (loopback, TLS), not a real host's storage.
 * The simulator runs in a worker thread so that its TLS work does not share the reader's thread
 * (curl runs in its own processes too). Each reader makes a warm-up pass first (JIT, TLS
 * sessions); on a loaded 2-core machine the figures move with the load average, printed too.
 * The CPU seconds per GiB of the reading thread alone (process.threadCpuUsage: the simulator's
 * thread is not in it) are the steadier figure; curl's are its processes' user + system.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Worker, isMainThread, parentPort, workerData} from 'node:worker_threads';
import {OvirtPlatform} from '../src/platforms/ovirt/platform.js';
import {BLOCK} from '../test/ovirt-sim/image.js';
import {pattern, startSimulator} from '../test/ovirt-sim/index.js';
import {timedRusage} from './lib/measure.js';

const MiB = 2 ** 20;
const diskGiB = Number(process.argv[2] ?? 4);
const dataGiB = Number(process.argv[3] ?? 1);

interface SimInfo {url: string; user: string; password: string; caPem: string; vmId: string; daemon: string; dataBytes: number}

/** Worker thread: the simulator with the benchmark disk; answers 'ticket' with the current ticket URL. */
async function simWorker(): Promise<void> {
  const {diskGiB, dataGiB} = workerData as {diskGiB: number; dataGiB: number};
  const sim = await startSimulator({delayMs: 10, vms: [{name: 'bench', status: 'up', disks: [{alias: 'bench_os', size: diskGiB * 1024 * MiB, format: 'cow'}]}]});
  const [disk] = sim.disksOf('bench');
  // 256 distinct 64 KiB blocks, reused: data that is not all one value, without GiBs of RAM.
  const blocks = Array.from({length: 256}, (_, i) => pattern(i + 1, BLOCK));
  const runBlocks = (4 * MiB) / BLOCK;
  const every = Math.round((diskGiB / dataGiB) * 4 * MiB) / BLOCK;
  let n = 0;
  for (let b = 0; b * BLOCK < disk!.image.size && n * BLOCK < dataGiB * 1024 * MiB; b += every) {
    for (let i = 0; i < runBlocks; i++, n++) disk!.image.setBlock(b + i, blocks[(b + i) % 256]!);
  }
  const info: SimInfo = {url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, vmId: sim.vm('bench').id, daemon: sim.imageio.daemon, dataBytes: n * BLOCK};
  parentPort!.on('message', async (m: string) => {
    if (m === 'ticket') {
      const t = [...sim.state.transfers.values()].find((x) => x.phase === 'transferring')!;
      parentPort!.postMessage(`${sim.imageio.daemon}/images/${t.ticket!.uuid}`);
    } else if (m === 'stop') {
      await sim.stop();
      parentPort!.close();
    }
  });
  parentPort!.postMessage(info);
}

async function main(): Promise<void> {
  const worker = new Worker(new URL(import.meta.url), {workerData: {diskGiB, dataGiB}});
  const next1 = () => new Promise<unknown>((r) => worker.once('message', r));
  const sim = (await next1()) as SimInfo;
  const dataBytes = sim.dataBytes;
  const platform = new OvirtPlatform({url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 20});
  const backup = await platform.openBackup(sim.vmId, {log: () => {}});
  const src = backup.sources[0]!;
  const ranges: [number, number][] = [];
  for await (const e of src.extents()) {
    if (e.kind !== 'data') continue;
    for (let o = e.offset; o < e.offset + e.length; o += 8 * MiB) ranges.push([o, Math.min(8 * MiB, e.offset + e.length - o)]);
  }
  const workers = Number(process.env.BENCH_READERS ?? src.maxParallelReads);

  const pass = async () => {
    let next = 0;
    let read = 0;
    const cpu0 = process.threadCpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({length: workers}, async () => {
      const buf = Buffer.allocUnsafe(8 * MiB);
      while (next < ranges.length) {
        const [o, l] = ranges[next++]!;
        const got = (await src.read(o, l, buf)).length; // not `read += await`: that loses updates
        read += got;
      }
    }));
    const cpu = process.threadCpuUsage(cpu0);
    return {read, s: Number(process.hrtime.bigint() - t0) / 1e9, cpuS: (cpu.user + cpu.system) / 1e6};
  };
  await pass();
  const {read, s: ours, cpuS: ourCpu} = await pass();

  // curl: the same ranges from the same ticket, split over the same number of processes.
  worker.postMessage('ticket');
  const url = (await next1()) as string;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovirt-bench-'));
  const ca = path.join(dir, 'ca.pem');
  await writeFile(ca, sim.caPem);
  const configs: string[] = [];
  for (let w = 0; w < workers; w++) {
    const mine = ranges.filter((_, i) => i % workers === w);
    const cfg = path.join(dir, `curl-${w}.cfg`);
    await writeFile(cfg, mine.map(([o, l]) => `url = "${url}"\nrange = "${o}-${o + l - 1}"\noutput = "/dev/null"\ncacert = "${ca}"\n`).join('next\n'));
    configs.push(cfg);
  }
  const curlPass = async () => {
    const t1 = process.hrtime.bigint();
    const each = await Promise.all(configs.map((cfg) => timedRusage('curl', ['-sS', '--fail', '-K', cfg])));
    return {s: Number(process.hrtime.bigint() - t1) / 1e9, cpuS: each.reduce((sum, r) => sum + r.cpuMs, 0) / 1000};
  };
  await curlPass();
  const {s: curl, cpuS: curlCpu} = await curlPass();

  await backup.complete();
  await platform.close();
  worker.postMessage('stop');
  await new Promise((r) => worker.once('exit', r));
  await rm(dir, {recursive: true, force: true});

  const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(0)} MiB/s`;
  const perGiB = (cpuS: number, bytes: number) => `${(cpuS / (bytes / 2 ** 30)).toFixed(2)} CPU s/GiB`;
  console.log(`disk ${diskGiB} GiB, data ${(dataBytes / MiB).toFixed(0)} MiB in ${ranges.length} ranges of <= 8 MiB, ${workers} parallel readers, load ${os.loadavg()[0]!.toFixed(2)}`);
  console.log(`OvirtDiskSource (imageio client): ${rate(read, ours)} (${ours.toFixed(2)} s), reading thread ${perGiB(ourCpu, read)}`);
  console.log(`curl, same ranges and ticket:     ${rate(dataBytes, curl)} (${curl.toFixed(2)} s), ${perGiB(curlCpu, dataBytes)}`);
}

if (isMainThread) await main();
else await simWorker();
