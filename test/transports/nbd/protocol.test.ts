import {describe, expect, it} from 'vitest';
import {
  NbdProtocolError,
  decodeBlockStatus,
  decodeErrorChunk,
  decodeInfo,
  describeErrno,
  encodeGo,
  encodeMetaContextQuery,
  encodeOption,
  encodeRequest,
} from '../../../src/transports/nbd/protocol.js';

describe('NBD protocol encoding', () => {
  it('encodes a request header big-endian', () => {
    const b = encodeRequest({flags: 2, type: 6, cookie: 0x0102030405060708n, offset: 2 ** 40 + 5, length: 65536});
    expect(b.toString('hex')).toBe('25609513' + '0002' + '0006' + '0102030405060708' + '0000010000000005' + '00010000');
  });

  it('encodes options, GO and SET_META_CONTEXT payloads with UTF-8 names', () => {
    expect(encodeOption(8).toString('hex')).toBe('49484156454f5054' + '00000008' + '00000000');
    expect(encodeGo('ü', [3]).toString('hex')).toBe('00000002' + 'c3bc' + '0001' + '0003');
    expect(encodeMetaContextQuery('vda', ['base:allocation']).toString('hex')).toBe(
      '00000003' + Buffer.from('vda').toString('hex') + '00000001' + '0000000f' + Buffer.from('base:allocation').toString('hex'),
    );
    expect(() => encodeGo('x'.repeat(4097), [])).toThrow(RangeError);
  });

  it('decodes NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE and rejects bad lengths', () => {
    expect(decodeInfo(Buffer.from('0000' + '0000000040000000' + '0183', 'hex'))).toEqual({type: 'export', size: 2 ** 30, flags: 0x183});
    expect(decodeInfo(Buffer.from('0003' + '00000200' + '00001000' + '02000000', 'hex'))).toEqual({
      type: 'blockSize',
      blockSize: {minimum: 512, preferred: 4096, maximum: 32 * 1024 * 1024},
    });
    expect(decodeInfo(Buffer.from('0002', 'hex'))).toEqual({type: 'other', infoType: 2});
    expect(() => decodeInfo(Buffer.from('0000' + '00', 'hex'))).toThrow(NbdProtocolError);
  });

  it('decodes block status and error chunks', () => {
    expect(decodeBlockStatus(Buffer.from('00000001' + '00010000' + '00000003' + '00000200' + '00000000', 'hex'))).toEqual({
      contextId: 1,
      entries: [
        {length: 65536, flags: 3},
        {length: 512, flags: 0},
      ],
    });
    expect(() => decodeBlockStatus(Buffer.from('00000001' + '0001', 'hex'))).toThrow(NbdProtocolError);
    const msg = Buffer.from('bad sector');
    const chunk = Buffer.concat([Buffer.from('00000005', 'hex'), Buffer.from([0, msg.length]), msg, Buffer.from('0000000000100000', 'hex')]);
    expect(decodeErrorChunk(32770, chunk)).toEqual({errno: 5, message: 'bad sector', offset: 0x100000});
    expect(decodeErrorChunk(32769, chunk.subarray(0, 6 + msg.length))).toEqual({errno: 5, message: 'bad sector'});
    expect(describeErrno(28)).toEqual({name: 'ENOSPC', text: 'no space left on device'});
    expect(describeErrno(999).name).toBe('errno 999');
  });
});
