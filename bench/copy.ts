/**
 * Copy jobs' local tier: `vmbackup repo copy` (compiled, as the appliance runs it) of a restore
 * point of the bench disk (an ext4 image of 3 GiB holding ~800 MiB of /usr files) to a second
 * repository on the same disk, then of the next point after ~5 % of the disk changed, against the
 * peer a copy without vmbackup would be: `cp -a` of the whole repository directory (no checks,
 * no dedup against what the target has). Prints wall time, CPU and MiB/s of logical disk size.
 *
 *   node --import tsx bench/copy.ts
 */
import {randomBytes} from 'node:crypto';
import {open, mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {createRepository, openRepository} from '../src/repository/index.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {diskUsage, machineLine, MiB, timedRusage} from './lib/measure.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = '/var/tmp/vmbackup-bench';

/** One restore point of the image file (every chunk put; zeros recorded as zeros by the writer). */
async function backupFile(repoPath: string, file: string, size: number, base?: string, changes: {offset: number; data: Buffer}[] = []): Promise<string> {
  const repo = await openRepository(repoPath);
  const w = await repo.beginRestorePoint({vmId: 'bench-vm', vmName: 'bench vm', platform: 'libvirt', ...(base ? {base} : {})});
  const dw = await w.addDisk({key: 'vda', name: 'vda.raw', size, format: 'raw'});
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(8 * repo.chunkSize);
    for (let off = 0; off < size; off += buf.length) {
      const len = Math.min(buf.length, size - off);
      await fh.read(buf, 0, len, off);
      for (const c of changes) if (c.offset >= off && c.offset < off + len) c.data.copy(buf, c.offset - off);
      await dw.put(off, buf.subarray(0, len));
    }
  } finally {
    await fh.close();
  }
  await dw.finish();
  return (await w.commit()).id;
}

async function main(): Promise<void> {
  const image = await ensureExt4Image(CACHE, {sizeMiB: 3072, dataMiB: 800});
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vmb-bench-copy-'));
  try {
    console.log(`machine: ${machineLine()}`);
    console.log(`disk: ${image.sizeBytes / MiB} MiB ext4 image, ${image.dataMiB} MiB of files`);
    const src = path.join(dir, 'src');
    const dst = path.join(dir, 'dst');
    await createRepository(src);
    await createRepository(dst);
    const first = await backupFile(src, image.path, image.sizeBytes);
    const cli = (args: string[]) => timedRusage(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), ...args]);
    await execa(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {cwd: ROOT});
    await execa('sync');
    const full = await cli(['repo', 'copy', src, dst, '--restore-point', first]);
    await execa('sync');
    const peer = await timedRusage('cp', ['-a', src, path.join(dir, 'peer')]);
    const rate = (ms: number) => `${(image.sizeBytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    console.log(`first point:  vmbackup repo copy ${(full.ms / 1000).toFixed(1)} s (${rate(full.ms)} of disk, CPU ${(full.cpuMs / 1000).toFixed(1)} s, RSS ${(full.maxRssKiB / 1024).toFixed(0)} MiB); peer cp -a of the repository ${(peer.ms / 1000).toFixed(1)} s (CPU ${(peer.cpuMs / 1000).toFixed(1)} s); repository ${(await diskUsage(src) / MiB).toFixed(0)} MiB`);
    // The next point: ~5 % of the disk (150 MiB in 1 MiB pieces) rewritten with new data.
    const changes = Array.from({length: 150}, (_, i) => ({offset: Math.floor((i * image.sizeBytes) / 150 / MiB) * MiB, data: randomBytes(MiB)}));
    const second = await backupFile(src, image.path, image.sizeBytes, first, changes);
    await execa('sync');
    const inc = await cli(['repo', 'copy', src, dst, '--restore-point', second]);
    await rm(path.join(dir, 'peer'), {recursive: true, force: true});
    const peer2 = await timedRusage('cp', ['-a', src, path.join(dir, 'peer')]);
    const again = await cli(['repo', 'copy', src, dst]);
    console.log(`next point (5 % changed): vmbackup repo copy ${(inc.ms / 1000).toFixed(1)} s (CPU ${(inc.cpuMs / 1000).toFixed(1)} s; stores only the changed chunks); peer cp -a of the repository ${(peer2.ms / 1000).toFixed(1)} s (copies everything again)`);
    console.log(`nothing new: vmbackup repo copy ${(again.ms / 1000).toFixed(1)} s`);
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

await main();
