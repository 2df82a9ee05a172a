/**
 * What on the engine belongs to this appliance, and what of it is in use right now.
 *
 * Backups, their checkpoints (the engine copies the backup description to the checkpoint) and
 * restore target disks carry a description starting with "vmbackup@<appliance id> ", so that
 * cleanup and checkpoint pruning never touch another product's or another appliance's objects.
 * Backups and upload transfers that this process is still working on are registered here, so a
 * cleanup run by a concurrent session does not end them.
 */
import {hostname} from 'node:os';

export class Ownership {
  readonly marker: string;
  readonly activeBackups = new Set<string>();
  readonly activeTransfers = new Set<string>();

  constructor(applianceId: string = hostname()) {
    this.marker = `vmbackup@${applianceId.replace(/\s+/g, '_') || 'appliance'}`;
  }

  describe(what: string): string {
    return `${this.marker} ${what}`;
  }

  owns(description: unknown): boolean {
    return typeof description === 'string' && description.startsWith(`${this.marker} `);
  }
}
