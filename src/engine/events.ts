/**
 * Typed progress events: the one progress model of the engine (docs/architecture.md "The seams", after restic's
 * ProgressPrinter). The CLI's terminal and --json output, the daemon's server-sent events,
 * the console and the email report all render these same events.
 */
import type {SessionEvent} from '../platforms/types.js';

export interface DiskFigures {
  /** Virtual size of the disk. */
  size: number;
  /** Bytes read from the source. */
  readBytes: number;
  /** Bytes recorded as zero without reading. */
  zeroBytes: number;
  /** Bytes kept from the base restore point without reading (unchanged since its checkpoint). */
  unchangedBytes: number;
  /** Bytes the repository newly stored for this disk (after dedup and compression). */
  storedBytes: number;
  /** Plain bytes of the chunks this disk added to the repository (before compression). */
  newPlainBytes: number;
  newChunks: number;
  reusedChunks: number;
  /** Damaged chunks an active full found while reusing them, quarantined and written again. */
  healedChunks?: number;
  durationMs: number;
  /** Time spent waiting for the source to deliver data. */
  sourceMs: number;
  /** Time spent in the repository (hash, compress, write). */
  repositoryMs: number;
  /** The part of repositoryMs spent hashing and compressing (the rest is storage I/O and waiting). */
  processingMs: number;
  /** Read by a worker on the VM's host: the bytes it sent to the appliance (ids and packed new chunks). */
  workerBytes?: number;
}

export type VmStatus = 'success' | 'warning' | 'failed';

export type EngineEvent =
  | {type: 'vm-started'; vmId: string; vmName: string; incremental: boolean; disks: {key: string; name: string; size: number}[]}
  | {type: 'disk-started'; vmId: string; disk: string; size: number}
  | {
      type: 'disk-progress';
      vmId: string;
      disk: string;
      /** Bytes of the disk dealt with so far (read, zeroed or skipped as unchanged). */
      doneBytes: number;
      size: number;
      readBytes: number;
      /** Bytes per second over the task so far (bytes read from the source). */
      rate: number;
    }
  | {type: 'disk-finished'; vmId: string; disk: string; figures: DiskFigures}
  | {type: 'vm-finished'; vmId: string; vmName: string; status: VmStatus; restorePointId?: string; error?: string}
  | {type: 'log'; time: string; event: SessionEvent};

export type EventSink = (event: EngineEvent) => void;
