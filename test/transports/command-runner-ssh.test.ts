import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createConnection, createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {LocalRunner} from '../../src/transports/command-runner.js';
import {scanHostKey, trustHostKeys} from '../../src/transports/ssh-host-key.js';
import {SshRunner} from '../../src/transports/ssh-runner.js';
import {openSocketTunnel} from '../../src/transports/ssh-tunnel.js';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {SSHD_DIR, SSHD_PORT, ensureSshd, testSshTarget} from '../lib/sshd.js';

let dir: string;
beforeAll(async () => {
  await ensureSshd();
  dir = await mkdtemp(join(tmpdir(), 'vmb-ssh-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('SshRunner against a real sshd', () => {
  it('runs a command with awkward arguments that arrive intact', async () => {
    const weird = ['with space', "it's", '"dq"', 'a;b', '$HOME', '`id`', 'ünïcødé 名前', ''];
    const lines: string[] = [];
    const r = await new SshRunner(testSshTarget(), {log: (l) => lines.push(l)}).run(['printf', '%s\\0', ...weird]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(weird);
    expect(lines[0]).toContain('[root@127.0.0.1:2222] printf');
  });

  it('runs remote commands in an English UTF-8 locale', async () => {
    const r = await new SshRunner(testSshTarget()).run(['sh', '-c', 'echo "$LC_ALL"']);
    expect(r.stdout.trim()).toBe('C.UTF-8');
  });

  it('carries a remote non-zero exit and its stderr', async () => {
    const err = await new SshRunner(testSshTarget()).run(['sh', '-c', 'echo nope >&2; exit 7']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('nope');
    expect((err as UserError).exitCode).toBe(ExitCode.platformFailed);
  });

  it('refuses an unknown host key, showing the fingerprint to confirm', async () => {
    const empty = join(dir, 'empty_known_hosts');
    await writeFile(empty, '');
    const err = await new SshRunner(testSshTarget({knownHostsFile: empty})).run(['true']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
    const real = await new LocalRunner().run(['ssh-keygen', '-l', '-E', 'sha256', '-f', `${SSHD_DIR}/host_ed25519.pub`]);
    const fp = real.stdout.split(' ')[1]!;
    expect((err as UserError).message).toContain(fp);
    expect((err as UserError).hint).toContain('ssh-keygen -lf');
  });

  it('refuses a changed host key', async () => {
    const other = join(dir, 'other_key');
    await new LocalRunner().run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const pub = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    const kh = join(dir, 'changed_known_hosts');
    await writeFile(kh, `[127.0.0.1]:${SSHD_PORT} ${pub}\n`);
    const err = await new SshRunner(testSshTarget({knownHostsFile: kh})).run(['true']).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
  });

  it('scanHostKey + trustHostKeys make an unknown host trusted', async () => {
    const keys = await scanHostKey('127.0.0.1', SSHD_PORT);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys[0]!.fingerprint).toMatch(/^SHA256:/);
    const kh = join(dir, 'tofu_known_hosts');
    await trustHostKeys(kh, keys);
    await new SshRunner(testSshTarget({knownHostsFile: kh})).check();
  });

  it('reports a wrong key as authentication failure', async () => {
    const wrong = join(dir, 'wrong_key');
    await new LocalRunner().run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', wrong]);
    const err = await new SshRunner(testSshTarget({identityFile: wrong})).run(['true']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.authFailed);
  });

  it('reports a closed port as unreachable', async () => {
    const err = await new SshRunner(testSshTarget({port: 1})).run(['true']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.unreachable);
  });

  it('forwards a unix socket from the host to the appliance', async () => {
    const remote = join(dir, 'remote.sock');
    const server = createServer((s) => s.pipe(s));
    await new Promise<void>((res) => server.listen(remote, res));
    const tunnel = await openSocketTunnel(testSshTarget(), join(dir, 'local.sock'), remote);
    try {
      const echoed = await new Promise<string>((res, rej) => {
        const c = createConnection(tunnel.localPath, () => c.end('ping through ssh'));
        let got = '';
        c.on('data', (d) => (got += String(d)));
        c.on('end', () => res(got));
        c.on('error', rej);
      });
      expect(echoed).toBe('ping through ssh');
    } finally {
      await tunnel.close();
      server.close();
    }
  });
});
