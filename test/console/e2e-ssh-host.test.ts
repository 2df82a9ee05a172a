/**
 * Day one on a real deployment path, in a real terminal (tmux, 80×24) against a real vmbackupd:
 * the first-start walk-through adds a **remote KVM host reached over SSH** (the test bed's sshd on
 * 127.0.0.1:2222 in front of this machine's libvirt), its host key is compared on screen with the
 * key the host really has, a job backs up a VM from it, and the restore wizard brings the VM's
 * disk back as an image file that matches the disk byte for byte; then starts the VM from that
 * restore point on the host (instant recovery through the SSH tunnel) and stops it again.
 */
import {mkdir, mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {isolate, startDaemon, waitForSession, type RunningDaemon} from '../daemon/helpers.js';
import {createTestVm, destroyTestVm, ensureLibvirt, imagesIdentical, offlineWrite, type TestVm} from '../lib/libvirt.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {firstStartRepository, firstStartSkipToWizard, wizardDefaultsToSummary} from './console-steps.js';
import {Tmux} from './tmux.js';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ART = join(ROOT, 'test-artifacts/console');

let dir: string;
let d: RunningDaemon;
let t: Tmux;
let vm: TestVm;
const tag = Math.random().toString(36).slice(2, 7);

beforeAll(async () => {
  await Promise.all([ensureSshd(), ensureLibvirt()]);
  dir = await mkdtemp(join(tmpdir(), 'vmb-console-ssh-'));
  vm = await createTestVm(`e2essh-${tag}`, [{target: 'vda', format: 'qcow2', sizeMiB: 16}]);
  await offlineWrite(vm, 'vda', 'write -P 0x5a 0 3M');
  const sock = join(dir, 'api.sock');
  d = await startDaemon(join(dir, 'state'), sock);
  await isolate(d.client);
  t = await Tmux.start(`vmb-console-ssh-${process.pid}`, [process.execPath, CLI_MAIN, 'console'], {
    cwd: ROOT,
    env: {VMBACKUP_SOCKET: sock, TERM: 'xterm-256color', CI: '0', CONTINUOUS_INTEGRATION: '0'},
  });
}, 120_000);

afterAll(async () => {
  await t?.kill();
  await d?.stop();
  // The instant VM, should the test have stopped before it was discarded (it is transient).
  if (vm) await execa('virsh', ['-c', 'qemu:///system', 'destroy', `${vm.name}-instant`], {reject: false});
  await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

/** From the job's screen: the restore wizard on the VM's newest restore point, at "where to". */
async function restoreWizardAtWhereTo(): Promise<string> {
  await t.keys('r');
  await t.waitFor('point(s), latest');
  await t.keys('Enter');
  await t.waitFor('which restore point');
  await t.keys('Enter');
  return t.waitFor('where to');
}

describe('console in tmux: a remote KVM host over SSH', () => {
  it('first start → SSH host added with its host key confirmed on screen → backup → restore', async () => {
    await firstStartRepository(t, 'main', join(dir, 'repo'));

    // VM Essentials, on a host reached over SSH.
    await t.keys('Enter');
    await t.waitFor('Which platform');
    await t.keys('Down', 'Enter');
    await t.waitFor('Where does libvirt run?');
    await t.keys('Enter');
    // The appliance's own key and the line that authorizes it on a host.
    const form = await t.waitFor('SSH key file');
    const key = await d.client.request<{publicKey: string}>('GET', '/appliance/ssh-key');
    expect(form.replace(/\s+/g, '')).toContain(key.publicKey.replace(/\s+/g, ''));
    await t.save(join(ART, 'connection-ssh-form.txt'));
    // This test bed's sshd authorizes its own client key: give that file instead of the appliance's.
    await t.text('remote kvm');
    await t.keys('Enter', 'Enter');
    await t.text('127.0.0.1');
    await t.keys('Enter');
    await t.text('root');
    await t.keys('Enter');
    await t.text(`${SSHD_DIR}/client_ed25519`);
    await t.keys('Enter');
    await t.text(String(SSHD_PORT));
    await t.keys('Enter');

    // The fingerprint on screen is the host's real ed25519 key.
    const real = (await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${SSHD_DIR}/host_ed25519.pub`])).stdout.split(/\s+/)[1]!;
    const confirm = await t.waitFor('The keys match');
    await t.save(join(ART, 'connection-ssh-confirm.txt'));
    expect(confirm.replace(/\s+/g, '')).toContain(`127.0.0.1:${real}(ssh-ed25519)`);
    await t.keys('Enter');
    await t.waitFor('Set-up 4/6: Workers', 90_000);
    const [conn] = await d.client.list<{id: string; clusters: {hosts: {connection: {kind: string; hostKey?: string}}[]}[]}>('connections');
    expect(conn!.clusters[0]!.hosts[0]!.connection).toMatchObject({kind: 'ssh', hostKey: expect.stringMatching(/^ssh-ed25519 /)});
    await firstStartSkipToWizard(t);

    // A job for the VM on that host, saved and run.
    await t.waitFor('step 1/7: Name');
    await t.text('ssh job');
    await t.keys('Enter', 'Enter');
    await t.waitFor(/VMs|cluster/, 90_000);
    await t.keys('/');
    await t.text(vm.name);
    await t.keys('Enter', 'Space');
    await t.waitFor(new RegExp(`\\[x\\]\\s+${vm.name}`));
    await t.keys('Enter');
    await wizardDefaultsToSummary(t);
    await t.keys('Down', 'Enter');
    await t.waitFor('Log');
    const job = (await d.client.list<{id: string; name: string}>('jobs')).find((j) => j.name === 'ssh job')!;
    const [session] = await d.client.sessions({job: job.id});
    const done = await waitForSession(d.client, session!.id);
    expect(done.state).toMatch(/success|warning/);
    await t.waitFor(new RegExp(`[✔⚠] ssh job · ${done.state}`), 60_000);
    await t.save(join(ART, 'session-ssh-finished.txt'));
    await t.keys('Escape');
    await t.waitFor('Enter open job');

    // Restore the disk to an image file and compare it with the VM's disk.
    await restoreWizardAtWhereTo();
    await t.keys('Down', 'Down', 'Down', 'Enter');
    await t.waitFor('Directory');
    const out = join(dir, 'restored');
    await t.text(out);
    await t.keys('Down', 'Right');
    await t.keys('Enter', 'Enter');
    await t.waitFor('summary');
    await t.keys('Enter');
    await t.waitFor('Restore finished', 120_000);
    await t.save(join(ART, 'restore-ssh-result.txt'));
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    const same = await imagesIdentical(join(out, files[0]!), vm.disks[0]!.path, 'raw', 'qcow2');
    expect(same.same, same.output).toBe(true);
  });

  it('then starts the VM from that restore point on the SSH host (instant recovery through the tunnel), lists it, and stops it', async () => {
    await t.keys('Escape');
    await t.waitFor('Enter open job');
    await restoreWizardAtWhereTo();
    await t.waitFor('Start it from the backup now');
    await t.keys('Down', 'Down', 'Down', 'Down', 'Down', 'Enter');
    await t.waitFor('Overlay directory');
    const overlays = join(dir, 'instant overlays');
    await mkdir(overlays);
    await t.keys('Enter', 'Enter');
    await t.text(overlays);
    await t.keys('Enter', 'Enter');
    await t.waitFor('Start the VM now');
    await t.keys('Enter');
    // The console named the host by its address.
    const running = await t.waitFor('127.0.0.1 · runs from the backup', 120_000);
    await t.save(join(ART, 'instant-ssh-running.txt'));
    expect(running).toContain(`${vm.name}-instant`);
    expect((await execa('virsh', ['-c', 'qemu:///system', 'domstate', `${vm.name}-instant`])).stdout.trim()).toBe('running');
    await t.keys('Enter');
    await t.waitFor('Stop and discard it');
    await t.keys('Down', 'Enter');
    await t.waitFor('Yes, discard it');
    await t.keys('Down', 'Enter');
    await t.waitFor('was stopped and discarded', 120_000);
    expect((await execa('virsh', ['-c', 'qemu:///system', 'domstate', `${vm.name}-instant`], {reject: false})).exitCode).not.toBe(0);
    expect(await readdir(overlays)).toEqual([]);
  }, 240_000);
});
