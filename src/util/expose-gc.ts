/**
 * V8's gc() for a process or thread that frees memory V8 does not see (lz4-napi's output buffers
 * are freed by finalizers that run only after a GC V8 does not start for them): undefined where
 * it cannot be had. Used by the chunk worker threads and by the worker on a host.
 */
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';

export function exposeGc(): ((opts: {type: 'minor' | 'major'}) => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    return typeof f === 'function' ? (f as (opts: {type: 'minor' | 'major'}) => void) : undefined;
  } catch {
    return undefined;
  }
}
