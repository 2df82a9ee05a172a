/**
 * Subscribes to the daemon's events while mounted: folds them into the progress reducer and
 * calls `onSession` on session changes (screens reload their lists). Losing the stream is shown,
 * not fatal: the screens still work from their last load.
 */
import {useEffect, useReducer, useRef, useState} from 'react';
import {explain, type DaemonEvent} from '../api.js';
import {useApi} from '../router/context.js';
import {progressReducer} from './progress-state.js';

export function useEvents(onEvent?: (e: DaemonEvent) => void) {
  const api = useApi();
  const [progress, dispatch] = useReducer(progressReducer, {});
  const [lost, setLost] = useState<string | undefined>();
  const cb = useRef(onEvent);
  cb.current = onEvent;
  useEffect(() => {
    const ac = new AbortController();
    api
      .events((e) => {
        dispatch(e);
        cb.current?.(e);
      }, ac.signal)
      .catch((err: unknown) => {
        if (!ac.signal.aborted) setLost(explain(err).message);
      });
    return () => ac.abort();
  }, [api]);
  return {progress, lost};
}
