/**
 * Status symbols and colours: the symbol carries the meaning (readable without colour), the
 * colour repeats it.
 */
export type Tone = 'ok' | 'warning' | 'error' | 'running' | 'idle';

export const SYMBOL: Record<Tone, string> = {ok: '✔', warning: '⚠', error: '✖', running: '▶', idle: '·'};
export const COLOR: Record<Tone, string | undefined> = {ok: 'green', warning: 'yellow', error: 'red', running: 'cyan', idle: undefined};

/** The tone of a session, VM or job result state. */
export function toneOf(state: string | undefined): Tone {
  switch (state) {
    case 'success':
      return 'ok';
    case 'warning':
    case 'stopped':
      return 'warning';
    case 'failed':
      return 'error';
    case 'running':
    case 'waiting':
      return 'running';
    default:
      return 'idle';
  }
}
