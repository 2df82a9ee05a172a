/**
 * The systemd unit's sandbox, emulated with bubblewrap (no systemd as PID 1 on the test bed):
 * the whole file system read-only (ProtectSystem=strict), a private /tmp (PrivateTmp=yes),
 * no_new_privs (NoNewPrivileges=yes), a minimal /dev (PrivateDevices=yes), only the capabilities
 * of CapabilityBoundingSet, and writable only the unit's ReadWritePaths kinds: the
 * state directory, the runtime directory, the repositories, the host scratch directory and the
 * VM image directory. Under it the daemon still runs virsh, qemu-img and qemu-nbd and backs up
 * a running and a shut-off VM; a repository outside the writable paths fails with a clear error.
 */
import {execa} from 'execa';
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createTestVm, destroyTestVm, ensureLibvirt, offlineWrite, VMS_DIR, type TestVm} from '../lib/libvirt.js';
import {startDaemon, waitForSession, type RunningDaemon} from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let d: RunningDaemon;
const vms: TestVm[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  // Not under /tmp: the sandbox's /tmp is private.
  await mkdir('/var/tmp/vmbackup-test', {recursive: true});
  dir = await mkdtemp('/var/tmp/vmbackup-test/sandbox-');
  for (const sub of ['state', 'run', 'repos', 'scratch', 'outside']) await mkdir(join(dir, sub));
  vms.push(await createTestVm(`dmn-sbx-${process.pid} off`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}]));
  vms.push(await createTestVm(`dmn-sbx-${process.pid} on`, [{target: 'vda', format: 'qcow2', sizeMiB: 8}], {start: true}));
  await offlineWrite(vms[0]!, 'vda', 'write -P 0x61 0 1M');
  const unit = await readFile(join(ROOT, 'systemd/vmbackupd.service'), 'utf8');
  expect(unit).toMatch(/^ProtectSystem=strict$/m);
  expect(unit).toMatch(/^PrivateTmp=yes$/m);
  expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
  expect(unit).toMatch(/^PrivateDevices=yes$/m);
  // CapabilityBoundingSet: the daemon and everything it runs keep only these capabilities.
  const caps = /^CapabilityBoundingSet=(.+)$/m.exec(unit)![1]!.trim().split(/\s+/);
  expect(caps).not.toContain('CAP_SYS_ADMIN');
  const rw = [join(dir, 'state'), join(dir, 'run'), join(dir, 'repos'), join(dir, 'scratch'), VMS_DIR];
  // The checkout stays visible (read-only) even when it lies under /tmp, as a CI clone may.
  // A minimal /dev (PrivateDevices=yes); every capability dropped but the unit's.
  const sandbox = [
    'bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--ro-bind', ROOT, ROOT, ...rw.flatMap((p) => ['--bind', p, p]),
    '--cap-drop', 'ALL', ...caps.flatMap((c) => ['--cap-add', c]), '--die-with-parent', '--',
  ];
  d = await startDaemon(join(dir, 'state'), join(dir, 'run', 'api.sock'), {}, sandbox);
  await d.client.setSettings({checkpointPrefix: `dmnsbx${process.pid}-`, hostScratchDir: join(dir, 'scratch')});
});

afterAll(async () => {
  await d?.stop();
  for (const vm of vms) await destroyTestVm(vm);
  if (dir) await rm(dir, {recursive: true, force: true});
});

describe('vmbackupd inside the unit sandbox', () => {
  it('cannot write outside its writable paths, and says so', async () => {
    expect((await execa('bwrap', ['--ro-bind', '/', '/', '--', 'touch', join(dir, 'outside', 'x')], {reject: false})).stderr).toMatch(/Read-only file system/);
    const err = await d.client.create('repositories', {name: 'Outside', path: join(dir, 'outside', 'repo')}).then(() => undefined, (e: unknown) => e as Error & {hint?: string});
    expect(err?.message).toMatch(/Cannot create a repository at .*outside\/repo|read-only/i);
    expect(err?.hint).toMatch(/ReadWritePaths/);
  });

  it('backs up a running and a shut-off VM with virsh, qemu-img and qemu-nbd', async () => {
    await d.client.create('repositories', {id: 'r', name: 'R', path: join(dir, 'repos', 'r')});
    await d.client.create('connections', {id: 'kvm', kind: 'morpheus', name: 'KVM', clusters: [{name: 'c', hosts: [{name: 'local', connection: {kind: 'local'}}]}]});
    await d.client.create('jobs', {id: 'j', name: 'J', source: {connection: 'kvm', vms: vms.map((v) => ({id: v.uuid}))}, repository: 'r', guestConsistency: false, retries: {count: 0}});
    for (let run = 1; run <= 2; run++) {
      const s = await waitForSession(d.client, (await d.client.startJob('j')).id);
      expect(s.state, JSON.stringify(s.log)).toBe('success');
      expect(s.vms.map((v) => v.incremental)).toEqual([run === 2, run === 2]);
    }
  });
});
