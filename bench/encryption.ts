/**
 * What encryption at rest costs: full backups of the bench VM (libvirt + QEMU, the ext4 bench disk
 * of 3 GiB with ~800 MiB of /usr files) by the compiled CLI into a plain and into an encrypted
 * repository, alternating, `runs` times each; then restores of both to raw files, and copies of the
 * point to a second local repository, plain and encrypted. The peer from the same run is restic
 * (Debian's, always encrypted: AES-256-CTR + Poly1305, content-defined chunks), backing up the same
 * image as a file into a fresh repository. Prints wall time, CPU (user + sys, the command and its
 * children), peak RSS and stored size, and the encryption cost per GiB of data read.
 *
 *   node --import tsx bench/encryption.ts [runs=2]
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {destroyTestVm, ensureLibvirt, type TestVm} from '../test/lib/libvirt.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {createBenchVm} from './lib/libvirt-vm.js';
import {diskUsage, machineLine, MiB, timedRusage, type Rusage} from './lib/measure.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = '/var/tmp/vmbackup-bench';
const runs = Number(process.argv[2] ?? 2);

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const line = (what: string, r: Rusage, extra = '') => `${what.padEnd(34)} ${s(r.ms).padStart(7)}  CPU ${s(r.cpuMs).padStart(7)}  RSS ${(r.maxRssKiB / 1024).toFixed(0).padStart(4)} MiB${extra}`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main(): Promise<void> {
  await ensureLibvirt();
  const image = await ensureExt4Image(CACHE, {sizeMiB: 3072, dataMiB: 800});
  await execa(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {cwd: ROOT});
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vmb-bench-enc-'));
  let vm: TestVm | undefined;
  try {
    console.log(`machine: ${machineLine()}`);
    console.log(`disk: ${image.sizeBytes / MiB} MiB ext4 image, ${image.dataMiB} MiB of files; ${runs} run(s) of each, alternating`);
    vm = await createBenchVm(`vmbtest-bench-enc-${process.pid}`, image.path, image.sizeBytes);
    const pass = path.join(dir, 'pass');
    await writeFile(pass, 'a passphrase for the benchmark\n', {mode: 0o600});
    const cli = (args: string[]) => timedRusage(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), ...args]);
    const results: Record<'plain' | 'encrypted', Rusage[]> = {plain: [], encrypted: []};
    const stored: Record<'plain' | 'encrypted', number> = {plain: 0, encrypted: 0};
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? (['plain', 'encrypted'] as const) : (['encrypted', 'plain'] as const);
      for (const kind of order) {
        const repo = path.join(dir, `${kind}-${run}`);
        const key = kind === 'encrypted' ? ['--passphrase-file', pass] : [];
        await cli(['repo', 'create', repo, ...(kind === 'encrypted' ? ['--encrypt'] : []), ...key]);
        await execa('sync');
        const r = await cli(['backup', '--host', 'local', '--vm', vm.name, '--repo', repo, '--full', ...key]);
        results[kind].push(r);
        stored[kind] = await diskUsage(repo);
        console.log(line(`full backup, ${kind}`, r, `  stored ${(stored[kind] / MiB).toFixed(0)} MiB`));
        // The checkpoint this backup made is the next one's base; a fresh repository takes a full one anyway.
      }
    }
    const [plainCpu, encCpu] = [mean(results.plain.map((r) => r.cpuMs)), mean(results.encrypted.map((r) => r.cpuMs))];
    const dataGiB = image.dataMiB / 1024;
    // The key derivation (scrypt) is paid once per process that opens the repository (the daemon:
    // once per start): `repo info` of an empty repository, encrypted minus plain.
    const info = async (kind: 'plain' | 'encrypted') => {
      const repo = path.join(dir, `info-${kind}`);
      const key = kind === 'encrypted' ? ['--passphrase-file', pass] : [];
      await cli(['repo', 'create', repo, ...(kind === 'encrypted' ? ['--encrypt'] : []), ...key]);
      const r = [];
      for (let i = 0; i < 3; i++) r.push((await cli(['repo', 'info', repo, ...key])).cpuMs);
      return mean(r);
    };
    const kdf = (await info('encrypted')) - (await info('plain'));
    const pct = (x: number) => `${((x / plainCpu) * 100).toFixed(1)} %`;
    console.log(
      `encryption cost: CPU ${s(plainCpu)} → ${s(encCpu)} per full backup (+${pct(encCpu - plainCpu)}; goal ≤ 15 %), of which the key derivation ${s(kdf)} (once per process); ` +
        `without it +${pct(encCpu - plainCpu - kdf)}, ${((encCpu - plainCpu - kdf) / 1000 / dataGiB).toFixed(2)} CPU s per GiB of data; wall ${s(mean(results.plain.map((r) => r.ms)))} → ${s(mean(results.encrypted.map((r) => r.ms)))}`,
    );

    // Restores of the last point of each to raw image files.
    for (const kind of ['plain', 'encrypted'] as const) {
      const repo = path.join(dir, `${kind}-${runs - 1}`);
      const out = path.join(dir, `restore-${kind}`);
      const r = await cli(['restore', '--repo', repo, '--vm', vm.name, '--to-files', out, '--format', 'raw', ...(kind === 'encrypted' ? ['--passphrase-file', pass] : [])]);
      console.log(line(`restore to a raw file, ${kind}`, r));
      await rm(out, {recursive: true, force: true});
    }

    // Copies of the plain point to a second local repository, plain and encrypted.
    for (const kind of ['plain', 'encrypted'] as const) {
      const target = path.join(dir, `copy-${kind}`);
      await cli(['repo', 'create', target, ...(kind === 'encrypted' ? ['--encrypt', '--passphrase-file', pass] : [])]);
      await execa('sync');
      const r = await cli(['repo', 'copy', path.join(dir, `plain-${runs - 1}`), target, ...(kind === 'encrypted' ? ['--target-passphrase-file', pass] : [])]);
      console.log(line(`repo copy to a local ${kind} target`, r, `  ${(image.sizeBytes / MiB / (r.ms / 1000)).toFixed(0)} MiB/s of disk, ${(image.dataMiB / (r.ms / 1000)).toFixed(0)} MiB/s of data`));
    }

    // The peer: restic, the same image as a file (it reads every byte of the 3 GiB; zeros dedup to one chunk).
    const restic = path.join(dir, 'restic');
    const env = {RESTIC_PASSWORD_FILE: pass, RESTIC_REPOSITORY: restic};
    const version = (await execa('restic', ['version'], {reject: false})).stdout;
    if (!version) console.log('peer: restic is not installed (apt-get install restic)');
    else {
      await execa('restic', ['init', '--repository-version', '2'], {env});
      await execa('sync');
      const r = await timedRusageEnv('restic', ['backup', '--quiet', '--compression', 'auto', image.path], env);
      console.log(line(`peer: ${version.split(' compiled')[0]} backup`, r, `  stored ${((await diskUsage(restic)) / MiB).toFixed(0)} MiB`));
    }
  } finally {
    await destroyTestVm(vm);
    await rm(dir, {recursive: true, force: true});
  }
}

/** timedRusage with environment variables (restic takes its repository and password file from there). */
async function timedRusageEnv(cmd: string, args: string[], env: Record<string, string>): Promise<Rusage> {
  const saved = {...process.env};
  Object.assign(process.env, env);
  try {
    return await timedRusage(cmd, args);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
  }
}

await main();
