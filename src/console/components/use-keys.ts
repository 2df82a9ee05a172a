/**
 * useInput, one key at a time. Ink hands a run of plain characters over as one input
 * ("n\rhunter2" when a user types ahead over SSH); this splits such a run at Enter, Tab and
 * Backspace so handlers see the keys in the order they were typed, and hands each key to the
 * screen that shows when its turn comes (see drain). Handlers only dispatch.
 */
import type {EventEmitter} from 'node:events';
import {useInput, useStdin, type Key} from 'ink';
import {useLayoutEffect, useRef} from 'react';

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

/** Typed-ahead text up to this length is handed over a character at a time; a longer run is a paste. */
const TYPED_RUN = 64;

/**
 * Splits one input event into single keys. Typed text is split into characters too, because its
 * first letter may be a command that changes the screen ("n" then a job name, on the dashboard):
 * each following letter must reach the screen that letter opened. A long run (a pasted
 * certificate, say) goes as its first character and then the rest in one piece.
 */
export function splitKeys(input: string, key: Key): [string, Key][] {
  if (input.length <= 1 || key.ctrl || key.meta || key.escape) return [[input, key]];
  if (!/[\r\n\t\x7f\b]/.test(input) && (!/^[\x20-\x7e\u00a0-\uffff]+$/u.test(input) || Object.entries(key).some(([, v]) => v === true))) return [[input, key]];
  const out: [string, Key][] = [];
  let text = '';
  const flush = () => {
    if (!text) return;
    const chars = [...text];
    if (chars.length <= TYPED_RUN) for (const ch of chars) out.push([ch, {...NO_KEY}]);
    else out.push([chars[0]!, {...NO_KEY}], [chars.slice(1).join(''), {...NO_KEY}]);
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

/** A registered key handler; `current` is the latest closure of its component. */
interface Registration {
  current: (input: string, key: Key) => void;
  registered: boolean;
}

/**
 * Every active key handler, in registration order. Registration happens in a layout effect,
 * which runs inside React's commit: once a key's dispatch has re-rendered the console (Ink
 * renders synchronously), the new screen's handlers are here and the old screen's are gone,
 * whereas Ink's own input listeners change only later, in passive effects.
 */
const handlers: Registration[] = [];
/** Keys split off input events, waiting for the handlers of the screen they belong to. */
const pending: [string, Key][] = [];
let draining = false;
/** Screens still loading what their keys act on; keys wait for them (see holdKeys). */
let holds = 0;
/** The longest a loading screen holds typed-ahead keys back. */
const HOLD_MAX_MS = 3000;
/** Ink input events seen, counted by a listener placed before every useInput listener. */
let eventSeq = 0;
let handledSeq = -1;
const counted = new WeakSet<object>();

/**
 * One key at a time to the handlers active at that moment. The first key of an event is
 * delivered at once; when more are waiting, the rest go one per turn of the event loop, after
 * React has committed what the previous key did — so keys typed ahead over SSH past a screen
 * change reach the screen that the change opened, not the one it closed.
 */
function drain(): void {
  // A screen that is still loading has nothing to choose from yet: its keys wait for it,
  // unless an Esc is among them (the way out of a screen that hangs is never held back).
  if (holds > 0 && !pending.some(([, k]) => k.escape)) {
    draining = false;
    return;
  }
  const next = pending.shift();
  if (!next) {
    draining = false;
    return;
  }
  draining = true;
  try {
    for (const h of [...handlers]) if (h.registered) h.current(next[0], next[1]);
  } finally {
    // Even when a handler threw, the keys after this one still get their turn.
    if (pending.length > 0) setImmediate(drain);
    else draining = false;
  }
}

/**
 * Holds typed-ahead keys back until the caller's screen can take them (its list has loaded):
 * returns the release, which also runs by itself after HOLD_MAX_MS. useLoad takes a hold for
 * the first load of every screen, so "↓ ↓ Enter Enter" typed in one go chooses on the screen
 * that the first Enter opened even though that screen shows "loading" for a moment.
 */
export function holdKeys(): () => void {
  holds++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearTimeout(timer);
    holds--;
    if (!draining && pending.length > 0) {
      draining = true;
      setImmediate(drain);
    }
  };
  const timer = setTimeout(release, HOLD_MAX_MS);
  timer.unref();
  return release;
}

/**
 * useInput, one key at a time, delivered to whichever screen is showing when the key's turn
 * comes. Ink calls every useInput listener with each input event; the first listener to see an
 * event queues its keys and the others ignore it, so a key is handled once per active handler.
 */
export function useKeys(handler: (input: string, key: Key) => void, opts: {isActive?: boolean} = {}): void {
  const isActive = opts.isActive ?? true;
  const reg = useRef<Registration>({current: handler, registered: false});
  reg.current.current = handler;
  const {internal_eventEmitter: emitter} = useStdin() as {internal_eventEmitter?: EventEmitter};
  useLayoutEffect(() => {
    if (emitter && !counted.has(emitter)) {
      counted.add(emitter);
      emitter.prependListener('input', () => {
        eventSeq++;
      });
    }
  }, [emitter]);
  useLayoutEffect(() => {
    if (!isActive) return;
    const r = reg.current;
    r.registered = true;
    handlers.push(r);
    return () => {
      r.registered = false;
      handlers.splice(handlers.indexOf(r), 1);
    };
  }, [isActive]);
  useInput(
    (input, key) => {
      if (handledSeq === eventSeq) return;
      handledSeq = eventSeq;
      pending.push(...splitKeys(input, key));
      if (!draining) drain();
    },
    {isActive},
  );
}
