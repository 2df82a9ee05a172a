/**
 * A DiskSink that writes a new disk image file (qcow2 or raw): `qemu-img create`, a writable
 * `qemu-nbd` export over a unix socket, then NBD writes and write-zeroes. Usable on the appliance
 * (LocalRunner) or on a libvirt host (SshRunner plus a forwarded socket), and by any platform
 * adapter that restores disks to files.
 *
 * The image is always new (qemu-img create, no backing file), so it reads as zeros where nothing
 * was written (startsZeroed: the engine sends no zero requests). Its export writes with O_DIRECT
 * (qemu-nbd --cache=none, see qemu-nbd.ts), or through the page cache where the file system or
 * qemu-nbd cannot do that.
 *
 * Contract: an existing file is never overwritten (UserError); close() flushes nothing by itself
 * (the engine calls flush()), ends qemu-nbd and waits for it, so the image is complete and closed
 * when close() returns; discard() does the same and deletes the file.
 */
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import {CommandError, type CommandRunner} from '../../transports/command-runner.js';
import {ALLOCATION_CONTEXT, NbdPool, type NbdAddress} from '../../transports/nbd/index.js';
import {ExitCode, UserError} from '../../util/errors.js';
import {isPortInUse, startQemuNbd, type NbdEndpoint, type QemuNbdExport} from './qemu-nbd.js';
import type {DiskSink} from '../types.js';

export interface ImageFileSinkOptions {
  /** Runs qemu-img and qemu-nbd where the file is to be written. */
  runner: CommandRunner;
  path: string;
  format: 'qcow2' | 'raw';
  size: number;
  key: string;
  /** A directory on the same machine as the file, for the export's socket and pid file. */
  scratchDir: string;
  /** Where the export listens, given its session directory (default: a unix socket there). */
  endpoint?: (dir: string) => NbdEndpoint;
  /** Makes the export reachable from this process (default: connect to the socket directly). */
  connect?: (endpoint: NbdEndpoint) => Promise<{address: NbdAddress; close(): Promise<void>}>;
  connections?: number;
}

/** A restore never overwrites a file: refuses `path` when it exists on the runner's machine. */
export async function refuseExisting(runner: CommandRunner, path: string): Promise<void> {
  if ((await runner.run(['test', '-e', path], {allowFailure: true})).exitCode !== 0) return;
  throw new UserError(`The restore target ${path} already exists on ${runner.where}.`, {
    hint: 'Choose another directory or name, or remove the old file if it is no longer needed.',
    exitCode: ExitCode.invalidInput,
  });
}

/**
 * Writes to qemu-nbd in requests of 256 KiB, 4 in flight per connection. qemu-nbd allocates a
 * buffer per WRITE request with glibc's malloc; one above glibc's mmap threshold (128 KiB until a
 * larger mmapped block is freed) is mmapped, faulted in and unmapped for every request. Measured
 * on the bench VM's 830 MiB restore (bench/libvirt.ts, docs/benchmarks.md "NBD reads"): writes of
 * up to 32 MiB without the BLOCK_STATUS below took 5.3-5.6 s, 256 KiB after it 3.3-4.4 s, 512 KiB
 * after it 4.4-4.9 s (the same child process, three rounds each, alternating).
 */
const WRITE_REQUEST_SIZE = 256 * 1024;
const WRITES_IN_FLIGHT = 4;

export class ImageFileSink implements DiskSink {
  readonly key: string;
  readonly size: number;
  readonly path: string;
  readonly maxParallelWrites: number;
  readonly maxWriteSize: number;
  readonly startsZeroed = true;
  private closed = false;

  private constructor(
    opts: ImageFileSinkOptions,
    private readonly pool: NbdPool,
    private readonly release: () => Promise<void>,
  ) {
    this.key = opts.key;
    this.size = opts.size;
    this.path = opts.path;
    this.maxParallelWrites = pool.connections * WRITES_IN_FLIGHT;
    this.maxWriteSize = Math.min(pool.maxPayload, 32 * 1024 * 1024);
  }

  static async create(opts: ImageFileSinkOptions): Promise<ImageFileSink> {
    const {runner, path} = opts;
    await refuseExisting(runner, path);
    await runner.run(['qemu-img', 'create', '-q', '-f', opts.format, ...(opts.format === 'qcow2' ? ['-o', 'compat=1.1'] : []), path, String(opts.size)]);
    // 0600 whatever the umask, before a byte of the VM's data is written (docs/security.md);
    // libvirt gives a VM's images to its qemu user when the VM starts.
    await runner.run(['chmod', '0600', '--', path]);
    const dir = join(opts.scratchDir, `restore-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`);
    let nbd: QemuNbdExport | undefined;
    let socket: {address: NbdAddress; close(): Promise<void>} | undefined;
    const release = async () => {
      await socket?.close().catch(() => {});
      await nbd?.stop();
      await runner.run(['rm', '-rf', '--', dir], {allowFailure: true});
    };
    try {
      await runner.run(['mkdir', '-p', '-m', '0700', '--', dir]);
      let directIo = true;
      for (let attempt = 0; !nbd; attempt++) {
        const endpoint: NbdEndpoint = opts.endpoint ? opts.endpoint(dir) : {kind: 'unix', path: join(dir, 'nbd.sock')};
        nbd = await startQemuNbd(runner, {
          image: path,
          format: opts.format,
          exportName: opts.key,
          endpoint,
          pidFile: join(dir, 'qemu-nbd.pid'),
          readOnly: false,
          connections: opts.connections ?? 2,
          directIo,
        }).catch((err: unknown) => {
          // A random TCP port that is taken: try another one.
          if (attempt < 5 && endpoint.kind === 'tcp' && err instanceof CommandError && isPortInUse(err.stderr)) return undefined;
          // No O_DIRECT on that file system (or no io_uring in that qemu-nbd): once more through the page cache.
          if (directIo && err instanceof CommandError) {
            directIo = false;
            return undefined;
          }
          throw err;
        });
      }
      const ep = nbd.endpoint;
      socket = opts.connect ? await opts.connect(ep) : {address: ep.kind === 'unix' ? {socketPath: ep.path} : {host: ep.address, port: ep.port}, close: async () => {}};
      const pool = await NbdPool.open({
        address: socket.address,
        exportName: opts.key,
        connections: opts.connections ?? 2,
        metaContexts: [ALLOCATION_CONTEXT],
        requestSize: WRITE_REQUEST_SIZE,
        maxInFlight: WRITES_IN_FLIGHT,
      });
      // One BLOCK_STATUS before the writes: qemu-nbd answers it with a 1 MiB extent array that it
      // frees, which raises glibc's mmap threshold in qemu-nbd above our write requests (see
      // WRITE_REQUEST_SIZE). Only an optimisation: a failure here is not the restore's.
      await pool.blockStatus(0, Math.min(opts.size, 2 ** 30), ALLOCATION_CONTEXT).catch(() => undefined);
      return new ImageFileSink(opts, pool, release);
    } catch (err) {
      await release().catch(() => {});
      await runner.run(['rm', '-f', '--', path], {allowFailure: true});
      throw err;
    }
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.pool.write(offset, data);
  }

  zero(offset: number, length: number): Promise<void> {
    return this.pool.writeZeroes(offset, length);
  }

  flush(): Promise<void> {
    return this.pool.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pool.close();
    } finally {
      await this.release();
    }
  }
}
