/**
 * Subscribes to the daemon's events while mounted: folds them into the progress reducer and
 * calls `onEvent` for each (screens reload their lists). Losing the stream is shown, not fatal:
 * the screens still work from their last load, and the stream is opened again.
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
    // The stream ends when the daemon restarts: connect again, every 2 s, until unmounted.
    const loop = async () => {
      while (!ac.signal.aborted) {
        try {
          await api.events((e) => {
            setLost(undefined);
            dispatch(e);
            cb.current?.(e);
          }, ac.signal);
          if (!ac.signal.aborted) setLost('the daemon closed the event stream; reconnecting');
        } catch (err) {
          if (!ac.signal.aborted) setLost(`${explain(err).message} Reconnecting.`);
        }
        await pause(2000, ac.signal);
      }
    };
    void loop();
    return () => ac.abort();
  }, [api]);
  return {progress, lost};
}

/** Waits `ms`, or less when `signal` aborts (so quitting never waits for a reconnect). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, {once: true});
  });
}
