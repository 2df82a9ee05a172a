/**
 * Packaging: the systemd unit passes `systemd-analyze verify`, and appliance/install-daemon.sh
 * (without systemd as PID 1, as on this test bed) builds nothing itself but starts the built
 * daemon in the background with a pid file, a private socket owned by the vmbackup group, and a
 * console user whose login shell is the console wrapper.
 */
import {execa} from 'execa';
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DaemonClient} from '../../src/daemon/client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-pkg-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('packaging', () => {
  it('the unit is hardened and passes systemd-analyze verify', async () => {
    const unit = (await readFile(join(ROOT, 'systemd/vmbackupd.service'), 'utf8')).replaceAll('@ROOT@', ROOT.replace(/\/$/, ''));
    for (const key of ['ProtectSystem=strict', 'PrivateTmp=yes', 'NoNewPrivileges=yes', 'StateDirectory=vmbackup', 'RuntimeDirectory=vmbackup', 'ReadWritePaths=']) expect(unit).toContain(key);
    const file = join(dir, 'vmbackupd.service');
    await writeFile(file, unit);
    const r = await execa('systemd-analyze', ['verify', file], {reject: false});
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('vmbackupd.service'))).toEqual([]);
  });

  it('install-daemon.sh starts the daemon in the background, with a private socket and the console user', async () => {
    await execa(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {cwd: ROOT, reject: false});
    const socket = join(dir, 'run', 'api.sock');
    const env = {VMBACKUP_STATE_DIR: join(dir, 'state'), VMBACKUP_SOCKET: socket};
    const r = await execa('bash', ['appliance/install-daemon.sh'], {cwd: ROOT, env, reject: false});
    expect(r.exitCode, r.stderr).toBe(0);
    const pid = Number(await readFile(join(dir, 'run', 'vmbackupd.pid'), 'utf8'));
    try {
      const client = new DaemonClient({socketPath: socket});
      expect((await client.status()).daemon.pid).toBe(pid);
      await client.close();
      const gid = Number((await execa('getent', ['group', 'vmbackup'])).stdout.split(':')[2]);
      const s = await stat(socket);
      expect(s.mode & 0o777).toBe(0o660);
      expect(s.gid).toBe(gid);
      const st = await stat(join(dir, 'state'));
      expect([st.mode & 0o777, st.gid]).toEqual([0o750, gid]);
      const user = (await execa('getent', ['passwd', 'console'])).stdout;
      expect(user.endsWith(':/usr/local/bin/vmbackup-console')).toBe(true);
      expect((await execa('id', ['-nG', 'console'])).stdout.split(' ')).toContain('vmbackup');
      // Idempotent: a second run restarts the daemon.
      const again = await execa('bash', ['appliance/install-daemon.sh'], {cwd: ROOT, env, reject: false});
      expect(again.exitCode, again.stderr).toBe(0);
      const pid2 = Number(await readFile(join(dir, 'run', 'vmbackupd.pid'), 'utf8'));
      expect(pid2).not.toBe(pid);
    } finally {
      const last = Number(await readFile(join(dir, 'run', 'vmbackupd.pid'), 'utf8'));
      process.kill(last, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(last, 0);
          await new Promise((res) => setTimeout(res, 100));
        } catch {
          break;
        }
      }
    }
  });
});
