/**
 * useInput, one key at a time. Ink hands a run of plain characters over as one input
 * ("n\rhunter2" when a user types ahead over SSH); this splits such a run at Enter, Tab and
 * Backspace so handlers see the keys in the order they were typed. Handlers only dispatch.
 */
import {useInput, type Key} from 'ink';

const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
} as Key;

/** Splits one input event into single keys; plain text between control keys stays together. */
export function splitKeys(input: string, key: Key): [string, Key][] {
  if (input.length <= 1 || !/[\r\n\t\x7f\b]/.test(input) || key.ctrl || key.meta) return [[input, key]];
  const out: [string, Key][] = [];
  let text = '';
  const flush = () => {
    if (text) out.push([text, {...NO_KEY}]);
    text = '';
  };
  for (const ch of input) {
    if (ch === '\r' || ch === '\n') {
      flush();
      out.push(['', {...NO_KEY, return: true}]);
    } else if (ch === '\t') {
      flush();
      out.push(['', {...NO_KEY, tab: true}]);
    } else if (ch === '\x7f' || ch === '\b') {
      flush();
      out.push(['', {...NO_KEY, backspace: true}]);
    } else text += ch;
  }
  flush();
  return out;
}

export function useKeys(handler: (input: string, key: Key) => void, opts: {isActive?: boolean} = {}): void {
  useInput(
    (input, key) => {
      for (const [i, k] of splitKeys(input, key)) handler(i, k);
    },
    {isActive: opts.isActive ?? true},
  );
}
