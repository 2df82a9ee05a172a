/**
 * Ctrl-C, SIGTERM and SIGHUP (a dropped SSH session) during a long CLI command: the first one
 * stops the work through an AbortSignal, so the command cleans up on the hypervisor (the libvirt
 * backup job, a read-only qemu-nbd holding an image lock, scratch directories) and discards the
 * unfinished restore point before it exits with code 30. A third one quits at once; what is
 * left then is found and removed by the next vmbackup run on that host.
 */
import type {Printer} from './output.js';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal that stopped the work, if one did. */
  readonly received: string | undefined;
  dispose(): void;
}

export function onStopSignals(out: Printer, what: string): StopSignals {
  const controller = new AbortController();
  let count = 0;
  let received: string | undefined;
  const say = (line: string) => {
    try {
      out.warn(line);
    } catch {
      /* the terminal is gone (SIGHUP) */
    }
  };
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (sig === 'SIGHUP') {
      // The terminal is gone: a write to it must not crash the clean-up.
      for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
    }
    if (count === 1) {
      received = sig;
      say(`${sig}: stopping the ${what} and cleaning up on the host (Ctrl-C twice more quits at once and leaves that to the next vmbackup run).`);
      controller.abort(new Error(`stopped by ${sig}`));
    } else if (count >= 3) {
      process.exit(130);
    } else {
      say('Still cleaning up…');
    }
  };
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      for (const s of STOP_SIGNALS) process.off(s, handler);
    },
  };
}
