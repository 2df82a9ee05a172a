/**
 * The stream between the appliance and a worker on a host (src/worker/main.ts): frames over the
 * stdin/stdout of the one SSH session the appliance opened, several disks multiplexed by a disk
 * number. Both ends use this module; what comes from the other end is untrusted and checked here
 * first (frame size, header shape), then by whoever handles the message.
 *
 * A frame: u32 BE length of the rest · u32 BE length of the header · the header (JSON, an object
 * with a string `t`) · the body (binary, may be empty).
 *
 * Appliance → worker                              Worker → appliance
 *   hello {protocol, mac?}                          hello {protocol, pid, node}
 *   open {disk, socket, export}                     opened {disk, size}
 *   read {disk, seq, offset, length, chunkSize}     ids {disk, seq} + n × 32 bytes (zero id = zeros)
 *   need {disk, seq} + u32 BE chunk indexes         chunk {disk, seq, index, flags, plain} + payload
 *                                                   … then done {disk, seq}
 *   close {disk}                                    closed {disk}
 *   stats                                           stats {cpuUserUs, cpuSystemUs, maxRssKiB}
 *   bye                                             (exits)
 *                                                   error {disk?, seq?, message}
 * A `read` holds the data on the worker until its `need` arrives (an empty `need` releases it):
 * the appliance bounds how many reads it has open, which bounds the worker's memory.
 */

import {ProtocolError} from '../util/frames.js';

export {encodeFrame, FrameReader, ProtocolError, str, uint, type Frame} from '../util/frames.js';

export const PROTOCOL_VERSION = 1;
/** The largest frame either end accepts: a chunk of 64 MiB (the largest chunk size) plus headers. */
export const MAX_FRAME = (64 << 20) + 65536;

/** u32 BE indexes, the body of a `need`. */
export function encodeIndexes(indexes: readonly number[]): Buffer {
  const b = Buffer.alloc(indexes.length * 4);
  indexes.forEach((v, i) => b.writeUInt32BE(v, i * 4));
  return b;
}

export function decodeIndexes(body: Buffer): number[] {
  if (body.length % 4 !== 0) throw new ProtocolError('a list of chunk indexes whose length is not a multiple of 4');
  const out: number[] = [];
  for (let at = 0; at < body.length; at += 4) out.push(body.readUInt32BE(at));
  return out;
}
