/**
 * How a screen claims keys that the app shell would otherwise take: `typing` is true while a
 * text field has the focus (then `q` and `?` are typed, not commands), and `escape` lets a
 * wizard step back instead of closing (its handler only dispatches to the wizard's reducer).
 */
import {createContext, useContext, useLayoutEffect, useRef, type RefObject} from 'react';

export interface KeyCapture {
  typing: boolean;
  escape: (() => void) | null;
}

export const KeyCaptureContext = createContext<RefObject<KeyCapture>>({current: {typing: false, escape: null}});
export const useKeyCapture = () => useContext(KeyCaptureContext);

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
