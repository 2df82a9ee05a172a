/**
 * Worker-thread entry of the threaded ranged-GET reader (range-threads.ts): owns a RangeReader
 * (its keep-alive TLS connections, so decryption runs on this thread) and answers
 * {id, path, offset, length} with {id, reply, data} where `data` is a fresh ArrayBuffer holding
 * the body, transferred (not copied) to the caller; or with {id, error}.
 *
 * A thread of its own also keeps the garbage collector's work small: every TLS record arrives in
 * a 16 KiB buffer of Node's, and the collections those buffers provoke mark this thread's small
 * heap instead of the whole appliance's.
 */
import {parentPort, workerData} from 'node:worker_threads';
import {RangeReader, UnsupportedFramingError, type RangeReaderOptions} from './range-reader.js';

export interface RangeRequest {id: number; path: string; offset: number; length: number}
export type RangeResponse =
  | {id: number; reply: import('./range-reader.js').RangeReply; data?: ArrayBuffer}
  | {id: number; error: {message: string; name: string; code?: string}};

const port = parentPort!;
const reader = new RangeReader(workerData as RangeReaderOptions);

port.on('message', (m: RangeRequest | 'close') => {
  if (m === 'close') {
    reader.close();
    return;
  }
  void (async () => {
    const data = new ArrayBuffer(m.length);
    try {
      const reply = await reader.get(m.path, m.offset, m.length, Buffer.from(data));
      const ok = (reply.status === 200 || reply.status === 206) && reply.length <= m.length;
      if (ok) port.postMessage({id: m.id, reply, data} satisfies RangeResponse, [data]);
      else port.postMessage({id: m.id, reply} satisfies RangeResponse);
    } catch (err) {
      const e = err as Error & {code?: unknown};
      const code = typeof e.code === 'string' ? e.code : undefined;
      port.postMessage({id: m.id, error: {message: e.message, name: err instanceof UnsupportedFramingError ? 'UnsupportedFramingError' : e.name, code}} satisfies RangeResponse);
    }
  })();
});
port.postMessage('ready');
