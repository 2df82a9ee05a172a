/**
 * One disk of an oVirt backup as a DiskSource: a download image transfer of the backup
 * (docs/reference/ovirt-backup-api.md §7.1, §7.2) read through imageio.
 *
 * Contract:
 * - open() starts the transfer, waits for `transferring`, sends OPTIONS and fetches the extents
 *   once (cached, §6.2). An incremental disk uses `context=dirty`; if the server has no dirty
 *   extents for it (404) the disk is read in full and `incremental` is false (§7.2).
 * - Extent mapping: zero context: zero → 'zero', else 'data'; dirty context: !dirty →
 *   'unchanged', dirty+zero → 'zero' (gotcha 18: changed to zeros must be recorded), else 'data'.
 * - read() is safe to call concurrently up to maxParallelReads. If imageio answers 403 (the
 *   ticket was cancelled, e.g. by the inactivity timeout) the source asks the engine for a new
 *   transfer of the same disk in the same backup — the backup is still `ready` — and retries
 *   once (§10.2 "imageio 403 mid-transfer").
 * - close() finalizes the transfer and waits for a terminal phase; it is idempotent.
 */
import {ImageioClient, ImageioError} from '../../transports/imageio/imageio-client.js';
import type {ImageioExtent} from '../../transports/imageio/extents.js';
import type {DiskSource, Logger, SourceExtent} from '../types.js';
import type {EngineClient} from './engine-client.js';
import type {PollOptions} from './poll.js';
import {endTransfer, startTransfer, type Transfer} from './transfers.js';

export interface OvirtSourceContext {
  client: EngineClient;
  poll: PollOptions;
  log: Logger;
  vmName: string;
  backupId: string;
  diskId: string;
  /** The disk's alias, for people (messages, the report); the id stays the key. */
  diskName?: string;
  size: number;
  /** Read dirty extents (the engine reported backup_mode incremental and the caller wants it). */
  incremental: boolean;
  inactivityTimeout: number;
  maxConnections: number;
  /** 'proxy': read through the engine's imageio proxy only (BackupOptions.dataPath). */
  dataPath?: 'host' | 'proxy';
}

export class OvirtDiskSource implements DiskSource {
  readonly key: string;
  readonly size: number;
  readonly maxReadSize = 32 * 2 ** 20;
  private extentList: ImageioExtent[] = [];
  private context: 'zero' | 'dirty' = 'zero';
  private transfer!: Transfer;
  private io!: ImageioClient;
  private recovering: Promise<void> | undefined;
  private readsDone = 0;
  private closed: Promise<void> | undefined;
  /** Transfer ids this source created, for tests and logs. */
  readonly transferIds: string[] = [];

  private constructor(private readonly c: OvirtSourceContext) {
    this.key = c.diskId;
    this.size = c.size;
  }

  static async open(c: OvirtSourceContext): Promise<OvirtDiskSource> {
    const s = new OvirtDiskSource(c);
    await s.connect();
    try {
      if (c.incremental) {
        try {
          s.extentList = await s.io.extents('dirty', c.size);
          s.context = 'dirty';
        } catch (err) {
          if (!(err instanceof ImageioError) || err.status !== 404) throw err;
          c.log({severity: 'warning', code: 'dirty-extents-unavailable', vm: c.vmName, disk: c.diskName ?? c.diskId,
            message: `imageio offers no changed blocks for disk ${c.diskName ?? c.diskId}; reading it in full`});
        }
      }
      if (s.context === 'zero') s.extentList = await s.io.extents('zero', c.size);
    } catch (err) {
      await s.close().catch(() => undefined);
      throw err;
    }
    return s;
  }

  get incremental(): boolean {
    return this.context === 'dirty';
  }

  get maxParallelReads(): number {
    return Math.max(1, Math.min(this.io.caps.maxReaders, this.c.maxConnections));
  }

  /** Which imageio base the reads use (transfer_url or proxy_url). */
  get via(): string {
    return this.io.via;
  }

  private async connect(): Promise<void> {
    this.transfer = await startTransfer(this.c.client, {
      diskId: this.c.diskId, backupId: this.c.backupId, direction: 'download', inactivityTimeout: this.c.inactivityTimeout,
    }, this.c.poll);
    this.transferIds.push(this.transfer.id);
    try {
      this.io = await ImageioClient.open({
        transferUrl: this.c.dataPath === 'proxy' ? undefined : this.transfer.transferUrl,
        proxyUrl: this.transfer.proxyUrl, caPem: this.c.client.caPem,
        maxConnections: this.c.maxConnections,
      });
    } catch (err) {
      await endTransfer(this.c.client, this.transfer.id, 'finalize', this.c.poll).catch(() => undefined);
      throw err;
    }
    if (this.io.via === 'proxy_url' && this.c.dataPath !== 'proxy') {
      this.c.log({severity: 'info', code: 'imageio-proxy', vm: this.c.vmName, disk: this.c.diskName ?? this.c.diskId,
        message: `host imageio unreachable for disk ${this.c.diskName ?? this.c.diskId}; reading through the engine's imageio proxy`});
    }
  }

  async *extents(): AsyncIterable<SourceExtent> {
    for (const e of this.extentList) {
      const kind: SourceExtent['kind'] = this.context === 'dirty'
        ? (!e.dirty ? 'unchanged' : e.zero ? 'zero' : 'data')
        : (e.zero ? 'zero' : 'data');
      yield {offset: e.start, length: e.length, kind};
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) throw new RangeError(`read ${offset}+${length} outside disk ${this.key} of ${this.size} bytes`);
    if (length > this.maxReadSize) throw new RangeError(`read of ${length} bytes exceeds maxReadSize ${this.maxReadSize}`);
    const io = this.io;
    try {
      const buf = await io.read(offset, length, into);
      this.readsDone++;
      return buf;
    } catch (err) {
      // The transfer this read used was replaced meanwhile (another read met the 403 first and
      // recovered; the daemon cut this response short when the ticket went, and its retry found
      // the old client closed): read again from the new transfer.
      if (this.io !== io || this.recovering) {
        await this.recovering;
        return this.io.read(offset, length, into);
      }
      if (!(err instanceof ImageioError && err.ticketGone)) throw err;
      // Several readers may hit the same 403: one recovery, shared.
      this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
      await this.recovering;
      return this.io.read(offset, length, into);
    }
  }

  private async recover(): Promise<void> {
    const old = this.transfer.id;
    // A transfer that timed out before its first read (the disk waited its turn behind other
    // disks) is routine; one that ended in the middle of reading is worth a warning.
    this.c.log({severity: this.readsDone === 0 ? 'info' : 'warning', code: 'transfer-restarted', vm: this.c.vmName, disk: this.c.diskName ?? this.c.diskId,
      message: `image transfer ${old} of disk ${this.c.diskName ?? this.c.diskId} ended (ticket expired or inactivity timeout); continuing with a new transfer`});
    const oldIo = this.io;
    await oldIo.close().catch(() => undefined);
    await endTransfer(this.c.client, old, 'finalize', this.c.poll).catch(() => undefined);
    await this.connect();
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.io?.close().catch(() => undefined);
      if (this.transfer) await endTransfer(this.c.client, this.transfer.id, 'finalize', this.c.poll);
    })();
    return this.closed;
  }
}
