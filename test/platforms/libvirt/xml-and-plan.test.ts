/** Pure pieces of the libvirt adapter: XML building/parsing, planning, naming, argv. */
import {describe, expect, it} from 'vitest';
import {buildBackupXml, buildCheckpointXml, buildRedefineXml, checkpointBitmaps, parseCheckpointXml} from '../../../src/platforms/libvirt/backup-xml.js';
import {backupJobSocket} from '../../../src/platforms/libvirt/cleanup.js';
import {parseDomainXml} from '../../../src/platforms/libvirt/domain-xml.js';
import {parseImageInfo, trackability, usableBitmap} from '../../../src/platforms/libvirt/image-info.js';
import {parseDomState} from '../../../src/platforms/libvirt/inventory.js';
import {CheckpointNaming, planDisks} from '../../../src/platforms/libvirt/plan.js';
import {qemuNbdArgv} from '../../../src/platforms/image/qemu-nbd.js';
import {freeTargets} from '../../../src/platforms/libvirt/restore.js';
import {fileSafe} from '../../../src/platforms/targets/files.js';
import {randomMac, rewriteDomainForRestore} from '../../../src/platforms/libvirt/restore-xml.js';

const DOMAIN = `<domain type='kvm' id='3'>
  <name>web &amp; "db" ünï</name>
  <uuid>0b3e0d8e-1111-2222-3333-444455556666</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/data/web db.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/mapper/lun1'/>
      <target dev='sdb' bus='scsi'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/img'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sdc' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'><mac address='52:54:00:aa:aa:aa'/><source bridge='br0'/></interface>
    <interface type='bridge'><mac address='52:54:00:bb:bb:bb'/><source bridge='br1'/></interface>
  </devices>
</domain>`;

describe('domain XML', () => {
  it('reads name, UUID and the disks to back up (no cdrom), one disk or many', () => {
    const d = parseDomainXml(DOMAIN);
    expect(d.name).toBe('web & "db" ünï');
    expect(d.uuid).toBe('0b3e0d8e-1111-2222-3333-444455556666');
    expect(d.disks.map((x) => [x.target, x.type, x.sourcePath, x.driverType, x.alias])).toEqual([
      ['vda', 'file', '/data/web db.qcow2', 'qcow2', 'virtio-disk0'],
      ['sdb', 'block', '/dev/mapper/lun1', 'raw', undefined],
      ['vdc', 'network', undefined, 'raw', undefined],
    ]);
    const one = parseDomainXml(`<domain><name>a</name><uuid>u</uuid><devices><disk type='file' device='disk'><source file='/x'/><target dev='vda'/></disk></devices></domain>`);
    expect(one.disks).toHaveLength(1);
  });

  it('rewrites a domain for a restore: name, no UUID, new MACs, new disk paths, dropped disks', () => {
    const macs = ['52:54:00:01:02:03', '52:54:00:04:05:06'];
    const out = rewriteDomainForRestore(DOMAIN, {
      name: `copy <of> 'web'`,
      disks: new Map([['sdb', {path: `/restore/a&b 'q'.qcow2`, format: 'qcow2'}]]),
      mac: () => macs.shift()!,
    });
    const d = parseDomainXml(out.replace('<domain', '<domain').replace(/<name>/, '<uuid>x</uuid><name>'));
    expect(d.name).toBe(`copy <of> 'web'`);
    expect(out).not.toContain('0b3e0d8e');
    expect(d.disks.map((x) => [x.target, x.type, x.sourcePath, x.driverType])).toEqual([['sdb', 'file', `/restore/a&b 'q'.qcow2`, 'qcow2']]);
    expect(out).toContain('52:54:00:01:02:03');
    expect(out).toContain('52:54:00:04:05:06');
    expect(out).not.toContain('52:54:00:aa:aa:aa');
    expect(out).toContain("<source bridge=\"br0\"/>");
    expect(out).toContain('device="cdrom"');
    expect(out).not.toContain('backingStore');
  });

  it('keeps the UUID when the restore replaces the original', () => {
    expect(rewriteDomainForRestore(DOMAIN, {name: 'x', disks: new Map(), keepUuid: true})).toContain('0b3e0d8e');
  });

  it('reads the UEFI variable store (text or <source> form) and an emulated TPM', () => {
    const uefi = (nvram: string, devices = '') =>
      `<domain><name>a</name><uuid>u</uuid><os><type>hvm</type><loader readonly='yes' type='pflash'>/c.fd</loader>${nvram}</os><devices>${devices}</devices></domain>`;
    expect(parseDomainXml(uefi(`<nvram template='/t.fd'>/var/lib/x &amp; y_VARS.fd</nvram>`))).toMatchObject({
      nvram: {path: '/var/lib/x & y_VARS.fd', template: '/t.fd'},
      tpmEmulator: false,
    });
    expect(parseDomainXml(uefi(`<nvram type='file'><source file='/s_VARS.fd'/></nvram>`)).nvram).toEqual({path: '/s_VARS.fd', type: 'file'});
    expect(parseDomainXml(uefi(`<nvram type='network'><source protocol='iscsi' name='x'/></nvram>`)).nvram).toEqual({type: 'network'});
    expect(parseDomainXml(uefi(`<nvram template='/t.fd'/>`)).nvram).toEqual({template: '/t.fd'});
    expect(parseDomainXml(uefi('')).nvram).toBeUndefined();
    const tpm = `<tpm model='tpm-crb'><backend type='passthrough'/></tpm><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>`;
    expect(parseDomainXml(uefi('', tpm)).tpmEmulator).toBe(true);
    expect(parseDomainXml(uefi('', `<tpm model='tpm-tis'><backend type='passthrough'/></tpm>`)).tpmEmulator).toBe(false);
  });

  it('points the restored <nvram> at the new file; a varstore not restored keeps only the template', () => {
    const xml = `<domain><name>a</name><uuid>u</uuid><os><type>hvm</type><loader readonly='yes' type='pflash'>/c.fd</loader><nvram template='/t.fd'>/orig/a_VARS.fd</nvram></os><devices/></domain>`;
    const restored = parseDomainXml(rewriteDomainForRestore(xml, {name: 'b', disks: new Map(), nvramPath: '/orig/b & c_VARS.fd'}).replace('<name>', '<uuid>n</uuid><name>'));
    expect(restored.nvram).toEqual({path: '/orig/b & c_VARS.fd', template: '/t.fd'});
    const fresh = rewriteDomainForRestore(xml, {name: 'b', disks: new Map()});
    expect(fresh).not.toContain('/orig/a_VARS.fd');
    expect(parseDomainXml(fresh.replace('<name>', '<uuid>n</uuid><name>')).nvram).toEqual({template: '/t.fd'});
    // <source> form and no template: the element goes, libvirt makes a varstore from the firmware's own template.
    const source = `<domain><name>a</name><os><nvram type='file'><source file='/orig/a_VARS.fd'/></nvram></os></domain>`;
    expect(rewriteDomainForRestore(source, {name: 'b', disks: new Map()})).not.toContain('nvram');
    expect(rewriteDomainForRestore(source, {name: 'b', disks: new Map(), nvramPath: '/n.fd'})).toContain('<nvram>/n.fd</nvram>');
  });

  it('random MACs are in the KVM range', () => {
    expect(randomMac()).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});

describe('backup and checkpoint XML', () => {
  it('pull mode over a unix socket with scratch files, per-disk backupmode only for an incremental', () => {
    const disks = [
      {target: 'vda', type: 'file', mode: 'incremental' as const, scratchFile: '/s/vda.q', bitmap: true},
      {target: 'vdb', type: 'block', mode: 'full' as const, scratchFile: "/s/it's.q", bitmap: false},
    ];
    const inc = buildBackupXml({incremental: 'vmbackup-1', server: {kind: 'unix', path: '/s/nbd.sock'}, disks, skip: ['vdc']});
    expect(inc).toContain(`<domainbackup mode='pull'>`);
    expect(inc).toContain('<incremental>vmbackup-1</incremental>');
    expect(inc).toContain(`<server transport='unix' socket='/s/nbd.sock'/>`);
    expect(inc).toContain(`<disk name='vda' backup='yes' type='file' backupmode='incremental'>`);
    expect(inc).toContain(`<disk name='vdb' backup='yes' type='block' backupmode='full'>`);
    expect(inc).toContain(`<scratch file='/s/it&apos;s.q'/>`);
    expect(inc).toContain(`<disk name='vdc' backup='no'/>`);
    const full = buildBackupXml({server: {kind: 'unix', path: '/s/nbd.sock'}, disks});
    expect(full).not.toContain('incremental');
    const tcp = buildBackupXml({server: {kind: 'tcp', address: '10.0.0.11', port: 10900}, disks});
    expect(tcp).toContain(`<server transport='tcp' name='10.0.0.11' port='10900'/>`);
  });

  it('checkpoint XML: bitmaps for qcow2, checkpoint=no for raw; parses back', () => {
    const xml = buildCheckpointXml({name: 'vmbackup-2', description: 'a & b', disks: [{target: 'vda', bitmap: true}, {target: 'vdb', bitmap: false}]});
    const cp = parseCheckpointXml(xml);
    expect(cp.name).toBe('vmbackup-2');
    expect(cp.description).toBe('a & b');
    expect([...checkpointBitmaps(cp)]).toEqual([['vda', 'vmbackup-2']]);
  });

  it('parses checkpoint-dumpxml output and builds a redefinition without the parent', () => {
    const dumped = `<domaincheckpoint>
  <name>vmbackup-3</name>
  <parent><name>vmbackup-2</name></parent>
  <creationTime>1732390000</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='vmbackup-3'/>
  </disks>
</domaincheckpoint>`;
    const cp = parseCheckpointXml(dumped);
    expect(cp).toMatchObject({name: 'vmbackup-3', parent: 'vmbackup-2', creationTime: 1732390000});
    const re = buildRedefineXml(cp);
    expect(re).toContain('<creationTime>1732390000</creationTime>');
    expect(re).not.toContain('parent');
    expect(re).toContain(`<disk name='vda' checkpoint='bitmap' bitmap='vmbackup-3'/>`);
  });

  it('finds the socket of a running backup job', () => {
    expect(backupJobSocket(`<domainbackup mode='pull'><server transport='unix' socket='/var/tmp/vmbackup/b-1/nbd.sock'/></domainbackup>`)).toBe('/var/tmp/vmbackup/b-1/nbd.sock');
    expect(backupJobSocket(`<domainbackup mode='push'/>`)).toBeUndefined();
  });
});

const qcow = (bitmaps: {name: string; flags: string[]}[] = [], compat = '1.1') =>
  parseImageInfo(JSON.stringify({format: 'qcow2', 'virtual-size': 1024, 'cluster-size': 65536, 'format-specific': {type: 'qcow2', data: {compat, bitmaps: bitmaps.map((b) => ({...b, granularity: 65536}))}}}));
const raw = parseImageInfo(JSON.stringify({format: 'raw', 'virtual-size': 2048}));

describe('image info and planning', () => {
  it('reads format, size, compat and bitmaps; says why a disk cannot be tracked', () => {
    const i = qcow([{name: 'vmbackup-1', flags: ['auto']}]);
    expect(i).toMatchObject({format: 'qcow2', virtualSize: 1024, compat: '1.1', clusterSize: 65536});
    expect(usableBitmap(i, 'vmbackup-1')).toBe(true);
    expect(usableBitmap(qcow([{name: 'vmbackup-1', flags: ['in-use', 'auto']}]), 'vmbackup-1')).toBe(false);
    expect(usableBitmap(qcow([{name: 'vmbackup-1', flags: []}]), 'vmbackup-1')).toBe(false);
    expect(trackability(raw)).toMatchObject({trackable: false});
    expect(trackability(qcow([], '0.10')).note).toContain('compat=1.1');
  });

  it('plans per disk: incremental only with a usable base bitmap; raw, new and forced disks in full', () => {
    const {plans, events} = planDisks({
      vm: 'v',
      disks: [
        {target: 'vda', image: qcow([{name: 'b', flags: ['auto']}])},
        {target: 'vdb', image: raw},
        {target: 'vdc', image: qcow()},
        {target: 'vdd', image: qcow([{name: 'b', flags: ['auto']}])},
        {target: 'vde', image: qcow([{name: 'b', flags: ['in-use']}])},
      ],
      baseBitmaps: new Map([['vda', 'b'], ['vdd', 'b'], ['vde', 'b']]),
      forceFull: ['vdd'],
    });
    expect(plans.map((p) => [p.target, p.mode, p.bitmap])).toEqual([
      ['vda', 'incremental', true],
      ['vdb', 'full', false],
      ['vdc', 'full', true],
      ['vdd', 'full', true],
      ['vde', 'full', true],
    ]);
    expect(events.map((e) => [e.code, e.disk])).toEqual([
      ['raw-disk-full-scan', 'vdb'],
      ['disk-new-since-base', 'vdc'],
      ['disk-forced-full', 'vdd'],
      ['checkpoint-lost', 'vde'],
    ]);
    expect(events[0]!.message).toBe('disk vdb has RAW format and can be backed up only in full scan mode');
  });

  it('with no base everything trackable is full with a bitmap', () => {
    const {plans, events} = planDisks({vm: 'v', disks: [{target: 'vda', image: qcow()}], baseBitmaps: undefined});
    expect(plans).toEqual([{target: 'vda', mode: 'full', bitmap: true}]);
    expect(events).toEqual([]);
  });

  it('names checkpoints with the prefix, sortable by time', () => {
    const naming = new CheckpointNaming();
    const a = naming.newName(new Date('2026-11-23T19:30:00.123Z'), 'ab12');
    expect(a).toBe('vmbackup-20261123T193000Z-ab12');
    expect(naming.isOwn(a)).toBe(true);
    expect(naming.isOwn('virtnbdbackup.0')).toBe(false);
    // Another appliance's longer prefix, or a hand-made name, is not ours.
    expect(naming.isOwn('vmbackup-site2-20261123T193000Z-ab12')).toBe(false);
    expect(naming.isOwn('vmbackup-manual')).toBe(false);
    const site2 = new CheckpointNaming('vmbackup-site2-');
    expect(site2.isOwn('vmbackup-site2-20261123T193000Z-ab12')).toBe(true);
    expect(site2.isOwn(a)).toBe(false);
    expect(() => new CheckpointNaming('bad prefix')).toThrow();
  });

  it('parses domstate', () => {
    expect(parseDomState('running\n')).toBe('running');
    expect(parseDomState('shut off\n')).toBe('shutoff');
    expect(parseDomState('paused\n')).toBe('paused');
    expect(parseDomState('in shutdown\n')).toBe('other');
  });
});

describe('restore helpers and qemu-nbd argv', () => {
  it('free targets skip the used ones', () => {
    expect(freeTargets(['vda', 'vdb', 'vdd'], 3)).toEqual(['vdc', 'vde', 'vdf']);
  });

  it('file-safe names keep letters and drop path and shell characters', () => {
    expect(fileSafe(`a/b 'c'; ünï`)).toBe('a_b_c_ünï');
    expect(fileSafe('///')).toBe('_');
  });

  it('qemu-nbd: read-only with a bitmap, or writable with discard; paths stay one argument', () => {
    const ro = qemuNbdArgv({image: '/x/my disk.qcow2', format: 'qcow2', exportName: 'vda', endpoint: {kind: 'unix', path: '/s/a.sock'}, pidFile: '/s/a.pid', readOnly: true, bitmap: 'vmbackup-1'});
    expect(ro).toContain('--read-only');
    expect(ro).toContain('--bitmap=vmbackup-1');
    expect(ro.at(-1)).toBe('/x/my disk.qcow2');
    const rw = qemuNbdArgv({image: '-odd', format: 'raw', exportName: 'vda', endpoint: {kind: 'unix', path: '/s/a.sock'}, pidFile: '/s/a.pid', readOnly: false});
    expect(rw).toContain('--discard=unmap');
    expect(rw).not.toContain('--read-only');
    expect(rw.at(-1)).toBe('./-odd');
    expect(rw.some((a) => a.startsWith('--cache') || a.startsWith('--aio'))).toBe(false);
    const direct = qemuNbdArgv({image: '/x', format: 'qcow2', exportName: 'vda', endpoint: {kind: 'unix', path: '/s/a.sock'}, pidFile: '/p', readOnly: false, directIo: true});
    expect(direct).toEqual(expect.arrayContaining(['--cache=none', '--aio=io_uring', '--discard=unmap']));
    // A read-only export (backups) keeps the page cache: it reads what a running guest may cache too.
    const roDirect = qemuNbdArgv({image: '/x', format: 'qcow2', exportName: 'vda', endpoint: {kind: 'unix', path: '/s/a.sock'}, pidFile: '/p', readOnly: true, directIo: true});
    expect(roDirect.some((a) => a.startsWith('--cache'))).toBe(false);
    const tcp = qemuNbdArgv({image: '/x', format: 'raw', exportName: 'vda', endpoint: {kind: 'tcp', address: '10.0.0.11', port: 10901}, pidFile: '/p', readOnly: true});
    expect(tcp).toEqual(expect.arrayContaining(['--bind=10.0.0.11', '--port=10901']));
    expect(tcp.some((a) => a.startsWith('--socket'))).toBe(false);
  });
});
