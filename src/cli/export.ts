/**
 * `vmbackup export`: serves the disks of a restore point read-only over NBD, straight from the
 * repository, until stopped (Ctrl-C, SIGTERM) or idle: for qemu-img/nbdcopy copies that skip
 * zeros, for starting a VM on it (instant recovery), for file-level restore with libguestfs.
 *
 *   vmbackup export --repo R (--restore-point ID | --vm NAME) [--disk KEY]...
 *                   (--socket PATH | --listen ADDR:PORT --tls-cert F --tls-key F [--tls-ca F])
 *                   [--idle-timeout SECONDS]
 *
 * Each disk is an export named by its key (vda, sda, or the oVirt disk id). It serves at once
 * whatever the disk's size: only the index (32 bytes per MiB) is read before the first byte.
 * While it serves, the restore point is held: prune keeps it and forget refuses it.
 */
import {readFile} from 'node:fs/promises';
import {NbdServer} from '../transports/nbd/server.js';
import {ExitCode, UserError} from '../util/errors.js';
import {formatBytes} from '../util/format.js';
import type {Command} from './command.js';
import {openRepo, passphraseOptions} from './passphrase.js';
import {pickRestorePoint} from './restore.js';
import {onStopSignals} from './stop-signals.js';

export const exportCommand: Command = {
  words: ['export'],
  summary: 'Serve the disks of a restore point read-only over NBD (for qemu-img, nbdcopy, a VM, libguestfs)',
  usage: '--repo <path> (--restore-point <id> | --vm <name>) [--disk <key>]... (--socket <path> | --listen <addr:port> --tls-cert <file> --tls-key <file>) [--idle-timeout <seconds>]',
  help:
    'Each disk is an NBD export named by its key (e.g. vda): nbd+unix:///vda?socket=PATH, or\n' +
    'nbds://ADDR:PORT/vda with TLS. Zeros and holes are known from the index, so copies skip them\n' +
    '(NBD block status, structured reads). Several connections may read at once.\n\n' +
    '  --socket PATH          a unix socket (mode 0600), for this machine\n' +
    '  --listen ADDR:PORT     TCP, TLS required: --tls-cert, --tls-key (PEM), --tls-ca for clients\n' +
    '  --idle-timeout N       stop after N seconds without a connection (default: serve until stopped)\n\n' +
    'Examples:\n' +
    '  vmbackup export --repo /srv/vmbackup/main --vm web01 --socket /run/vmbackup-web01.sock\n' +
    "  qemu-img convert -O qcow2 'nbd+unix:///vda?socket=/run/vmbackup-web01.sock' web01-vda.qcow2",
  options: {
    ...passphraseOptions,
    repo: {type: 'string'},
    'restore-point': {type: 'string'},
    vm: {type: 'string'},
    disk: {type: 'string', multiple: true},
    socket: {type: 'string'},
    listen: {type: 'string'},
    'tls-cert': {type: 'string'},
    'tls-key': {type: 'string'},
    'tls-ca': {type: 'string'},
    'idle-timeout': {type: 'string'},
  },
  positionals: [0, 0],
  async run(ctx, values) {
    if (typeof values.repo !== 'string') throw new UserError('Give the repository: --repo <path>.', {exitCode: ExitCode.usage});
    const socket = typeof values.socket === 'string' ? values.socket : undefined;
    const listen = typeof values.listen === 'string' ? values.listen : undefined;
    if ((socket === undefined) === (listen === undefined)) throw new UserError('Say where to serve: exactly one of --socket <path> or --listen <addr:port>.', {exitCode: ExitCode.usage});
    let tls: {certPem: string; keyPem: string; caPem?: string} | undefined;
    let host = '';
    let port = 0;
    if (listen !== undefined) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$/.exec(listen);
      if (!m || Number(m[2]) > 65535) throw new UserError(`--listen must be address:port, e.g. 127.0.0.1:10809, not '${listen}'.`, {exitCode: ExitCode.usage});
      host = m[1]!.replace(/^\[|\]$/g, '');
      port = Number(m[2]);
      if (typeof values['tls-cert'] !== 'string' || typeof values['tls-key'] !== 'string') {
        throw new UserError('An export on the network needs TLS: --tls-cert <file> and --tls-key <file> (PEM).', {
          exitCode: ExitCode.usage,
          hint: 'For this machine only, serve on a unix socket instead (--socket <path>).',
        });
      }
      const read = (f: string) => readFile(f, 'utf8').catch((err: Error) => Promise.reject(new UserError(`Cannot read ${f}: ${err.message}.`, {exitCode: ExitCode.invalidInput})));
      tls = {certPem: await read(values['tls-cert']), keyPem: await read(values['tls-key']), ...(typeof values['tls-ca'] === 'string' ? {caPem: await read(values['tls-ca'])} : {})};
    }
    const idle = values['idle-timeout'] === undefined ? undefined : Number(values['idle-timeout']);
    if (idle !== undefined && (!Number.isFinite(idle) || idle <= 0)) throw new UserError('--idle-timeout must be a number of seconds above 0.', {exitCode: ExitCode.usage});

    const repo = await openRepo(values.repo, values);
    const summary = await pickRestorePoint(repo, values);
    const point = await repo.openRestorePoint(summary.id);
    const wanted = (values.disk as string[] | undefined) ?? point.summary.disks.map((d) => d.key);
    const disks = point.summary.disks.filter((d) => wanted.includes(d.key));
    const unknown = wanted.filter((k) => !point.summary.disks.some((d) => d.key === k));
    if (unknown.length) {
      throw new UserError(`Restore point ${summary.id} has no disk ${unknown.join(', ')}.`, {exitCode: ExitCode.notFound, hint: `Its disks: ${point.summary.disks.map((d) => d.key).join(', ')}.`});
    }
    const hold = await repo.holdRestorePoint(summary.id);
    const exports = [];
    for (const d of disks) {
      const reader = await point.openDisk(d.key);
      exports.push({name: d.key, description: `${summary.vmName} ${d.key} (${summary.time})`, source: reader, preferredBlockSize: reader.chunkSize});
    }
    const stop = onStopSignals(ctx.out, 'export');
    let idleTimer: NodeJS.Timeout | undefined;
    const idleStop = new AbortController();
    const armIdle = (open: number) => {
      if (idle === undefined) return;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = open === 0 ? setTimeout(() => idleStop.abort(), idle * 1000) : undefined;
    };
    const server = new NbdServer({exports, tls, onConnections: armIdle, log: (line) => ctx.out.warn(line)});
    try {
      let where: string[];
      if (socket !== undefined) {
        await server.listenUnix(socket);
        where = disks.map((d) => `nbd+unix:///${encodeURIComponent(d.key)}?socket=${socket}`);
      } else {
        const bound = await server.listenTcp(host, port);
        where = disks.map((d) => `nbds://${host.includes(':') ? `[${host}]` : host}:${bound}/${encodeURIComponent(d.key)}`);
      }
      armIdle(0);
      ctx.out.result(
        {restorePoint: summary.id, vm: summary.vmName, time: summary.time, exports: disks.map((d, i) => ({disk: d.key, size: d.size, uri: where[i]}))},
        () =>
          [
            `Serving restore point ${summary.id} of ${summary.vmName} (${summary.time}), read-only:`,
            ...disks.map((d, i) => `  ${d.key}  ${formatBytes(d.size)}  ${where[i]}`),
            'Ctrl-C stops.',
          ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        if (stop.signal.aborted || idleStop.signal.aborted) return resolve();
        stop.signal.addEventListener('abort', () => resolve(), {once: true});
        idleStop.signal.addEventListener('abort', () => resolve(), {once: true});
      });
      if (idleStop.signal.aborted && !stop.signal.aborted) ctx.out.warn(`No connection for ${idle} s: the export ends.`);
    } finally {
      if (idleTimer) clearTimeout(idleTimer);
      await server.close();
      await hold.release();
      stop.dispose();
    }
    return stop.received ? ExitCode.cancelled : 0;
  },
};
