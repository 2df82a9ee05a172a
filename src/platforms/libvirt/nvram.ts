/**
 * The UEFI variable store (NVRAM, `<os><nvram>`) of a libvirt domain as one more disk of a restore
 * point: key `nvram`, format raw, the file's bytes (128 KiB-4 MiB). The repository treats it like
 * any disk (chunks, dedup, verify, GC), so an unchanged varstore costs nothing in an incremental.
 *
 * Backup: the file is read whole from the host through the host's command runner (local or SSH),
 * binary-safe as base64. QEMU may write the varstore at any time (a guest changing a boot entry),
 * so for a running VM it is crash-consistent like the disks: read right after backup-begin, it
 * holds the variables of about that moment. Never incremental (no bitmap): it is small, and dedup
 * stores nothing when it did not change.
 *
 * Restore: the bytes are collected in memory by a sink and written as one file on the target host
 * (mode 0600), binary-safe through dd's stdin (../image/plain-file.ts); abort() removes a file this
 * restore created.
 *
 * Emulated TPM state (swtpm, /var/lib/libvirt/swtpm/<uuid>/) is not backed up: a warning says so.
 */
import {MAX_PLAIN_FILE_BYTES, NVRAM_KEY} from '../image/plain-file.js';
import type {BackupOptions, DiskSource, InventoryDisk, SourceExtent} from '../types.js';
import type {DomainInfo} from './domain-xml.js';
import type {LibvirtHost} from './host.js';

/** The disk key of the UEFI variable store in a restore point (libvirt disk targets are vdX/sdX/hdX, never this). */
/** What a restore point's disk list shows for it. */
export const NVRAM_LABEL = 'UEFI variables (nvram)';
/** A varstore larger than this is not a varstore: it is not read into memory. */
const MAX_NVRAM_BYTES = MAX_PLAIN_FILE_BYTES;

/** A disk source over bytes already in memory: one data extent, never incremental. */
export class MemoryDiskSource implements DiskSource {
  readonly incremental = false;
  readonly maxParallelReads = 1;
  readonly maxReadSize = 8 * 1024 * 1024;
  readonly size: number;

  constructor(
    readonly key: string,
    private readonly data: Buffer,
  ) {
    this.size = data.length;
  }

  async *extents(): AsyncIterable<SourceExtent> {
    if (this.size > 0) yield {offset: 0, length: this.size, kind: 'data'};
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.key}: read of ${length} bytes at ${offset} is outside its ${this.size} bytes`);
    }
    const out = into ?? Buffer.allocUnsafe(length);
    this.data.copy(out, 0, offset, offset + length);
    return out.subarray(0, length);
  }

  async close(): Promise<void> {}
}

/**
 * Reads the domain's varstore from its host. Returns the source and the inventory entry for the
 * restore point, or undefined (with warning `nvram-unreadable`) when the VM has a varstore that
 * cannot be read; undefined without a word when it has none. Also warns `tpm-not-backed-up`.
 */
export async function readNvram(host: LibvirtHost, info: DomainInfo, opts: Pick<BackupOptions, 'log'>): Promise<{source: DiskSource; disk: InventoryDisk} | undefined> {
  const vm = info.name;
  if (info.tpmEmulator) {
    opts.log({
      severity: 'warning',
      code: 'tpm-not-backed-up',
      message: `${vm} has an emulated TPM; its state (/var/lib/libvirt/swtpm/${info.uuid}/ on ${host.name}) is not in the backup. Back up that directory yourself, and keep the recovery keys of anything sealed to the TPM (BitLocker, LUKS): a restored VM gets a new, empty TPM`,
      vm,
    });
  }
  const nvram = info.nvram;
  if (!nvram) return undefined;
  const unreadable = (why: string) => {
    opts.log({
      severity: 'warning',
      code: 'nvram-unreadable',
      message: `the UEFI variable store of ${vm} ${why}; it is not in this restore point (a restored VM starts with fresh UEFI variables: boot entries and Secure Boot keys from the firmware's template)`,
      vm,
      disk: NVRAM_KEY,
    });
    return undefined;
  };
  if (!nvram.path) {
    return nvram.type && nvram.type !== 'file' ? unreadable(`is a ${nvram.type} varstore, which cannot be read`) : undefined;
  }
  const path = nvram.path;
  // stat first: a huge or special file must not be pulled through base64 into memory.
  const stat = await host.run(['stat', '-L', '-c', '%s %F', '--', path], {allowFailure: true});
  if (stat.exitCode !== 0) return unreadable(`(${path} on ${host.name}) cannot be read: ${stat.stderr.trim() || `stat exit ${stat.exitCode}`}`);
  const [sizeText, ...kind] = stat.stdout.trim().split(' ');
  const size = Number(sizeText);
  if (kind.join(' ') !== 'regular file' || !Number.isSafeInteger(size) || size > MAX_NVRAM_BYTES) {
    return unreadable(`(${path} on ${host.name}) is not a regular file of at most ${MAX_NVRAM_BYTES / 2 ** 20} MiB (${stat.stdout.trim()})`);
  }
  const r = await host.run(['base64', '-w0', '--', path], {allowFailure: true});
  if (r.exitCode !== 0) return unreadable(`(${path} on ${host.name}) cannot be read: ${r.stderr.trim() || `base64 exit ${r.exitCode}`}`);
  const data = Buffer.from(r.stdout.trim(), 'base64');
  // A varstore written between stat and read may change size; what was read is what is stored.
  if (data.length === 0 && size > 0) return unreadable(`(${path} on ${host.name}) read as empty`);
  opts.log({severity: 'info', code: 'nvram-read', message: `UEFI variable store ${path} read (${data.length} bytes)`, vm, disk: NVRAM_KEY});
  return {
    source: new MemoryDiskSource(NVRAM_KEY, data),
    disk: {
      key: NVRAM_KEY,
      name: path.split('/').pop() || NVRAM_KEY,
      format: 'raw',
      size: data.length,
      trackable: false,
      trackingNote: 'the UEFI variable store is read in full every time (small; deduplicated when unchanged)',
      details: {role: 'nvram', path, ...(nvram.template ? {template: nvram.template} : {})},
    },
  };
}

