/**
 * A DiskSource over one NBD export: a libvirt pull-backup export or a read-only qemu-nbd.
 *
 * Full: the extents are base:allocation (ZERO → 'zero', everything else 'data').
 * Incremental: the dirty bitmap context (`qemu:dirty-bitmap:backup-<target>` for libvirt,
 * `qemu:dirty-bitmap:<name>` for qemu-nbd --bitmap) combined with base:allocation, so clean
 * ranges are 'unchanged' and dirty-but-zero ranges are 'zero' (a restore stays bit-exact).
 * The walk itself is the NBD client's walkExtents (window by window, never the whole map).
 */
import {ALLOCATION_CONTEXT, NbdPool, walkExtents, type NbdAddress} from '../../transports/nbd/index.js';
import type {DiskSource, HostRead, SourceExtent} from '../types.js';

/**
 * How the reads go to QEMU's NBD server: 4 connections (nbdcopy's default), 4 requests in flight
 * on each, requests of 512 KiB. Measured (docs/benchmarks.md "NBD reads"): QEMU allocates a
 * buffer per READ request with glibc's malloc, and a buffer above glibc's mmap threshold is
 * mmapped, faulted in and unmapped for every request — QEMU then spends 4-5 CPU s per GiB and
 * reads ran at 280-680 MiB/s. The threshold starts at 128 KiB and rises to the largest mmapped
 * block freed; the first BLOCK_STATUS reply (the extents walk comes first) makes QEMU free a
 * 1 MiB extent array (qemu nbd/server.c: NBD_MAX_BLOCK_STATUS_EXTENTS, "1 MiB of extents data",
 * allocated per reply in nbd_co_send_block_status), so from then on requests below 1 MiB come from its heap: 512 KiB requests
 * read the bench VM at 1330-1965 MiB/s (nbdcopy, 256 KiB requests: 1311) with QEMU at ~0.4 CPU
 * s per GiB, where 1 MiB requests stayed at 609-685 MiB/s and 32 MiB ones at 400-700.
 */
const CONNECTIONS = 4;
const IN_FLIGHT_PER_CONNECTION = 4;
const REQUEST_SIZE = 512 * 1024;

export class NbdDiskSource implements DiskSource {
  readonly key: string;
  readonly size: number;
  readonly incremental: boolean;
  readonly maxParallelReads: number;
  readonly maxReadSize: number;
  private readonly pool: NbdPool;
  private readonly dirtyContext: string | undefined;
  readonly hostRead?: HostRead;

  private constructor(key: string, pool: NbdPool, dirtyContext: string | undefined, hostRead: HostRead | undefined) {
    if (hostRead) this.hostRead = hostRead;
    this.key = key;
    this.pool = pool;
    this.size = pool.size;
    this.dirtyContext = dirtyContext;
    this.incremental = dirtyContext !== undefined;
    this.maxParallelReads = pool.connections * IN_FLIGHT_PER_CONNECTION;
    this.maxReadSize = Math.min(pool.maxPayload, 32 * 1024 * 1024);
  }

  static async open(opts: {key: string; address: NbdAddress; exportName: string; dirtyContext?: string; connections?: number; hostRead?: HostRead}): Promise<NbdDiskSource> {
    const metaContexts = opts.dirtyContext ? [ALLOCATION_CONTEXT, opts.dirtyContext] : [ALLOCATION_CONTEXT];
    const pool = await NbdPool.open({
      address: opts.address,
      exportName: opts.exportName,
      metaContexts,
      connections: opts.connections ?? CONNECTIONS,
      maxInFlight: IN_FLIGHT_PER_CONNECTION,
      requestSize: REQUEST_SIZE,
    });
    return new NbdDiskSource(opts.key, pool, opts.dirtyContext, opts.hostRead);
  }

  extents(): AsyncIterable<SourceExtent> {
    return walkExtents(this.pool, {dirtyContext: this.dirtyContext});
  }

  read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.pool.read(offset, length, into);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
