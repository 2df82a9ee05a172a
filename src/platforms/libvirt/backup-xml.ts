/**
 * Builds the <domainbackup> and <domaincheckpoint> documents for `virsh backup-begin` and parses
 * the checkpoint XML that `checkpoint-dumpxml` returns (docs/reference/libvirt-backup.md §1.2, §1.4).
 *
 * Rules encoded here: pull mode over a unix socket; every disk carries an explicit scratch file
 * (else libvirt puts it beside the image, on shared storage); a disk that cannot be incremental
 * (raw, new since the base, forced full) gets backupmode='full'; raw disks get checkpoint='no'.
 */
import type {NbdEndpoint} from './host.js';
import {attr, child, children, parseXml, text, xmlEscape} from './xml.js';

export type DiskBackupMode = 'full' | 'incremental';

export interface BackupDiskPlan {
  target: string;
  /** libvirt disk type: file or block. */
  type: string;
  mode: DiskBackupMode;
  scratchFile: string;
  /** Whether the new checkpoint records a bitmap for this disk (qcow2 only). */
  bitmap: boolean;
}

export function buildBackupXml(opts: {incremental?: string; server: NbdEndpoint; disks: BackupDiskPlan[]; skip?: string[]}): string {
  const lines = [`<domainbackup mode='pull'>`];
  if (opts.incremental) lines.push(`  <incremental>${xmlEscape(opts.incremental)}</incremental>`);
  lines.push(
    opts.server.kind === 'unix'
      ? `  <server transport='unix' socket='${xmlEscape(opts.server.path)}'/>`
      : `  <server transport='tcp' name='${xmlEscape(opts.server.address)}' port='${opts.server.port}'/>`,
  );
  lines.push('  <disks>');
  for (const d of opts.disks) {
    const mode = opts.incremental ? ` backupmode='${d.mode}'` : '';
    lines.push(`    <disk name='${xmlEscape(d.target)}' backup='yes' type='${xmlEscape(d.type)}'${mode}>`);
    lines.push(`      <scratch file='${xmlEscape(d.scratchFile)}'/>`);
    lines.push('    </disk>');
  }
  for (const target of opts.skip ?? []) lines.push(`    <disk name='${xmlEscape(target)}' backup='no'/>`);
  lines.push('  </disks>', '</domainbackup>');
  return lines.join('\n') + '\n';
}

export function buildCheckpointXml(opts: {name: string; description?: string; disks: {target: string; bitmap: boolean}[]}): string {
  const lines = ['<domaincheckpoint>', `  <name>${xmlEscape(opts.name)}</name>`];
  if (opts.description) lines.push(`  <description>${xmlEscape(opts.description)}</description>`);
  lines.push('  <disks>');
  for (const d of opts.disks) {
    lines.push(
      d.bitmap
        ? `    <disk name='${xmlEscape(d.target)}' checkpoint='bitmap' bitmap='${xmlEscape(opts.name)}'/>`
        : `    <disk name='${xmlEscape(d.target)}' checkpoint='no'/>`,
    );
  }
  lines.push('  </disks>', '</domaincheckpoint>');
  return lines.join('\n') + '\n';
}

export interface CheckpointInfo {
  name: string;
  parent?: string;
  creationTime?: number;
  description?: string;
  disks: {target: string; checkpoint: string; bitmap?: string}[];
}

export function parseCheckpointXml(xml: string): CheckpointInfo {
  const cp = child(parseXml(xml), 'domaincheckpoint');
  const name = text(cp?.['name']);
  if (!cp || !name) throw new Error('checkpoint XML without <name>');
  const created = text(cp['creationTime']);
  return {
    name,
    parent: text(child(cp, 'parent')?.['name']),
    creationTime: created === undefined ? undefined : Number(created),
    description: text(cp['description']),
    disks: children(child(cp, 'disks'), 'disk').map((d) => ({
      target: attr(d, 'name') ?? '',
      checkpoint: attr(d, 'checkpoint') ?? 'bitmap',
      bitmap: attr(d, 'bitmap'),
    })),
  };
}

/**
 * The XML to redefine a lost checkpoint with: name, creation time and the disks' bitmaps. The
 * parent is left out on purpose: the appliance deletes its older checkpoints, so the parent
 * named in a saved XML is normally gone and would make the redefinition fail.
 */
export function buildRedefineXml(cp: CheckpointInfo): string {
  const lines = ['<domaincheckpoint>', `  <name>${xmlEscape(cp.name)}</name>`];
  if (cp.description) lines.push(`  <description>${xmlEscape(cp.description)}</description>`);
  if (cp.creationTime !== undefined) lines.push(`  <creationTime>${Math.floor(cp.creationTime)}</creationTime>`);
  lines.push('  <disks>');
  for (const d of cp.disks) {
    lines.push(
      d.checkpoint === 'bitmap'
        ? `    <disk name='${xmlEscape(d.target)}' checkpoint='bitmap' bitmap='${xmlEscape(d.bitmap ?? cp.name)}'/>`
        : `    <disk name='${xmlEscape(d.target)}' checkpoint='no'/>`,
    );
  }
  lines.push('  </disks>', '</domaincheckpoint>');
  return lines.join('\n') + '\n';
}

/** The disks of a checkpoint that carry a bitmap, with the bitmap's name. */
export function checkpointBitmaps(cp: CheckpointInfo): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of cp.disks) if (d.checkpoint === 'bitmap') out.set(d.target, d.bitmap ?? cp.name);
  return out;
}
