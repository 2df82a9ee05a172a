/**
 * A qemu-nbd export of one image file on a host (through a command runner, so local or SSH):
 * read-only for shut-off backups (optionally with a dirty bitmap), writable for restores.
 *
 * qemu-nbd runs with --fork (it returns once the socket listens) and a pid file in the
 * session's scratch directory; stop() ends it and waits until it has exited, so the image is
 * closed (and its bitmaps written back) before anything else touches it. cleanupLeftovers finds
 * forgotten ones by those pid files.
 */
import {setTimeout as sleep} from 'node:timers/promises';
import {CommandError, type CommandRunner} from '../../transports/command-runner.js';
import {isPortInUse, type LibvirtHost, type NbdEndpoint} from './host.js';

export interface QemuNbdExport {
  readonly endpoint: NbdEndpoint;
  readonly exportName: string;
  stop(): Promise<void>;
}

export function qemuNbdArgv(opts: {
  image: string;
  format: string;
  exportName: string;
  endpoint: NbdEndpoint;
  pidFile: string;
  readOnly: boolean;
  bitmap?: string;
  connections?: number;
}): string[] {
  return [
    'qemu-nbd',
    '--fork',
    '--persistent',
    `--shared=${opts.connections ?? 8}`,
    ...(opts.endpoint.kind === 'unix' ? [`--socket=${opts.endpoint.path}`] : [`--bind=${opts.endpoint.address}`, `--port=${opts.endpoint.port}`]),
    `--pid-file=${opts.pidFile}`,
    `--export-name=${opts.exportName}`,
    `--format=${opts.format}`,
    ...(opts.readOnly ? ['--read-only'] : ['--discard=unmap']),
    ...(opts.bitmap ? [`--bitmap=${opts.bitmap}`] : []),
    opts.image.startsWith('-') ? `./${opts.image}` : opts.image,
  ];
}

export async function startQemuNbd(runner: CommandRunner, opts: Parameters<typeof qemuNbdArgv>[0]): Promise<QemuNbdExport> {
  await runner.run(qemuNbdArgv(opts), {timeoutMs: 60_000});
  return {
    endpoint: opts.endpoint,
    exportName: opts.exportName,
    stop: () => stopByPidFile(runner, opts.pidFile),
  };
}

/** Ends the qemu-nbd whose pid is in `pidFile` and waits for it to exit (no-op when gone). */
export async function stopByPidFile(runner: CommandRunner, pidFile: string): Promise<void> {
  const r = await runner.run(['cat', '--', pidFile], {allowFailure: true});
  const pid = r.stdout.trim();
  if (r.exitCode !== 0 || !/^\d+$/.test(pid)) return;
  // The pid may have been reused since (a leftover from before a reboot): only end a qemu-nbd.
  const comm = await runner.run(['cat', '--', `/proc/${pid}/comm`], {allowFailure: true});
  if (comm.exitCode !== 0 || comm.stdout.trim() !== 'qemu-nbd') return;
  await runner.run(['kill', '-TERM', pid], {allowFailure: true});
  for (let i = 0; i < 200; i++) {
    const alive = await runner.run(['kill', '-0', pid], {allowFailure: true});
    if (alive.exitCode !== 0) return;
    await sleep(50);
  }
  await runner.run(['kill', '-KILL', pid], {allowFailure: true});
}

/**
 * Starts a qemu-nbd on a host at a fresh endpoint of the host's NBD transport (the socket
 * `<exportName>.sock` in `dir`, or a random TCP port, retried when taken).
 */
export async function startExport(
  host: LibvirtHost,
  dir: string,
  opts: Omit<Parameters<typeof qemuNbdArgv>[0], 'endpoint'>,
): Promise<QemuNbdExport> {
  for (let attempt = 0; ; attempt++) {
    const endpoint = host.nbdEndpoint(dir, opts.exportName);
    try {
      return await startQemuNbd(host.runner, {...opts, endpoint});
    } catch (err) {
      if (attempt < 5 && endpoint.kind === 'tcp' && err instanceof CommandError && isPortInUse(err.stderr)) continue;
      throw err;
    }
  }
}
