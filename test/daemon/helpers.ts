/**
 * Test helpers: a real vmbackupd process (node dist/daemon/main.js: test/lib/dist.ts) on a temp state
 * directory and socket, its client, its log lines, and waits that poll the API (bounded by the
 * test timeout, never a timed assertion).
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {DaemonClient} from '../../src/api/client.js';
import type {SessionRecord} from '../../src/api/session-model.js';
import {DAEMON_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningDaemon {
  proc: ChildProcess;
  client: DaemonClient;
  lines: string[];
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `wrap` runs the daemon under another command (e.g. a bubblewrap sandbox: ['bwrap', ..., '--']). */
export async function startDaemon(stateDir: string, socket: string, env: NodeJS.ProcessEnv = {}, wrap: string[] = []): Promise<RunningDaemon> {
  const argv = [process.execPath, DAEMON_MAIN, '--state-dir', stateDir, '--socket', socket];
  const full = [...wrap, ...argv];
  const proc = spawn(full[0]!, full.slice(1), {
    cwd: ROOT,
    env: {...process.env, ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let exited = false;
  const exit = new Promise<number | null>((r) =>
    proc.on('exit', (code) => {
      exited = true;
      r(code);
    }),
  );
  for (const s of [proc.stdout!, proc.stderr!]) s.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const client = new DaemonClient({socketPath: socket});
  for (;;) {
    if (exited) throw new Error(`vmbackupd exited during start-up:\n${lines.join('\n')}`);
    if (lines.some((l) => l.includes('Listening on'))) break;
    await sleep(50);
  }
  return {
    proc,
    client,
    lines,
    async stop() {
      proc.kill('SIGTERM');
      const code = await exit;
      await client.close();
      return code;
    },
    async kill() {
      proc.kill('SIGKILL');
      await exit;
      await client.close();
    },
  };
}

export async function waitForSession(client: DaemonClient, id: string, until: (s: SessionRecord) => boolean = (s) => s.state !== 'running'): Promise<SessionRecord> {
  for (;;) {
    const s = await client.session(id);
    if (until(s)) return s;
    await sleep(100);
  }
}

/**
 * Gives a test daemon its own checkpoint prefix and host scratch directory: start-up cleanup
 * removes what carries the appliance's prefix or sits in its scratch directory, and other
 * suites share this libvirtd.
 */
export async function isolate(client: DaemonClient): Promise<void> {
  const tag = Math.random().toString(36).slice(2, 8);
  await client.setSettings({checkpointPrefix: `dmn${tag}-`, hostScratchDir: `/var/tmp/vmbackup-dmn-${tag}`});
}

/**
 * The usual bed of the daemon tests against oVirt: a real daemon in a scratch directory with a
 * repository `r`, the engine simulator as connection `engine` and a job `web` that backs up web01
 * by id (no retries).
 */
export interface EngineBed {
  dir: string;
  sim: Simulator;
  d: RunningDaemon;
  stop(): Promise<void>;
}

export async function startEngineBed(prefix: string, opts: {repositoryName?: string; jobName?: string} = {}): Promise<EngineBed> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const sim = await startSimulator({delayMs: 5});
  const d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  await isolate(d.client);
  await d.client.create('repositories', {id: 'r', name: opts.repositoryName ?? 'R', path: join(dir, 'repo')});
  await d.client.create('connections', {id: 'engine', kind: 'ovirt', name: 'Engine', url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, caFingerprint: sim.caFingerprint});
  await d.client.create('jobs', {id: 'web', name: opts.jobName ?? 'Web', source: {connection: 'engine', vms: [{id: sim.vm('web01').id}]}, repository: 'r', retries: {count: 0}});
  const bed: EngineBed = {
    dir,
    sim,
    d,
    // The daemon running then (a test may restart it: bed.d is the new one).
    stop: async () => {
      await bed.d.stop();
      await sim.stop();
      await rm(dir, {recursive: true, force: true});
    },
  };
  return bed;
}
