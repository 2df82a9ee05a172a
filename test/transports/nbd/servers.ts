/**
 * Test-bed helpers: real NBD servers (qemu-nbd, nbdkit) started by the tests themselves, and
 * images built with qemu-img / qemu-io. Every process is killed in stop(); paths may hold spaces.
 */
import {mkdtemp, rm, stat} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {execa, type ResultPromise} from 'execa';
import type {NbdAddress} from '../../../src/transports/nbd/index.js';

export async function tempDir(prefix = 'nbd-'): Promise<{dir: string; remove: () => Promise<void>}> {
  // Short base: unix socket paths are limited to 107 bytes.
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {dir, remove: () => rm(dir, {recursive: true, force: true})};
}

import {freePort} from '../../lib/ports.js';

export {freePort};

async function canConnect(address: NbdAddress): Promise<boolean> {
  return new Promise((resolve) => {
    const s = 'socketPath' in address ? net.connect({path: address.socketPath}) : net.connect({host: address.host, port: address.port});
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface RunningServer {
  address: NbdAddress;
  process: ResultPromise;
  stop(): Promise<void>;
}

async function waitReady(proc: ResultPromise, address: NbdAddress, what: string): Promise<void> {
  let exited = false;
  proc.catch(() => undefined).finally(() => (exited = true));
  for (let i = 0; i < 400; i++) {
    if (exited) {
      const r = await proc.catch((e: unknown) => e as {stderr?: string});
      throw new Error(`${what} exited before it was ready: ${(r as {stderr?: string}).stderr ?? ''}`);
    }
    if ('socketPath' in address) {
      const ok = await stat(address.socketPath).then(() => true, () => false);
      if (ok && (await canConnect(address))) return;
    } else if (await canConnect(address)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not start listening`);
}

function stopper(proc: ResultPromise): () => Promise<void> {
  return async () => {
    proc.kill('SIGTERM');
    await proc.catch(() => undefined);
  };
}

/** qemu-nbd on a unix socket or TCP, --persistent, shared by up to 8 clients. */
export async function startQemuNbd(opts: {
  image: string;
  format?: 'qcow2' | 'raw';
  socketPath?: string;
  port?: number;
  readOnly?: boolean;
  bitmap?: string;
  exportName?: string;
  extraArgs?: string[];
}): Promise<RunningServer> {
  const address: NbdAddress = opts.socketPath ? {socketPath: opts.socketPath} : {host: '127.0.0.1', port: opts.port ?? (await freePort())};
  const args = ['--persistent', '--shared=8', `--format=${opts.format ?? 'qcow2'}`, '--cache=none', '--aio=native'];
  if ('socketPath' in address) args.push(`--socket=${address.socketPath}`);
  else args.push('--bind=127.0.0.1', `--port=${address.port}`);
  if (opts.readOnly) args.push('--read-only');
  if (opts.bitmap) args.push(`--bitmap=${opts.bitmap}`);
  if (opts.exportName !== undefined) args.push(`--export-name=${opts.exportName}`);
  args.push(...(opts.extraArgs ?? []), opts.image);
  const proc = execa('qemu-nbd', args, {reject: true, stdin: 'ignore'});
  await waitReady(proc, address, 'qemu-nbd');
  return {address, process: proc, stop: stopper(proc)};
}

/** nbdkit in the foreground on a unix socket with a plugin and filters, e.g. ['memory', '1G']. */
export async function startNbdkit(socketPath: string, pluginArgs: string[], filters: string[] = []): Promise<RunningServer> {
  const address: NbdAddress = {socketPath};
  const args = ['--exit-with-parent', '--foreground', '--unix', socketPath, ...filters.map((f) => `--filter=${f}`), ...pluginArgs];
  const proc = execa('nbdkit', args, {reject: true, stdin: 'ignore'});
  await waitReady(proc, address, 'nbdkit');
  return {address, process: proc, stop: stopper(proc)};
}

export async function qemuImg(...args: string[]): Promise<string> {
  return (await execa('qemu-img', args)).stdout;
}

/** Runs qemu-io commands against an image (-c per command). */
export async function qemuIo(image: string, format: string, ...commands: string[]): Promise<void> {
  await execa('qemu-io', ['-f', format, ...commands.flatMap((c) => ['-c', c]), image]);
}
