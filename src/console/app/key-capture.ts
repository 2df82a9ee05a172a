/**
 * How screens claim keys that the app shell would otherwise take. While a component with text
 * entry is mounted (a form, the VM picker's search) it counts itself in `owners`, and then the
 * shell leaves `q` and `?` to it: its own reducer decides, key by key, whether the letter is
 * typed or means quit/help — so a burst such as "/q" over SSH searches for "q" instead of
 * quitting. The count changes only on mount/unmount, never between two keys of one burst.
 * `escape` lets a wizard step back instead of closing (its handler only dispatches).
 */
import {createContext, useContext, useLayoutEffect, useRef, type RefObject} from 'react';

export interface KeyCapture {
  owners: number;
  escape: (() => void) | null;
}

export const KeyCaptureContext = createContext<RefObject<KeyCapture>>({current: {owners: 0, escape: null}});
export const useKeyCapture = () => useContext(KeyCaptureContext);

/** Marks the calling component as one that decides about `q` and `?` itself while mounted. */
export function useOwnLetters(active = true): void {
  const capture = useKeyCapture();
  useLayoutEffect(() => {
    if (!active) return;
    capture.current.owners++;
    return () => {
      capture.current.owners--;
    };
  }, [capture, active]);
}

/** Makes Esc call `onEscape` while the calling screen is mounted. */
export function useEscape(onEscape: () => void): void {
  const capture = useKeyCapture();
  const fn = useRef(onEscape);
  fn.current = onEscape;
  useLayoutEffect(() => {
    const handler = () => fn.current();
    capture.current.escape = handler;
    return () => {
      if (capture.current.escape === handler) capture.current.escape = null;
    };
  }, [capture]);
}
