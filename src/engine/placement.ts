/**
 * Where a disk task runs (docs/architecture.md "Workers on the hosts"): on a worker on the VM's
 * host when the platform says a worker could read the disk there (DiskSource.hostRead), else on
 * the appliance's own data mover. The choice and its reason go to the session log, per VM.
 *
 * Only the VM's own host can hold the worker of a libvirt disk: its export is a unix socket on
 * that host, which no other host can open (another host in the cluster, or any host, would read
 * it through a tunnel as the appliance does, gaining nothing). So the order the product promises
 * — the VM's host, else its cluster, else any, else the appliance — comes down to "the VM's host,
 * else the appliance" for every platform whose sources give a hostRead today.
 *
 * One worker session per VM backup and host, its disks multiplexed over it; a failure to deploy
 * or start it is a warning and the appliance reads the disks itself. A worker that dies later
 * fails the disk it was reading (WorkerLostError): the VM's backup fails cleanly and is retried.
 */
import type {DiskSource, HostRead, SessionEvent} from '../platforms/types.js';
import {deployWorker} from '../worker/deploy.js';
import {WorkerLink, type WorkerDisk, type WorkerStats} from '../worker/link.js';

export type WorkerMode = 'auto' | 'off';

/** A disk the worker on its host reads; `from` names it in messages. */
export interface PlacedDisk {
  disk: WorkerDisk;
  from: string;
}

export class Placement {
  private readonly links = new Map<string, Promise<WorkerLink | undefined>>();
  private readonly said = new Set<string>();

  constructor(
    private readonly mode: WorkerMode,
    private readonly log: (e: SessionEvent) => void,
    /** An encrypted repository's chunk id key (Repository.chunkIdKey()). */
    private readonly idKey: Uint8Array | undefined,
    /** With mode 'off': why (the session log says it). */
    private readonly offReason = 'workers are turned off',
  ) {}

  /** The worker disk for `source`, or undefined when the appliance reads it (the reason is logged once per host, or per disk). */
  async place(source: DiskSource): Promise<PlacedDisk | undefined> {
    const hr = source.hostRead;
    if (!hr) {
      // One line per VM; per disk only beside disks a worker reads (a UEFI varstore the host hands over).
      const kinds = 'a local host, an export over TCP, a file the host hands over, or a platform without host access';
      if (this.links.size === 0) this.once('appliance', 'info', 'data-mover', `the appliance reads the disks itself (no worker can read them on their host: ${kinds})`);
      else this.once(`appliance:${source.key}`, 'info', 'data-mover', `the appliance reads ${source.key} itself (no worker can read it on its host: ${kinds})`);
      return undefined;
    }
    if (this.mode === 'off') {
      this.once(`off:${hr.hostName}`, 'info', 'data-mover', `the appliance reads the disks itself: ${this.offReason} (the VM runs on ${hr.hostName})`);
      return undefined;
    }
    const link = await this.linkFor(hr);
    if (!link) return undefined;
    try {
      return {disk: await link.openDisk(hr.socketPath, hr.exportName), from: `The worker on ${hr.hostName}`};
    } catch (err) {
      this.log({
        severity: 'warning',
        code: 'worker-unavailable',
        message: `the worker on ${hr.hostName} could not open disk ${source.key}, so the appliance reads it itself: ${err instanceof Error ? err.message : String(err)}`,
      });
      return undefined;
    }
  }

  private linkFor(hr: HostRead): Promise<WorkerLink | undefined> {
    let p = this.links.get(hr.hostName);
    if (!p) {
      p = (async () => {
        const started = performance.now();
        try {
          const start = (dir: string) => WorkerLink.start({host: hr.hostName, ssh: hr.ssh, dir, ...(this.idKey ? {mac: this.idKey} : {})});
          let deployed = await deployWorker(hr);
          let link: WorkerLink;
          try {
            link = await start(deployed.dir);
          } catch (err) {
            if (deployed.copied) throw err;
            // Its files may have gone since they were last checked (removed by hand, a temp cleaner): check, copy, start once more.
            deployed = await deployWorker(hr, {recheck: true});
            link = await start(deployed.dir);
          }
          const took = ((performance.now() - started) / 1000).toFixed(1);
          this.log({
            severity: 'info',
            code: 'data-mover',
            message: `a worker on ${hr.hostName} (the VM's host) reads the disks there and sends only new, compressed chunks (${deployed.copied ? 'copied to the host' : 'already on the host'}, version ${deployed.bundle.id.slice(0, 12)}, ready in ${took} s)`,
          });
          return link;
        } catch (err) {
          this.log({
            severity: 'warning',
            code: 'worker-unavailable',
            message: `no worker on ${hr.hostName}, so the appliance reads the disks itself through the SSH tunnel: ${err instanceof Error ? err.message : String(err)}`,
          });
          return undefined;
        }
      })();
      this.links.set(hr.hostName, p);
    }
    return p;
  }

  private once(key: string, severity: SessionEvent['severity'], code: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.log({severity, code, message});
  }

  /** The workers' figures (bytes each way, their CPU time), for the session and the bench. */
  async figures(): Promise<{host: string; bytesIn: number; bytesOut: number; stats?: WorkerStats}[]> {
    const out = [];
    for (const [host, p] of this.links) {
      const link = await p;
      if (!link) continue;
      const stats = await link.stats().catch(() => undefined);
      out.push({host, bytesIn: link.bytesIn, bytesOut: link.bytesOut, ...(stats ? {stats} : {})});
    }
    return out;
  }

  /** Ends every worker session (nothing of them keeps running on the hosts). */
  async close(): Promise<void> {
    const links = await Promise.all(this.links.values());
    await Promise.all(links.map((l) => l?.close()));
  }
}
