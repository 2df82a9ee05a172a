/**
 * A CLI backup stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP (a dropped SSH session) cleans up
 * before it exits, against real libvirt and QEMU: no backup job left on the running VM (the next
 * backup works at once), no read-only qemu-nbd holding the shut-off VM's image lock (the VM
 * starts), no scratch directory, no unfinished restore point. The backup is held at a known
 * point (after the job started, waiting for the repository's VM lock that the test holds), so the
 * signal always lands while there is something to clean up.
 */
import {execa} from 'execa';
import {mkdir, mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LibvirtPlatform} from '../../src/platforms/libvirt/index.js';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, virsh, type TestVm} from '../lib/libvirt.js';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let scratch: string;
let repo: Repository;
let running: TestVm | undefined;
let off: TestVm | undefined;

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'vmb-interrupt-'));
  scratch = `/var/tmp/vmbackup-test-interrupt-${process.pid}`;
  await mkdir(scratch, {recursive: true, mode: 0o700});
  repo = await createRepository(join(dir, 'repo'), {chunkSize: 256 * 1024});
  running = await createTestVm(`intr on ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}], {start: true});
  off = await createTestVm(`intr off ${process.pid}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
}, 120_000);

afterAll(async () => {
  await destroyTestVm(running);
  await destroyTestVm(off);
  await rm(scratch, {recursive: true, force: true});
  await rm(dir, {recursive: true, force: true});
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real `vmbackup` CLI (a child process) with this file's scratch directory on the host. */
function cli(args: string[]) {
  return execa(process.execPath, [CLI_MAIN, ...args], {
    cwd: ROOT,
    reject: false,
    env: {FORCE_COLOR: '0', VMBACKUP_HOST_SCRATCH: scratch},
    stdin: 'ignore',
  });
}

const backupOf = (vm: TestVm, ...extra: string[]) => cli(['backup', '--host', 'local', '--vm', vm.name, '--repo', repo.path, ...extra]);


async function jobActive(uuid: string): Promise<boolean> {
  return /Job type:\s+Unbounded/.test(await virsh('domjobinfo', uuid).catch(() => ''));
}

async function qemuNbdOf(vm: TestVm): Promise<string> {
  return (await execa('pgrep', ['-f', `qemu-nbd.*${vm.disks[0]!.path}`], {reject: false})).stdout.trim();
}

async function interrupted(vm: TestVm, sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP', started: () => Promise<boolean>) {
  // Hold the VM's repository lock: the backup opens its job on the host, then waits for it.
  const holder = await repo.beginRestorePoint({vmId: vm.uuid, vmName: vm.name, platform: 'libvirt'});
  try {
    const child = backupOf(vm!);
    for (let i = 0; i < 600 && !(await started()); i++) await sleep(50);
    expect(await started(), 'the backup did not reach the host').toBe(true);
    child.kill(sig);
    const r = await child;
    return r;
  } finally {
    await holder.abort();
  }
}

describe('vmbackup backup stopped by a signal', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s on a running VM: the backup job is gone, the next backup works', async (sig) => {
    const r = await interrupted(running!, sig, () => jobActive(running!.uuid));
    expect(r.exitCode, r.stderr).toBe(ExitCode.cancelled);
    expect(r.stderr).toContain(`was stopped (${sig})`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await jobActive(running!.uuid)).toBe(false);
    expect(await readdir(scratch)).toEqual([]);
    expect((await repo.listRestorePoints({vmId: running!.uuid})).length).toBe(0);
    expect(await readdir(join(repo.path, 'points'))).toEqual([]);
  });

  it('SIGINT on a shut-off VM: no qemu-nbd keeps its image lock, and the VM starts', async () => {
    const r = await interrupted(off!, 'SIGINT', async () => (await qemuNbdOf(off!)) !== '');
    expect(r.exitCode, r.stderr).toBe(ExitCode.cancelled);
    expect(await qemuNbdOf(off!)).toBe('');
    expect(await readdir(scratch)).toEqual([]);
    await virsh('start', off!.uuid);
    await virsh('destroy', off!.uuid);
  });

  it('kill -9 leaves the job; the next CLI run finds it, cleans it up, and backs up', async () => {
    const holder = await repo.beginRestorePoint({vmId: running!.uuid, vmName: running!.name, platform: 'libvirt'});
    try {
      const child = backupOf(running!);
      for (let i = 0; i < 600 && !(await jobActive(running!.uuid)); i++) await sleep(50);
      child.kill('SIGKILL');
      await child;
    } finally {
      await holder.abort();
    }
    expect(await jobActive(running!.uuid)).toBe(true);
    expect((await readdir(scratch)).length).toBe(1);
    const next = await backupOf(running!);
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stdout + next.stderr).toContain('aborted a leftover backup job');
    expect(await jobActive(running!.uuid)).toBe(false);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('a cleanup run elsewhere (a daemon starting) leaves a live CLI backup alone', async () => {
    const holder = await repo.beginRestorePoint({vmId: running!.uuid, vmName: running!.name, platform: 'libvirt'});
    let released = false;
    try {
      const child = backupOf(running!);
      for (let i = 0; i < 600 && !(await jobActive(running!.uuid)); i++) await sleep(50);
      const events: string[] = [];
      await new LibvirtPlatform({hosts: [{name: 'local', connection: {kind: 'local'}}], scratchDir: scratch}).cleanupLeftovers((e) => events.push(e.code));
      expect(events).not.toContain('leftover-job-aborted');
      expect(await jobActive(running!.uuid)).toBe(true);
      await holder.abort();
      released = true;
      const r = await child;
      expect(r.exitCode, r.stderr).toBe(0);
    } finally {
      if (!released) await holder.abort();
    }
    expect(await jobActive(running!.uuid)).toBe(false);
  });

  it('after all that, a backup of each VM succeeds at once', async () => {
    for (const vm of [running!, off!]) {
      const r = await backupOf(vm!);
      expect(r.exitCode, r.stderr).toBe(0);
      // The VMs' disks are empty: no absurd dedup ratio ("dedup 324009984x") for nothing stored.
      expect(r.stdout).toContain('nothing new to store');
      expect(r.stdout).not.toMatch(/dedup \d/);
    }
  });
});

describe('the CLI and checkpoints of other repositories', () => {
  it('a CLI backup into another repository leaves the first repository\'s checkpoint alone: both stay incremental', async () => {
    const other = await createRepository(join(dir, 'other'), {chunkSize: 256 * 1024});
    const intoOther = await cli(['backup', '--host', 'local', '--vm', running!.name, '--repo', other.path, '--json']);
    expect(intoOther.exitCode, intoOther.stderr).toBe(0);
    const back = await backupOf(running!, '--json');
    expect(back.exitCode, back.stderr).toBe(0);
    const out = JSON.parse(back.stdout) as {incremental: boolean; warnings: {code: string}[]};
    expect(out.incremental).toBe(true);
    expect(out.warnings.map((w) => w.code)).not.toContain('checkpoint-lost');
    const again = JSON.parse((await cli(['backup', '--host', 'local', '--vm', running!.name, '--repo', other.path, '--json'])).stdout) as {incremental: boolean};
    expect(again.incremental).toBe(true);
  });
});

describe('messages that say what is wrong', () => {
  it('a missing SSH key file is named, before anything connects', async () => {
    const r = await cli(['backup', '--host', 'root@127.0.0.1', '--identity', join(dir, 'no-such-key'), '--vm', 'web', '--repo', repo.path]);
    expect(r.exitCode).toBe(ExitCode.notFound);
    expect(r.stderr).toContain(`The SSH key file ${join(dir, 'no-such-key')} does not exist.`);
    expect(r.stderr).toContain('--identity');
  });
});

describe('an active full after silent damage', () => {
  it('re-checks the chunks it would reuse, writes damaged ones again, says so (text and --json), and restores', async () => {
    // A restore point with data, then one of its chunks damaged in silence.
    await guestWrite(running!, 'vda', 'write -P 0x6b 0 2M');
    const first = await backupOf(running!);
    expect(first.exitCode, first.stderr).toBe(0);
    const [point] = (await repo.listRestorePoints({vmId: running!.uuid})).slice(-1);
    const reader = await repo.openRestorePoint(point!.id);
    let data: {offset: number; length: number} | undefined;
    for await (const c of (await reader.openDisk('vda')).chunkMap()) {
      if (!c.zero) {
        data = c;
        break;
      }
    }
    if (!data) throw new Error('the restore point has no data chunk');
    const {createHash} = await import('node:crypto');
    const disk = await reader.openDisk('vda');
    const plain = await disk.read(data.offset, data.length);
    const hex = createHash('sha256').update(plain).digest('hex');
    const file = join(repo.path, 'chunks', hex.slice(0, 2), hex);
    const {readFile, writeFile} = await import('node:fs/promises');
    const raw = await readFile(file);
    raw[raw.length - 1]! ^= 0x5a;
    await writeFile(file, raw);

    const r = await backupOf(running!, '--full', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {healedChunks: number; restorePoint: {id: string}; warnings: {code: string}[]};
    expect(out.healedChunks).toBeGreaterThanOrEqual(1);
    expect(out.warnings.map((w) => w.code)).toContain('chunks-healed');
    const restored = await cli(['restore', '--repo', repo.path, '--restore-point', out.restorePoint.id, '--to-files', join(dir, 'healed')]);
    expect(restored.exitCode, restored.stderr).toBe(0);
    // The human output says so too.
    await writeFile(file, raw); // damage the chunk again (the full wrote a good copy)
    const text = await backupOf(running!, '--full');
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/healed: \d+ damaged chunk\(s\) in the repository were set aside and written again/);
    // The damaged copy was set aside under verify's quarantine name.
    expect((await readdir(join(repo.path, 'chunks', hex.slice(0, 2)))).some((f) => f.startsWith(`${hex}.bad`))).toBe(true);
  });
});
