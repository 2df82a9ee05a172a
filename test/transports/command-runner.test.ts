import {describe, expect, it} from 'vitest';
import {CommandError, LocalRunner, displayCommand, redact, shellQuote} from '../../src/transports/command-runner.js';
import {classifySshFailure, parseFingerprints, remoteCommand, sshCommandArgv, validateTarget} from '../../src/transports/ssh-args.js';
import {ExitCode, UserError} from '../../src/util/errors.js';

const WEIRD = ['plain', 'with space', "it's", '"dq"', 'a;b', '$HOME', '`id`', 'back\\slash', 'ünïcødé 名前', '', '-n', '*', 'new\nline'];

describe('LocalRunner', () => {
  it('passes every argument intact, with no shell in between', async () => {
    const r = await new LocalRunner().run(['printf', '%s\\0', ...WEIRD]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(WEIRD);
  });

  it('logs each command line with secrets redacted', async () => {
    const lines: string[] = [];
    await new LocalRunner({log: (l) => lines.push(l)}).run(['echo', 'password=hunter2', 'x y'], {secrets: ['hunter2']});
    expect(lines).toEqual([`$ echo password=*** 'x y'`]);
  });

  it('throws a CommandError carrying stderr on a non-zero exit', async () => {
    const err = await new LocalRunner().run(['sh', '-c', 'echo broken >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).commandExitCode).toBe(3);
    expect((err as CommandError).stderr).toContain('broken');
    expect((err as CommandError).message).toContain('broken');
    expect((err as CommandError).exitCode).toBe(ExitCode.platformFailed);
  });

  it('returns the failure instead when allowFailure is set', async () => {
    const r = await new LocalRunner().run(['sh', '-c', 'exit 4'], {allowFailure: true});
    expect(r.exitCode).toBe(4);
  });

  it('stops a command at its timeout with a UserError naming it', async () => {
    const err = await new LocalRunner().run(['sleep', '30'], {timeoutMs: 300}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('sleep 30');
    expect((err as UserError).message).toContain('did not finish');
  });

  it('says which program is missing', async () => {
    const err = await new LocalRunner().run(['no-such-program-xyz']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('no-such-program-xyz is not installed');
  });

  it('feeds stdin', async () => {
    const r = await new LocalRunner().run(['cat'], {input: 'from stdin'});
    expect(r.stdout).toBe('from stdin');
  });
});

describe('quoting for the remote shell', () => {
  it('survives a real POSIX shell for every awkward argument', async () => {
    const r = await new LocalRunner().run(['sh', '-c', `printf '%s\\0' ${remoteCommand(WEIRD)}`]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(WEIRD);
  });

  it('puts the whole remote command after --, as one argument', () => {
    const argv = sshCommandArgv(
      {host: 'h1', user: 'root', identityFile: '/k', knownHostsFile: '/kh', port: 2200},
      ['virsh', 'dumpxml', 'my vm'],
    );
    expect(argv.slice(-3)).toEqual(['root@h1', '--', `'env' 'LC_ALL=C.UTF-8' 'virsh' 'dumpxml' 'my vm'`]);
    expect(argv).toContain('StrictHostKeyChecking=yes');
    expect(argv).toContain('BatchMode=yes');
    expect(argv).toContain('UserKnownHostsFile=/kh');
  });

  it('display quoting and redaction', () => {
    expect(displayCommand(['virsh', 'define', 'a b.xml'])).toBe(`virsh define 'a b.xml'`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(redact('token=abc abc', ['abc', ''])).toBe('token=*** ***');
  });

  it('refuses host and user values that ssh would read as options', () => {
    const base = {identityFile: '/k', knownHostsFile: '/kh'};
    expect(() => validateTarget({...base, host: '-oProxyCommand=x', user: 'root'})).toThrow(UserError);
    expect(() => validateTarget({...base, host: 'h', user: 'ro ot'})).toThrow(UserError);
    expect(() => validateTarget({...base, host: 'h', user: 'root', port: 70000})).toThrow(UserError);
    expect(() => validateTarget({...base, host: 'hvm-1.example.com', user: 'root', port: 22})).not.toThrow();
  });
});

describe('ssh failure classification', () => {
  it.each([
    ['Host key verification failed.', 'untrusted'],
    ['No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.', 'untrusted'],
    ['@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @', 'untrusted'],
    ['root@127.0.0.1: Permission denied (publickey).', 'auth'],
    ['ssh: connect to host 127.0.0.1 port 1: Connection refused', 'unreachable'],
    ['ssh: Could not resolve hostname nohost: Name or service not known', 'unreachable'],
    ['something else', 'other'],
  ])('%s → %s', (stderr, kind) => {
    expect(classifySshFailure(stderr)).toBe(kind);
  });

  it('parses ssh-keygen -l output', () => {
    expect(parseFingerprints('256 SHA256:abcDEF+/x [127.0.0.1]:2222 (ED25519)\n')).toEqual([
      {bits: 256, fingerprint: 'SHA256:abcDEF+/x', type: 'ED25519'},
    ]);
  });
});
