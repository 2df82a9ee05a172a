/**
 * NBD read throughput: a 1 GiB random-data raw image served read-only by qemu-nbd over a unix
 * socket, read end to end by NbdPool in several request sizes and by nbdcopy. Prints MiB/s, this
 * process's CPU and qemu-nbd's CPU (from /proc) per reader; the image sits in the page cache, so
 * this measures the protocol path, not the disk. Run: node --import tsx bench/nbd.ts [sizeMiB]
 *
 * Each reader gets a fresh qemu-nbd: what QEMU's allocator has seen before changes the figures
 * (docs/benchmarks.md "NBD reads": qemu mmaps every request buffer above glibc's mmap threshold,
 * which only a freed larger block raises; one BLOCK_STATUS reply frees a 1 MiB extent array).
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, open, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {ALLOCATION_CONTEXT, NbdPool} from '../src/transports/nbd/index.js';
import {processCpuMs} from './lib/measure.js';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 1024);
const size = sizeMiB * MiB;

interface Reader {
  name: string;
  run(socketPath: string): Promise<void>;
}

/** The engine's way: 4 reads of 8 MiB at a time, cut by the pool into `requestSize` requests. */
function pool(requestSize: number, perConnection: number, blockStatusFirst: boolean): Reader {
  return {
    name: `NbdPool 4 conn × ${perConnection} × ${requestSize / 1024} KiB${blockStatusFirst ? ', BLOCK_STATUS first' : ''}`,
    async run(socketPath) {
      const p = await NbdPool.open({address: {socketPath}, exportName: '', connections: 4, maxInFlight: perConnection, requestSize, metaContexts: [ALLOCATION_CONTEXT]});
      try {
        if (blockStatusFirst) await p.blockStatus(0, size, ALLOCATION_CONTEXT);
        let next = 0;
        await Promise.all(Array.from({length: 4}, async () => {
          const buf = Buffer.allocUnsafe(8 * MiB);
          while (next < size) {
            const o = next;
            next += buf.length;
            await p.read(o, Math.min(buf.length, size - o), buf);
          }
        }));
      } finally {
        await p.close();
      }
    },
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nbd-bench-'));
  const image = path.join(dir, 'data.raw');
  const fh = await open(image, 'w');
  const block = randomBytes(16 * MiB);
  for (let o = 0; o < size; o += block.length) {
    block.writeUInt32LE(o / block.length, 0); // no two blocks alike
    await fh.write(block, 0, block.length, o);
  }
  await fh.close();
  await execa('cat', [image], {stdout: 'ignore'}); // warm the page cache
  const readers: Reader[] = [
    pool(512 * 1024, 4, true), // what the libvirt source does (the extents walk asks BLOCK_STATUS first)
    pool(512 * 1024, 4, false),
    pool(1024 * 1024, 2, true),
    pool(32 * MiB, 4, true),
    {name: 'nbdcopy (to null:), its defaults', run: async (socketPath) => void (await execa('nbdcopy', [`nbd+unix:///?socket=${socketPath}`, 'null:']))},
    {name: 'qemu-img convert (to null-co)', run: async (socketPath) => void (await execa('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', `nbd+unix:///?socket=${socketPath}`, `driver=null-co,size=${size}`]))},
  ];
  try {
    for (const [i, r] of readers.entries()) {
      const socketPath = path.join(dir, `nbd-${i}.sock`);
      const server = execa('qemu-nbd', ['--persistent', '--shared=8', '--read-only', '--format=raw', `--socket=${socketPath}`, image], {stdin: 'ignore'});
      try {
        for (let t = 0; t < 200; t++) {
          if (await execa('nbdinfo', ['--size', `nbd+unix:///?socket=${socketPath}`]).then(() => true, () => false)) break;
          await new Promise((res) => setTimeout(res, 25));
        }
        const qemuCpu = () => processCpuMs(server.pid!);
        const q0 = await qemuCpu();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await r.run(socketPath);
        const s = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        console.log(`${r.name.padEnd(48)} ${(sizeMiB / s).toFixed(0).padStart(6)} MiB/s  (${s.toFixed(2)} s; this process ${((c.user + c.system) / 1000).toFixed(0)} ms CPU, qemu-nbd ${(await qemuCpu()) - q0} ms CPU)`);
      } finally {
        server.kill('SIGTERM');
        await server.catch(() => undefined);
      }
    }
    console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

await main();
