/** libvirt's backup-begin failures, as libvirt prints them, turned into what the admin should do. */
import {describe, expect, it} from 'vitest';
import {explainBackupBeginError, isBrokenBitmapChain, parseDfAvail} from '../../../src/platforms/libvirt/job-errors.js';
import {ExitCode} from '../../../src/util/errors.js';

describe('backup-begin errors', () => {
  it.each([
    ['error: Requested operation is not valid: another backup job is already running', ExitCode.locked, 'Another job'],
    ['error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainBackupBegin)', ExitCode.locked, 'Another job'],
    ['error: Operation not supported: incremental backup is not supported yet', ExitCode.platformFailed, 'libvirt 7.6'],
    ['error: unsupported flags (0x2) in function qemuBackupBegin', ExitCode.platformFailed, 'libvirt 7.6'],
    ['error: Operation not supported: cannot create checkpoint while snapshot exists', ExitCode.platformFailed, 'snapshots'],
    ['error: internal error: unable to execute QEMU command: Cannot store dirty bitmaps in qcow2 v2 files', ExitCode.platformFailed, 'compat=1.1'],
    ["error: Failed to bind socket to /var/tmp/vmbackup/b/nbd.sock: Permission denied", ExitCode.platformFailed, 'AppArmor'],
  ])('%s', (stderr, code, hint) => {
    const e = explainBackupBeginError('vm1', 'hvm-1', stderr)!;
    expect(e.exitCode).toBe(code);
    expect(`${e.message} ${e.hint}`).toContain(hint);
  });

  it('leaves unknown failures alone', () => {
    expect(explainBackupBeginError('vm1', 'hvm-1', 'error: something else')).toBeUndefined();
  });

  it('recognises a broken bitmap chain, and nothing else, as a reason to go full', () => {
    expect(isBrokenBitmapChain("error: checkpoint inconsistent: missing or broken bitmap 'vmbackup-1' for disk 'vda'")).toBe(true);
    expect(isBrokenBitmapChain("error: internal error: bitmap 'vmbackup-1' not found in backing chain of 'vda'")).toBe(true);
    expect(isBrokenBitmapChain('error: Operation not supported: cannot create checkpoint while snapshot exists')).toBe(false);
    expect(isBrokenBitmapChain('error: creating checkpoint for incremental backup is not supported yet')).toBe(false);
  });

  it('reads df output', () => {
    expect(parseDfAvail('     Avail\n123456789\n')).toBe(123456789);
    expect(parseDfAvail('df: /nope: No such file or directory\n')).toBeUndefined();
  });
});
