/**
 * How fast a full backup of a running VM can be read through each NBD transport of the libvirt
 * adapter (prints figures; not a test):
 *   node --import tsx bench/libvirt-transport.ts [MiB=256]
 * One VM, one qcow2 disk with MiB of random data written by the guest (HMP qemu-io); for each
 * transport (unix socket on the host, SSH-forwarded socket through the test sshd on
 * 127.0.0.1:2222, plain TCP on 127.0.0.1) a full backup is opened and every data extent read
 * with maxParallelReads reads in flight, then aborted. Times cover openBackup to the last byte.
 */
import {LibvirtPlatform, type LibvirtHostConfig} from '../src/platforms/libvirt/index.js';
import {createTestVm, destroyTestVm, ensureLibvirt, guestWrite, TEST_PREFIX} from '../test/lib/libvirt.js';
import {ensureSshd, testSshTarget} from '../test/lib/sshd.js';

const mib = Number(process.argv[2] ?? 256);
await ensureLibvirt();
await ensureSshd();
const vm = await createTestVm('bench transport', [{target: 'vda', format: 'qcow2', sizeMiB: mib * 2}], {start: true});
try {
  for (let off = 0; off < mib; off += 64) {
    await guestWrite(vm, 'vda', `write -P ${(off / 64) % 250} ${off}M 64M`);
  }
  const t = testSshTarget();
  const hosts: [string, LibvirtHostConfig][] = [
    ['unix socket (local host)', {name: 'h', connection: {kind: 'local'}}],
    ['ssh-forwarded socket', {name: 'h', connection: {kind: 'ssh', host: t.host, port: t.port, user: t.user, identityFile: t.identityFile, knownHostsFile: t.knownHostsFile}}],
    ['plain TCP (127.0.0.1)', {name: 'h', connection: {kind: 'local'}, nbd: {transport: 'tcp', bindAddress: '127.0.0.1'}}],
  ];
  for (const [label, host] of hosts) {
    const platform = new LibvirtPlatform({hosts: [host], checkpointPrefix: TEST_PREFIX, scratchDir: '/var/tmp/vmbackup-bench'});
    const started = performance.now();
    const backup = await platform.openBackup(vm.uuid, {log: () => {}});
    const opened = performance.now();
    let bytes = 0;
    try {
      const src = backup.sources[0]!;
      const pending = new Set<Promise<void>>();
      for await (const e of src.extents()) {
        if (e.kind !== 'data') continue;
        for (let o = e.offset; o < e.offset + e.length; o += src.maxReadSize) {
          const len = Math.min(src.maxReadSize, e.offset + e.length - o);
          const p: Promise<void> = src.read(o, len).then(() => {
            bytes += len;
            pending.delete(p);
          });
          pending.add(p);
          if (pending.size >= src.maxParallelReads) await Promise.race(pending);
        }
      }
      await Promise.all(pending);
    } finally {
      await backup.abort();
      await platform.close();
    }
    const secs = (performance.now() - started) / 1000;
    const readSecs = (performance.now() - opened) / 1000;
    console.log(
      `${label.padEnd(28)} ${(bytes / 2 ** 20).toFixed(0)} MiB in ${secs.toFixed(2)} s (open ${(secs - readSecs).toFixed(2)} s, read ${(bytes / 2 ** 20 / readSecs).toFixed(0)} MiB/s)`,
    );
  }
} finally {
  await destroyTestVm(vm);
}
