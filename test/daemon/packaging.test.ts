/**
 * Packaging: the systemd unit passes `systemd-analyze verify`, and appliance/install-daemon.sh
 * (without systemd as PID 1, as on this test bed) builds nothing itself but starts the built
 * daemon in the background with a pid file, a private socket owned by the vmbackup group, and a
 * console user whose login shell is the console wrapper; `ssh console@…` opens the console.
 */
import {execa} from 'execa';
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DaemonClient} from '../../src/api/client.js';

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
    // The test runs the real installer: keep the machine's own console wrapper as it was.
    const wrapper = await readFile(CONSOLE_WRAPPER, 'utf8').catch(() => undefined);
    try {
      await installAndCheck();
    } finally {
      if (wrapper !== undefined) await writeFile(CONSOLE_WRAPPER, wrapper, {mode: 0o755});
    }
  });
});

const CONSOLE_WRAPPER = '/usr/local/bin/vmbackup-console';

/**
 * `ssh console@appliance` opens the console and nothing else: sshd with the system's own
 * configuration (which includes the installer's Match block), without PAM, so the account must
 * not be locked; a command given on the ssh line is ignored (ForceCommand); `q` quits.
 */
async function sshLoginOpensConsole(): Promise<void> {
  const key = join(dir, 'console-key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host-key')]);
  const home = (await execa('getent', ['passwd', 'console'])).stdout.split(':')[5]!;
  await execa('install', ['-d', '-m', '700', '-o', 'console', '-g', 'console', join(home, '.ssh')]);
  await execa('install', ['-m', '600', '-o', 'console', '-g', 'console', `${key}.pub`, join(home, '.ssh', 'authorized_keys')]);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const pidFile = join(dir, 'sshd.pid');
  const log = join(dir, 'sshd.log');
  await execa('/usr/sbin/sshd', ['-f', '/etc/ssh/sshd_config', '-o', `Port=${port}`, '-o', 'ListenAddress=127.0.0.1', '-o', `HostKey=${join(dir, 'host-key')}`, '-o', `PidFile=${pidFile}`, '-o', 'UsePAM=no', '-E', log]);
  // sshd writes its pid file after it has gone to the background: wait for it (or say why it is not there).
  for (let i = 0; i < 100 && !(await readFile(pidFile, 'utf8').then(() => true, () => false)); i++) await new Promise((res) => setTimeout(res, 50));
  expect(await readFile(pidFile, 'utf8').then(() => true, () => false), await readFile(log, 'utf8').catch(() => 'no sshd log')).toBe(true);
  try {
    // sshd's own reading of the installed configuration for the console user.
    const effective = (await execa('/usr/sbin/sshd', ['-T', '-f', '/etc/ssh/sshd_config', '-o', `HostKey=${join(dir, 'host-key')}`, '-C', 'user=console,host=localhost,addr=127.0.0.1'])).stdout;
    for (const line of ['disableforwarding yes', 'allowtcpforwarding no', 'allowstreamlocalforwarding no', 'allowagentforwarding no', 'x11forwarding no', 'permittunnel no', 'permituserrc no', 'permittty yes', 'forcecommand /usr/local/bin/vmbackup-console']) {
      expect(effective.split('\n')).toContain(line);
    }
    const opts = ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-p', String(port)];
    // A port forward is refused (the server says so; the client gives up).
    const fwd = await execa('ssh', [...opts, '-N', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22', 'console@127.0.0.1'], {reject: false, timeout: 30_000});
    expect(fwd.exitCode).not.toBe(0);
    expect(fwd.stderr).toMatch(/forwarding failed|prohibited/i);
    // A client environment the console never asked for (a 64 KiB LC_ALL, an odd LANG) changes nothing.
    const env = ['-o', `SetEnv=LC_ALL=${'x'.repeat(65536)} LANG=\u001b[2J`];
    const ssh = execa('ssh', ['-tt', ...opts, ...env, 'console@127.0.0.1', 'echo injected-$((6*7))'], {reject: false, timeout: 60_000});
    let out = '';
    ssh.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('vmbackup ›') && !out.includes('__q_sent__')) {
        out += '__q_sent__';
        setTimeout(() => ssh.stdin!.write('q'), 1000);
      }
    });
    const r = await ssh;
    expect(out, `${out}\n${r.stderr}`).toContain('vmbackup ›');
    expect(out).not.toContain('injected-42');
    expect(r.exitCode).toBe(0);
  } finally {
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    if (pid > 0) process.kill(pid, 'SIGTERM');
  }
}

async function installAndCheck(): Promise<void> {
  // dist/ is compiled by test/global-setup.ts before any test file starts.
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
    await sshLoginOpensConsole();
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
}
