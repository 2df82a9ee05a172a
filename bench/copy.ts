/**
 * Copy jobs' local tier: `vmbackup repo copy` (compiled, as the appliance runs it) of a restore
 * point of the bench disk (an ext4 image of 3 GiB holding ~800 MiB of /usr files) to a second
 * repository on the same disk, then of the next point after ~5 % of the disk changed, against the
 * peer a copy without vmbackup would be: `cp -a` of the whole repository directory (no checks,
 * no dedup against what the target has). Prints wall time, CPU and MiB/s of logical disk size.
 *
 * Then the S3 tier: the same two points copied into a bucket of the test bed's S3 server
 * (OpenStack Swift with s3api on 127.0.0.1:8380: test/setup.d/50-swift.sh), with the objects and
 * requests that cost, against the peer restic (its S3 backend, same server, same run) backing up
 * the image file.
 *
 * Then the SSH tier: the same two points copied to "another appliance" (the test bed's sshd on
 * 127.0.0.1:2222 running this checkout's `vmbackup repo serve`), with the bytes that crossed the
 * SSH connection (iptables counters), against the peer an administrator would use without
 * vmbackup: `rsync -a` of the repository directory over the same sshd (new files only).
 *
 *   node --import tsx bench/copy.ts
 */
import {randomBytes} from 'node:crypto';
import {open, mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {createRepository, openRepository, S3Backend} from '../src/repository/index.js';
import {parseS3Url} from '../src/util/s3-url.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {diskUsage, machineLine, MiB, timedRusage} from './lib/measure.js';
import {countSshBytes} from './lib/ssh-bytes.js';
import {sshRepoArgs, sshRepoUrl} from '../test/lib/ssh-repo.js';
import {testSshTarget} from '../test/lib/sshd.js';

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
    await s3Tier(dir, src, [first, second], cli, image);
    await sshTier(dir, src, [first, second], cli, image);
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

// Over TLS (the test bed's second proxy, its own CA): as an S3 target is reached in earnest, and
// the only way restic's S3 client works with s3api (over plain HTTP it sends aws-chunked payloads).
const SWIFT = {url: 's3://127.0.0.1:8381/vmbackup-bench', accessKeyId: 'test:tester', secretAccessKey: 'swift-test-secret-4711', ca: '/var/lib/vmbackup-test/swift/etc/ca.pem'};

/** The S3 tier against the test bed's Swift: copies of both points, and restic's S3 backup of the image as the peer. */
async function s3Tier(dir: string, src: string, points: string[], cli: (args: string[]) => ReturnType<typeof timedRusage>, image: {path: string; sizeBytes: number; dataMiB: number}): Promise<void> {
  const up = await execa('curl', ['-fsS', '--max-time', '2', '--cacert', SWIFT.ca, 'https://127.0.0.1:8381/healthcheck'], {reject: false});
  if (up.exitCode !== 0) {
    console.log('S3: the test bed\'s Swift does not answer on 127.0.0.1:8381 (bash test/setup.d/50-swift.sh starts it); skipped');
    return;
  }
  const creds = path.join(dir, 's3.cred');
  await execa('install', ['-m', '600', '/dev/null', creds]);
  await execa('sh', ['-c', `printf 'access_key_id = %s\\nsecret_access_key = %s\\nca_file = %s\\n' '${SWIFT.accessKeyId}' '${SWIFT.secretAccessKey}' '${SWIFT.ca}' > ${creds}`]);
  const url = `${SWIFT.url}/copy-${Date.now()}`;
  await cli(['repo', 'create', url, '--s3-credentials', creds]);
  const bucket = new S3Backend(parseS3Url(url)!, {accessKeyId: SWIFT.accessKeyId, secretAccessKey: SWIFT.secretAccessKey, region: 'us-east-1', caFile: SWIFT.ca});
  const objects = async () => {
    let n = 0;
    let bytes = 0;
    for (const d of await bucket.list('chunks')) {
      if (!d.dir) continue;
      for (const e of await bucket.list(`chunks/${d.name}`)) {
        n++;
        bytes += (await bucket.stat(`chunks/${d.name}/${e.name}`))?.size ?? 0;
      }
    }
    return {n, bytes};
  };
  const rate = (ms: number) => `${(image.sizeBytes / MiB / (ms / 1000)).toFixed(0)} MiB/s of disk, ${(image.dataMiB / (ms / 1000)).toFixed(0)} MiB/s of data`;
  const full = await cli(['repo', 'copy', src, url, '--restore-point', points[0]!, '--s3-credentials', creds]);
  const o1 = await objects();
  console.log(`S3 first point:  vmbackup repo copy ${(full.ms / 1000).toFixed(1)} s (${rate(full.ms)}; CPU ${(full.cpuMs / 1000).toFixed(1)} s, RSS ${(full.maxRssKiB / 1024).toFixed(0)} MiB); ${o1.n} chunk objects of ${(o1.bytes / o1.n / MiB).toFixed(2)} MiB on average (4 MiB chunks: ${Math.round((o1.n / (image.sizeBytes / 2 ** 30)))} objects per GiB of disk)`);
  const inc = await cli(['repo', 'copy', src, url, '--restore-point', points[1]!, '--s3-credentials', creds]);
  const o2 = await objects();
  console.log(`S3 next point (5 % changed): vmbackup repo copy ${(inc.ms / 1000).toFixed(1)} s (CPU ${(inc.cpuMs / 1000).toFixed(1)} s); ${o2.n - o1.n} new chunk objects`);
  // The peer: restic's S3 backend, the same image file, the same server.
  const version = (await execa('restic', ['version'], {reject: false})).stdout;
  if (!version) {
    console.log('S3 peer: restic is not installed (apt-get install restic)');
  } else {
    const pass = path.join(dir, 'restic.pass');
    await execa('sh', ['-c', `umask 077; echo bench-passphrase > ${pass}`]);
    const env = {RESTIC_PASSWORD_FILE: pass, RESTIC_REPOSITORY: `s3:https://127.0.0.1:8381/vmbackup-bench/restic-${Date.now()}`, AWS_ACCESS_KEY_ID: SWIFT.accessKeyId, AWS_SECRET_ACCESS_KEY: SWIFT.secretAccessKey};
    await execa('restic', ['--cacert', SWIFT.ca, 'init', '--repository-version', '2'], {env});
    const t0 = Date.now();
    const r = await execa('restic', ['--cacert', SWIFT.ca, 'backup', '--quiet', '--compression', 'auto', image.path], {env, reject: false});
    const ms = Date.now() - t0;
    console.log(`S3 peer: ${version.split(' compiled')[0]} backup of the image to the same server ${(ms / 1000).toFixed(1)} s (${rate(ms)})${r.exitCode === 0 ? '' : ` — failed: ${r.stderr.slice(0, 200)}`}`);
  }
  bucket.client.close();
}

/** The SSH tier: copies of both points to a repository served over the test bed's sshd, and rsync of the repository as the peer. */
async function sshTier(dir: string, src: string, points: string[], cli: (args: string[]) => ReturnType<typeof timedRusage>, image: {sizeBytes: number; dataMiB: number}): Promise<void> {
  const args = await sshRepoArgs();
  const far = path.join(dir, 'far');
  const url = sshRepoUrl(far);
  const counter = await countSshBytes();
  try {
    const rate = (ms: number) => `${(image.sizeBytes / MiB / (ms / 1000)).toFixed(0)} MiB/s of disk`;
    await cli(['repo', 'create', url, ...args]);
    let b0 = await counter.bytes();
    const full = await cli(['repo', 'copy', src, url, '--restore-point', points[0]!, ...args]);
    const fullBytes = (await counter.bytes()) - b0;
    const stored1 = await diskUsage(far);
    console.log(`SSH first point:  vmbackup repo copy ${(full.ms / 1000).toFixed(1)} s (${rate(full.ms)}; CPU here ${(full.cpuMs / 1000).toFixed(1)} s, RSS ${(full.maxRssKiB / 1024).toFixed(0)} MiB); ${(fullBytes / MiB).toFixed(1)} MiB over SSH for ${(stored1 / MiB).toFixed(1)} MiB stored there`);
    b0 = await counter.bytes();
    const inc = await cli(['repo', 'copy', src, url, '--restore-point', points[1]!, ...args]);
    const incBytes = (await counter.bytes()) - b0;
    console.log(`SSH next point (5 % changed): vmbackup repo copy ${(inc.ms / 1000).toFixed(1)} s (CPU here ${(inc.cpuMs / 1000).toFixed(1)} s); ${(incBytes / MiB).toFixed(1)} MiB over SSH for ${(((await diskUsage(far)) - stored1) / MiB).toFixed(1)} MiB newly stored`);
    // The peer: rsync of the whole repository directory over the same sshd (what it has is skipped).
    const t = testSshTarget();
    const e = `ssh -p ${t.port} -i ${t.identityFile} -o UserKnownHostsFile=${t.knownHostsFile} -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -F /dev/null`;
    const peerDir = path.join(dir, 'peer-rsync');
    b0 = await counter.bytes();
    const r1 = await timedRusage('rsync', ['-a', '-e', e, `${src}/`, `root@127.0.0.1:${peerDir}/`]);
    const r1Bytes = (await counter.bytes()) - b0;
    console.log(`SSH peer: rsync -a of the repository (both points at once) ${(r1.ms / 1000).toFixed(1)} s (CPU here ${(r1.cpuMs / 1000).toFixed(1)} s); ${(r1Bytes / MiB).toFixed(1)} MiB over SSH; no check of any chunk, no dedup against what is there, no commit`);
  } finally {
    await counter.stop();
  }
}

await main();
