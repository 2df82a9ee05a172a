/**
 * What MIMALLOC_PURGE_DELAY costs lz4-napi (prints figures; not a test).
 *   node --import tsx bench/lz4-faults.ts [delays=0,1,3,10] [rounds=800]
 *
 * lz4-napi links mimalloc; the appliance runs with MIMALLOC_PURGE_DELAY=0 (systemd unit, CLI
 * wrapper) to keep peak RSS down. With it, every freed output buffer's pages go back to the
 * kernel at once and the next compression faults them in again. Per delay, a fresh process
 * (mimalloc reads the variable at load) compresses and decompresses the same 1 MiB of
 * JavaScript source `rounds` times, keeping 8 outputs alive between minor GCs as the chunk
 * workers do, and prints the minor page faults, user + system CPU and the peak RSS.
 */
import {spawnSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';
import {compressSync, uncompressSync} from 'lz4-napi';

const CHILD = 'LZ4_FAULTS_CHILD';

function measure(label: string, rounds: number, op: () => Buffer, gc: () => void): string {
  const r0 = process.resourceUsage();
  const c0 = process.cpuUsage();
  let keep: Buffer[] = [];
  for (let i = 0; i < rounds; i++) {
    keep.push(op());
    if (keep.length >= 8) {
      keep = [];
      gc();
    }
  }
  const r1 = process.resourceUsage();
  const c1 = process.cpuUsage(c0);
  return `${label} ${r1.minorPageFault - r0.minorPageFault} faults, ${(c1.user / 1e3).toFixed(0)} + ${(c1.system / 1e3).toFixed(0)} ms`;
}

if (process.env[CHILD]) {
  const rounds = Number(process.env[CHILD]);
  setFlagsFromString('--expose-gc');
  const gcFn = runInNewContext('gc') as (o: {type: 'minor'}) => void;
  const gc = () => gcFn({type: 'minor'});
  const src = readFileSync(createRequire(import.meta.url).resolve('typescript')).subarray(0, 1 << 20);
  const packed = compressSync(src);
  const d = measure('decompress:', rounds, () => uncompressSync(packed), gc);
  const c = measure('compress:', rounds, () => compressSync(src), gc);
  console.log(`${d}; ${c}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} else {
  const args = process.argv.slice(2);
  const delays = (args[0] ?? '0,1,3,10').split(',');
  const rounds = args[1] ?? '800';
  console.log(`lz4-napi, 1 MiB buffers × ${rounds}, Node ${process.version}`);
  for (const delay of delays) {
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1, 2)], {
      env: {...process.env, MIMALLOC_PURGE_DELAY: delay, [CHILD]: rounds},
      encoding: 'utf8',
    });
    console.log(`MIMALLOC_PURGE_DELAY=${delay}: ${(r.stdout || r.stderr).trim()}`);
  }
}
