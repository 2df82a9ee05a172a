/**
 * stopByPidFile against real processes: a qemu-nbd that has exited but is not reaped yet (a
 * zombie: its parent, as a slow init would, has not waited for it) counts as stopped at once,
 * and a pid file naming another program never gets a signal.
 */
import {chmod, copyFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {spawn, type ChildProcess} from 'node:child_process';
import {afterEach, describe, expect, it} from 'vitest';
import {stopByPidFile} from '../../../src/platforms/image/qemu-nbd.js';
import {LocalRunner, type CommandRunner} from '../../../src/transports/command-runner.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A runner that records every command it runs. */
function recording(): {runner: CommandRunner; argvs: string[][]} {
  const local = new LocalRunner();
  const argvs: string[][] = [];
  return {argvs, runner: {where: local.where, run: (argv, opts) => (argvs.push([...argv]), local.run(argv, opts))} as CommandRunner};
}

async function stateOf(pid: number): Promise<string> {
  return /\) (\S)/.exec(await readFile(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
}

describe('stopByPidFile', () => {
  it('treats an exited, not yet reaped qemu-nbd (zombie) as stopped without waiting or SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmb-stop-'));
    // A program whose command name is qemu-nbd, started by a parent that never waits for it.
    const fake = join(dir, 'qemu-nbd');
    await copyFile('/bin/sleep', fake);
    await chmod(fake, 0o755);
    const parent: ChildProcess = spawn('python3', ['-c', 'import subprocess,sys,time; p=subprocess.Popen([sys.argv[1], "0"]); print(p.pid, flush=True); time.sleep(60)', fake], {stdio: ['ignore', 'pipe', 'inherit']});
    cleanups.push(async () => {
      parent.kill('SIGKILL');
      await rm(dir, {recursive: true, force: true});
    });
    const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    for (let i = 0; i < 200 && (await stateOf(pid)) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await stateOf(pid)).toBe('Z');
    const pidFile = join(dir, 'qemu-nbd.pid');
    await writeFile(pidFile, `${pid}\n`);
    const {runner, argvs} = recording();
    await stopByPidFile(runner, pidFile);
    // cat pid file, one stat read: nothing more (kill -0 succeeds on a zombie and was polled for 10 s).
    expect(argvs.map((a) => a[0])).toEqual(['cat', 'cat']);
    expect(argvs.some((a) => a[0] === 'kill')).toBe(false);
  });

  it('ends a live qemu-nbd-named process with SIGTERM and returns once it is gone; leaves other programs alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmb-stop-'));
    const fake = join(dir, 'qemu-nbd');
    await copyFile('/bin/sleep', fake);
    await chmod(fake, 0o755);
    const live = spawn(fake, ['60'], {stdio: 'ignore'});
    const other = spawn('sleep', ['60'], {stdio: 'ignore'});
    const exited = new Promise<NodeJS.Signals | null>((resolve) => live.once('exit', (_code, signal) => resolve(signal)));
    cleanups.push(async () => {
      live.kill('SIGKILL');
      other.kill('SIGKILL');
      await rm(dir, {recursive: true, force: true});
    });
    await writeFile(join(dir, 'other.pid'), `${other.pid}\n`);
    const rec = recording();
    await stopByPidFile(rec.runner, join(dir, 'other.pid'));
    expect(rec.argvs.some((a) => a[0] === 'kill')).toBe(false);
    expect(other.exitCode).toBe(null);
    await writeFile(join(dir, 'live.pid'), `${live.pid}\n`);
    await stopByPidFile(new LocalRunner(), join(dir, 'live.pid'));
    expect(await exited).toBe('SIGTERM');
  });
});
