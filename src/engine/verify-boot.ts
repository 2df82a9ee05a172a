/**
 * Restore verification: does a restore point boot? The daemon starts it as an isolated instant VM
 * (no network, disks read from the repository, writes into throw-away overlays); this watches it
 * until the firmware has handed over to a boot loader or the guest agent answers, takes a
 * screenshot, and says what it saw. The caller discards the VM.
 *
 * The signals, strongest first:
 * - the guest agent answers a ping: the operating system started (and its agent with it);
 * - the guest read from its disks what only a boot loader reads: a BIOS reads each disk's boot
 *   sector alone (one request of 512 bytes; SeaBIOS tries again once a minute when none is
 *   bootable), so at least BIOS_LOADER_BYTES in all *and* a request of several sectors means the
 *   boot sector's code ran and reads on — measured on this test bed: a disk without a boot
 *   loader reads 512 bytes in 1 request, one whose boot sector reads 127 sectors 64 KiB in 3.
 *   A UEFI firmware reads the EFI system partition itself, boot loader file included (shim and
 *   GRUB are megabytes), so there UEFI_LOADER_BYTES says the firmware found and loaded one.
 * A VM with a guest agent channel is given the whole timeout for its agent: the boot loader alone
 * is then a warning (the operating system may not have come up).
 */
import {setTimeout as sleep} from 'node:timers/promises';
import type {BootObservation, InstantVm} from '../platforms/types.js';

/** BIOS: at least this much read, some of it in requests of several sectors (see the file's comment). */
export const BIOS_LOADER_BYTES = 32 * 1024;
/** UEFI: at least this much read (the firmware loads the boot loader's file from the EFI system partition). */
export const UEFI_LOADER_BYTES = 1024 * 1024;

/** Whether what the VM has read says a boot loader was loaded and ran (see the file's comment). */
export function bootLoaderSeen(seen: Pick<BootObservation, 'readBytes' | 'readRequests' | 'uefi'>): boolean {
  if (seen.uefi) return seen.readBytes >= UEFI_LOADER_BYTES;
  return seen.readBytes >= BIOS_LOADER_BYTES && seen.readBytes > 512 * seen.readRequests;
}
/** How long the screen is given to show the boot loader's output after the hand-over, without an agent to wait for. */
const SETTLE_MS = 5_000;

export interface BootVerification {
  result: 'passed' | 'warning' | 'failed';
  /** What was seen, in the operator's words. */
  message: string;
  signal?: 'guest-agent' | 'boot-loader';
  readBytes: number;
  durationMs: number;
  /** PNG of the VM's screen at the end, when it had one. */
  screenshot?: Uint8Array;
}

function kib(n: number): string {
  return n >= 10 * 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(0)} MiB` : `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
}

/** Watches `vm` (already running) for at most timeoutMs; see the file's comment. */
export async function watchBoot(vm: Pick<InstantVm, 'observe' | 'screenshot'>, o: {timeoutMs: number; pollMs?: number; signal?: AbortSignal}): Promise<BootVerification> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  const seconds = Math.round(o.timeoutMs / 1000);
  let readBytes = 0;
  let readRequests = 0;
  let handedOverAt: number | undefined;
  let last: BootObservation | undefined;
  for (;;) {
    o.signal?.throwIfAborted();
    const seen = await vm.observe();
    // A stopped VM's observation knows nothing of its firmware: keep what the running one said.
    last = seen.running || !last ? seen : {...last, running: false, agentAnswered: false};
    // A VM that stopped has no figures any more: keep the last ones.
    if (seen.running || seen.readBytes > readBytes) {
      readBytes = Math.max(readBytes, seen.readBytes);
      readRequests = Math.max(readRequests, seen.readRequests);
    }
    const now = Date.now();
    if (seen.agentAnswered) {
      const screenshot = await vm.screenshot().catch(() => undefined);
      return {result: 'passed', signal: 'guest-agent', readBytes, durationMs: now - t0, screenshot, message: `booted: the guest agent answered after ${((now - t0) / 1000).toFixed(0)} s (${kib(readBytes)} read from the backup)`};
    }
    if (handedOverAt === undefined && bootLoaderSeen({readBytes, readRequests, uefi: last.uefi})) handedOverAt = now;
    if (!seen.running) break;
    if (handedOverAt !== undefined && !seen.agentConfigured && now - handedOverAt >= SETTLE_MS) break;
    if (now >= deadline) break;
    await sleep(Math.min(o.pollMs ?? 1000, Math.max(0, deadline - now)), undefined, {signal: o.signal});
  }
  const durationMs = Date.now() - t0;
  const screenshot = last?.running ? await vm.screenshot().catch(() => undefined) : undefined;
  const what = last?.uefi ? 'the UEFI firmware found and read a boot loader on the disk' : 'the firmware handed over to the boot loader on the disk';
  if (handedOverAt !== undefined) {
    const stopped = last?.running ? '' : ' (the VM then stopped by itself)';
    if (last?.agentConfigured && last.running) {
      return {result: 'warning', signal: 'boot-loader', readBytes, durationMs, screenshot, message: `${what}, which read ${kib(readBytes)}, but the guest agent did not answer within ${seconds} s: the operating system may not have started; look at the screenshot`};
    }
    return {result: 'passed', signal: 'boot-loader', readBytes, durationMs, screenshot, message: `${what}, which read ${kib(readBytes)}${stopped}`};
  }
  if (!last?.running) {
    return {result: 'failed', readBytes, durationMs, screenshot, message: `the VM stopped after ${(durationMs / 1000).toFixed(0)} s, before its firmware handed over to a boot loader (${kib(readBytes)} read)`};
  }
  return {
    result: 'failed',
    readBytes,
    durationMs,
    screenshot,
    message: `the firmware did not hand over to a boot loader within ${seconds} s: the VM read only ${readBytes} bytes of its disks (no boot loader on the first disk, or one the firmware cannot start); look at the screenshot, and restore a disk to files to check it`,
  };
}
