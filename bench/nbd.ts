/**
 * NBD read throughput: a 1 GiB random-data raw image served read-only by qemu-nbd over a unix
 * socket, read end to end by NbdClient (1 connection), NbdPool (4 connections), qemu-img convert
 * and nbdcopy (when installed). Prints MiB/s per reader and this process's CPU share; the image
 * sits in the page cache, so this measures the protocol path, not the disk. The load average is
 * printed too: on a shared machine the figures move with it. Run: node --import tsx bench/nbd.ts [sizeMiB]
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, open, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {NbdClient, NbdPool} from '../src/transports/nbd/index.js';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 1024);
const size = sizeMiB * MiB;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nbd-bench-'));
  const image = path.join(dir, 'data.raw');
  const socketPath = path.join(dir, 'nbd.sock');
  const fh = await open(image, 'w');
  const block = randomBytes(16 * MiB);
  for (let o = 0; o < size; o += block.length) {
    block.writeUInt32LE(o / block.length, 0); // no two blocks alike
    await fh.write(block, 0, block.length, o);
  }
  await fh.close();
  const server = execa('qemu-nbd', ['--persistent', '--shared=8', '--read-only', '--format=raw', `--socket=${socketPath}`, image], {stdin: 'ignore'});
  try {
    for (let i = 0; i < 200; i++) {
      if (await NbdClient.connect({address: {socketPath}, exportName: ''}).then((c) => c.close().then(() => true), () => false)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await execa('cat', [image], {stdout: 'ignore'}); // warm the page cache
    const results: [string, number][] = [];
    const time = async (name: string, fn: () => Promise<void>) => {
      const start = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      await fn();
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      results.push([name, s]);
      // This process's CPU share: for the external tools it is only the cost of waiting on them.
      const ours = (((cpu.user + cpu.system) / 1e6 / s) * 100).toFixed(0);
      console.log(`${name.padEnd(44)} ${(sizeMiB / s).toFixed(0).padStart(6)} MiB/s  (${s.toFixed(2)} s, node CPU ${ours}%)`);
    };
    const chunk = 4 * MiB; // what the engine reads per call (several chunks at once)
    const readAll = async (src: {read(o: number, l: number, into?: Buffer): Promise<Buffer>}, parallel: number) => {
      let next = 0;
      const worker = async () => {
        const buf = Buffer.allocUnsafe(chunk);
        while (next < size) {
          const o = next;
          next += chunk;
          await src.read(o, Math.min(chunk, size - o), buf);
        }
      };
      await Promise.all(Array.from({length: parallel}, worker));
    };
    const address = {socketPath};
    const c = await NbdClient.connect({address, exportName: ''});
    await time('NbdClient, 1 connection, 1 read at a time', () => readAll(c, 1));
    await time('NbdClient, 1 connection, 8 reads in flight', () => readAll(c, 8));
    await time('NbdClient, 1 connection, 32 MiB reads ×4', async () => {
      const bufs = Array.from({length: 4}, () => Buffer.allocUnsafe(32 * MiB));
      let next = 0;
      await Promise.all(bufs.map(async (b) => {
        while (next < size) {
          const o = next;
          next += b.length;
          await c.read(o, Math.min(b.length, size - o), b);
        }
      }));
    });
    await c.close();
    const pool = await NbdPool.open({address, exportName: '', connections: 4});
    await time('NbdPool, 4 connections, 8 reads in flight', () => readAll(pool, 8));
    await pool.close();
    const uri = `nbd+unix:///?socket=${socketPath}`;
    await time('qemu-img convert (to null-co)', async () => {
      await execa('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', uri, `driver=null-co,size=${size}`]);
    });
    const hasNbdcopy = await execa('nbdcopy', ['--version']).then(() => true, () => false);
    if (hasNbdcopy) {
      await time('nbdcopy (to null:), default 4 connections', async () => {
        await execa('nbdcopy', [uri, 'null:']);
      });
      await time('nbdcopy (to null:), 1 connection', async () => {
        await execa('nbdcopy', ['--connections=1', uri, 'null:']);
      });
    }
    console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);
  } finally {
    server.kill('SIGTERM');
    await server.catch(() => undefined);
    await rm(dir, {recursive: true, force: true});
  }
}

await main();
