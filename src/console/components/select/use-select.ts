/**
 * Key bindings of a Select: ↑/↓ (and k/j), Home/End, Enter. The handler only dispatches; the
 * chosen item is reported from an effect when the reducer's `chosen` changes, the focused one
 * (onFocus) from a layout effect.
 */
import {useKeys} from '../use-keys.js';
import {useEffect, useLayoutEffect, useReducer, useRef} from 'react';
import type {Key} from 'ink';
import {initSelect, selectReducer, type SelectAction} from './use-select-state.js';

export function useSelect<T>(opts: {
  items: readonly T[];
  visible: number;
  isActive?: boolean;
  initialFocus?: number;
  onChoose: (item: T, index: number) => void;
  onFocus?: (item: T, index: number) => void;
  /** Any other key, with the item focused when that key came (also inside a burst typed ahead). */
  onKey?: (input: string, key: Key, item: T | undefined) => void;
}) {
  const [state, dispatchState] = useReducer(selectReducer, undefined, () => initSelect(opts.items.length, opts.visible, opts.initialFocus));
  // The reducer is pure: `live` applies each action at once, so a key handled before React has
  // rendered the keys typed before it still sees where the focus is.
  const live = useRef(state);
  live.current = state;
  const dispatch = (a: SelectAction) => {
    live.current = selectReducer(live.current, a);
    dispatchState(a);
  };
  if (state.count !== opts.items.length || state.visible !== Math.max(1, opts.visible)) dispatch({type: 'resize', count: opts.items.length, visible: opts.visible});
  useKeys(
    (input, key) => {
      // "jj" typed ahead arrives as one input.
      if (/^[jk]{2,}$/.test(input)) for (const ch of input) dispatch({type: ch === 'j' ? 'next' : 'prev'});
      else if (key.downArrow || input === 'j') dispatch({type: 'next'});
      else if (key.upArrow || input === 'k') dispatch({type: 'prev'});
      else if (key.home) dispatch({type: 'first'});
      else if (key.end) dispatch({type: 'last'});
      else if (key.return) dispatch({type: 'choose'});
      else opts.onKey?.(input, key, items.current[live.current.focus]);
    },
    {isActive: opts.isActive ?? true},
  );
  // Latest callbacks in refs: the effect fires once per choice, whatever the parent re-renders.
  const onChoose = useRef(opts.onChoose);
  onChoose.current = opts.onChoose;
  const onFocus = useRef(opts.onFocus);
  onFocus.current = opts.onFocus;
  const items = useRef(opts.items);
  items.current = opts.items;
  useEffect(() => {
    if (state.chosen && items.current[state.chosen.index] !== undefined) onChoose.current(items.current[state.chosen.index]!, state.chosen.index);
  }, [state.chosen]);
  // In the commit (a layout effect), so that a screen acting on the focused item with a key of
  // its own (the file browser's Space) sees the focus of the keys typed before it in a burst.
  useLayoutEffect(() => {
    if (items.current[state.focus] !== undefined) onFocus.current?.(items.current[state.focus]!, state.focus);
  }, [state.focus]);
  return state;
}
