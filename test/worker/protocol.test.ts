/**
 * The worker stream's framing (src/worker/protocol.ts), which both ends parse from the other:
 * frames cut anywhere arrive whole; a frame above the limit, a header that is not a JSON object
 * with a message type, or a header longer than its frame is refused before anything is allocated.
 */
import {describe, expect, it} from 'vitest';
import {decodeIndexes, encodeFrame, encodeIndexes, FrameReader, MAX_FRAME, ProtocolError, uint, type Frame} from '../../src/worker/protocol.js';

function collect(max?: number): {reader: FrameReader; frames: Frame[]} {
  const frames: Frame[] = [];
  return {reader: new FrameReader((f) => frames.push(f), max ?? MAX_FRAME), frames};
}

describe('worker frames', () => {
  it('arrive whole however the stream is cut', () => {
    const bytes = Buffer.concat([...encodeFrame({t: 'ids', disk: 1, seq: 2}, Buffer.alloc(96, 7)), ...encodeFrame({t: 'done', disk: 1, seq: 2})]);
    for (const step of [1, 3, 7, 50, bytes.length]) {
      const {reader, frames} = collect();
      for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, at + step));
      expect(frames.map((f) => [f.header.t, f.body.length])).toEqual([['ids', 96], ['done', 0]]);
      expect(frames[0]!.body.equals(Buffer.alloc(96, 7))).toBe(true);
    }
    expect(decodeIndexes(encodeIndexes([0, 5, 4095]))).toEqual([0, 5, 4095]);
  });

  it('refuses what a hostile end could send', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(2 ** 31, 0);
    expect(() => collect().reader.push(big)).toThrow(ProtocolError);
    expect(() => collect(1000).reader.push(Buffer.concat(encodeFrame({t: 'chunk'}, Buffer.alloc(2000))))).toThrow(/a frame of \d+ bytes \(at most 1000\)/);
    const frame = (header: string) => {
      const json = Buffer.from(header);
      const b = Buffer.alloc(8);
      b.writeUInt32BE(4 + json.length, 0);
      b.writeUInt32BE(json.length, 4);
      return Buffer.concat([b, json]);
    };
    expect(() => collect().reader.push(frame('not json'))).toThrow(/not JSON/);
    expect(() => collect().reader.push(frame('[1,2]'))).toThrow(/without a message type/);
    expect(() => collect().reader.push(frame('{"t": 5}'))).toThrow(/without a message type/);
    const lying = frame('{"t":"x"}');
    lying.writeUInt32BE(1000, 4);
    expect(() => collect().reader.push(lying)).toThrow(/a frame header of 1000 bytes/);
    expect(() => uint({t: 'read', offset: -1}, 'offset')).toThrow(/not a non-negative integer/);
    expect(() => uint({t: 'read', offset: 1.5}, 'offset')).toThrow(ProtocolError);
    expect(() => decodeIndexes(Buffer.alloc(5))).toThrow(ProtocolError);
  });
});
