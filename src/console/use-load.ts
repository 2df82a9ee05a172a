/**
 * Loads data from the ConsoleApi into a reducer: loading, the data, or the error in words.
 * `reload()` fetches again (after a change, or on `r`) and keeps the data on screen meanwhile;
 * when the deps change, the data of the old ones is dropped at once, so nothing shows an answer
 * for other inputs as its own. An older answer never overwrites a newer one. Until the answer for
 * the current inputs is in, keys typed ahead wait for the screen (holdKeys).
 */
import {useCallback, useEffect, useLayoutEffect, useReducer, useRef} from 'react';
import {holdKeys} from './components/use-keys.js';
import {explain} from './api.js';

export interface LoadState<T> {
  loading: boolean;
  data?: T;
  error?: {message: string; hint?: string};
  seq: number;
}

type LoadAction<T> =
  | {type: 'start'; seq: number; fresh: boolean}
  | {type: 'done'; seq: number; data: T}
  | {type: 'fail'; seq: number; error: {message: string; hint?: string}};

export function loadReducer<T>(s: LoadState<T>, a: LoadAction<T>): LoadState<T> {
  switch (a.type) {
    case 'start':
      // Other inputs (deps changed): what was loaded for the old ones is not shown as theirs.
      // A reload of the same keeps it on screen until the new answer is in.
      return a.fresh ? {loading: true, seq: a.seq} : {...s, loading: true, seq: a.seq};
    case 'done':
      return a.seq === s.seq ? {loading: false, data: a.data, seq: s.seq} : s;
    case 'fail':
      return a.seq === s.seq ? {...s, loading: false, error: a.error} : s;
  }
}

export function useLoad<T>(fetch: () => Promise<T>, deps: readonly unknown[] = []): LoadState<T> & {reload: () => void} {
  const [state, dispatch] = useReducer(loadReducer<T>, {loading: true, seq: 0});
  const seq = useRef(0);
  const fn = useRef(fetch);
  fn.current = fetch;
  const load = useCallback((fresh: boolean) => {
    const n = ++seq.current;
    dispatch({type: 'start', seq: n, fresh});
    fn.current().then(
      (data) => dispatch({type: 'done', seq: n, data}),
      (err: unknown) => dispatch({type: 'fail', seq: n, error: explain(err)}),
    );
  }, []);
  const reload = useCallback(() => load(false), [load]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => load(true), deps);
  // Keys typed ahead into this screen wait until its answer for the current inputs is in (holdKeys).
  const settled = state.data !== undefined || state.error !== undefined;
  useLayoutEffect(() => (settled ? undefined : holdKeys()), [settled]);
  return {...state, reload};
}

/** Runs one action at a time (test, save, start) and keeps its outcome for an inline message. */
export type ActionState = {busy?: string; ok?: string; error?: {message: string; hint?: string}};
export type ActionMsg = {type: 'busy'; what: string} | {type: 'ok'; text: string} | {type: 'fail'; error: {message: string; hint?: string}} | {type: 'clear'};
export function actionReducer(_s: ActionState, a: ActionMsg): ActionState {
  switch (a.type) {
    case 'busy':
      return {busy: a.what};
    case 'ok':
      return {ok: a.text};
    case 'fail':
      return {error: a.error};
    case 'clear':
      return {};
  }
}

export function useAction() {
  const [state, dispatch] = useReducer(actionReducer, {});
  const run = useCallback(async <T,>(what: string, fn: () => Promise<T>, ok?: (v: T) => string): Promise<{ok: true; value: T} | {ok: false}> => {
    dispatch({type: 'busy', what});
    try {
      const value = await fn();
      dispatch(ok ? {type: 'ok', text: ok(value)} : {type: 'clear'});
      return {ok: true, value};
    } catch (err) {
      dispatch({type: 'fail', error: explain(err)});
      return {ok: false};
    }
  }, []);
  return {state, run, dispatch};
}
