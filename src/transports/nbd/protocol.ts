/**
 * The NBD wire protocol subset this client speaks: constants and pure encoders/decoders.
 *
 * Everything here is big-endian and side-effect free, so the byte layouts can be unit-tested
 * without a server. Values and layouts follow the upstream protocol document (NetworkBlockDevice
 * nbd doc/proto.md), summarised in docs/reference/libvirt-backup.md §5.
 */

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags sent by the server. */
export const HandshakeFlag = {fixedNewstyle: 1, noZeroes: 2} as const;
/** Client flags sent back. */
export const ClientFlag = {fixedNewstyle: 1, noZeroes: 2} as const;

export const Option = {
  exportName: 1,
  abort: 2,
  list: 3,
  startTls: 5,
  info: 6,
  go: 7,
  structuredReply: 8,
  listMetaContext: 9,
  setMetaContext: 10,
} as const;

export const OptionReply = {
  ack: 1,
  server: 2,
  info: 3,
  metaContext: 4,
} as const;

/** Option error replies have bit 31 set. */
export const OPTION_REPLY_ERROR_BIT = 0x80000000;
export const OptionReplyError: Record<number, string> = {
  [0x80000001]: 'NBD_REP_ERR_UNSUP',
  [0x80000002]: 'NBD_REP_ERR_POLICY',
  [0x80000003]: 'NBD_REP_ERR_INVALID',
  [0x80000004]: 'NBD_REP_ERR_PLATFORM',
  [0x80000005]: 'NBD_REP_ERR_TLS_REQD',
  [0x80000006]: 'NBD_REP_ERR_UNKNOWN',
  [0x80000007]: 'NBD_REP_ERR_SHUTDOWN',
  [0x80000008]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [0x80000009]: 'NBD_REP_ERR_TOO_BIG',
};
export const REP_ERR_UNSUP = 0x80000001;
export const REP_ERR_POLICY = 0x80000002;
export const REP_ERR_TLS_REQD = 0x80000005;
export const REP_ERR_UNKNOWN = 0x80000006;

export const Info = {export: 0, name: 1, description: 2, blockSize: 3} as const;

/** Transmission flags (NBD_INFO_EXPORT). */
export const TransmissionFlag = {
  hasFlags: 1 << 0,
  readOnly: 1 << 1,
  sendFlush: 1 << 2,
  sendFua: 1 << 3,
  rotational: 1 << 4,
  sendTrim: 1 << 5,
  sendWriteZeroes: 1 << 6,
  sendDf: 1 << 7,
  canMultiConn: 1 << 8,
  sendResize: 1 << 9,
  sendCache: 1 << 10,
  sendFastZero: 1 << 11,
  blockStatusPayload: 1 << 12,
} as const;

export const Command = {
  read: 0,
  write: 1,
  disc: 2,
  flush: 3,
  trim: 4,
  cache: 5,
  writeZeroes: 6,
  blockStatus: 7,
} as const;
export type CommandType = (typeof Command)[keyof typeof Command];

export const COMMAND_NAMES: Record<number, string> = {
  0: 'READ',
  1: 'WRITE',
  2: 'DISC',
  3: 'FLUSH',
  4: 'TRIM',
  5: 'CACHE',
  6: 'WRITE_ZEROES',
  7: 'BLOCK_STATUS',
};

export const CommandFlag = {fua: 1, noHole: 2, df: 4, reqOne: 8, fastZero: 16} as const;

export const ReplyType = {
  none: 0,
  offsetData: 1,
  offsetHole: 2,
  blockStatus: 5,
  error: 32769,
  errorOffset: 32770,
} as const;
export const REPLY_FLAG_DONE = 1;
export const REPLY_TYPE_ERROR_BIT = 0x8000;

/** Errno values on the wire, which are fixed by the protocol (not the host's numbering). */
export const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  5: 'EIO',
  12: 'ENOMEM',
  22: 'EINVAL',
  28: 'ENOSPC',
  75: 'EOVERFLOW',
  95: 'ENOTSUP',
  108: 'ESHUTDOWN',
};
const ERRNO_TEXT: Record<string, string> = {
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
  ENOMEM: 'out of memory',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left on device',
  EOVERFLOW: 'value too large',
  ENOTSUP: 'operation not supported',
  ESHUTDOWN: 'server is shutting down',
};

/** "EIO (input/output error)" for a wire errno; unknown numbers are named by value. */
export function describeErrno(errno: number): {name: string; text: string} {
  const name = ERRNO_NAMES[errno] ?? `errno ${errno}`;
  return {name, text: ERRNO_TEXT[name] ?? 'unknown error'};
}

/** Block status flags for base:allocation and qemu:dirty-bitmap:*. */
export const StateFlag = {hole: 1, zero: 2, dirty: 1} as const;

/** The interop-safe largest READ/WRITE payload, and QEMU's NBD_MAX_BUFFER_SIZE. */
export const MAX_PAYLOAD_DEFAULT = 32 * 1024 * 1024;

/** Bytes of a request header; a WRITE's payload follows it. */
export const REQUEST_HEADER_SIZE = 28;

export function encodeRequest(req: {
  flags: number;
  type: number;
  cookie: bigint;
  offset: number;
  length: number;
}): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(req.flags, 4);
  b.writeUInt16BE(req.type, 6);
  b.writeBigUInt64BE(req.cookie, 8);
  b.writeBigUInt64BE(BigInt(req.offset), 16);
  b.writeUInt32BE(req.length, 24);
  return b;
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.allocUnsafe(16);
  head.writeBigUInt64BE(IHAVEOPT, 0);
  head.writeUInt32BE(option, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

function lengthPrefixed(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  if (body.length > 4096) throw new RangeError(`NBD string longer than 4096 bytes: ${s.slice(0, 40)}…`);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

/** NBD_OPT_GO / NBD_OPT_INFO payload: the export name and the info types asked for. */
export function encodeGo(exportName: string, infos: number[]): Buffer {
  const tail = Buffer.allocUnsafe(2 + 2 * infos.length);
  tail.writeUInt16BE(infos.length, 0);
  infos.forEach((info, i) => tail.writeUInt16BE(info, 2 + 2 * i));
  return Buffer.concat([lengthPrefixed(exportName), tail]);
}

/** NBD_OPT_SET_META_CONTEXT / LIST_META_CONTEXT payload. */
export function encodeMetaContextQuery(exportName: string, queries: string[]): Buffer {
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(queries.length, 0);
  return Buffer.concat([lengthPrefixed(exportName), count, ...queries.map(lengthPrefixed)]);
}

export interface BlockSize {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** Decoded NBD_REP_INFO payloads that this client uses; others come back as 'other'. */
export type DecodedInfo =
  | {type: 'export'; size: number; flags: number}
  | {type: 'blockSize'; blockSize: BlockSize}
  | {type: 'other'; infoType: number};

export function decodeInfo(data: Buffer): DecodedInfo {
  if (data.length < 2) throw new NbdProtocolError('NBD_REP_INFO reply shorter than 2 bytes');
  const infoType = data.readUInt16BE(0);
  if (infoType === Info.export) {
    if (data.length !== 12) throw new NbdProtocolError(`NBD_INFO_EXPORT has length ${data.length}, expected 12`);
    const size = data.readBigUInt64BE(2);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdProtocolError(`export size ${size} is too large`);
    return {type: 'export', size: Number(size), flags: data.readUInt16BE(10)};
  }
  if (infoType === Info.blockSize) {
    if (data.length !== 14) throw new NbdProtocolError(`NBD_INFO_BLOCK_SIZE has length ${data.length}, expected 14`);
    return {
      type: 'blockSize',
      blockSize: {minimum: data.readUInt32BE(2), preferred: data.readUInt32BE(6), maximum: data.readUInt32BE(10)},
    };
  }
  return {type: 'other', infoType};
}

/** NBD_REP_META_CONTEXT payload: u32 id then the context name. */
export function decodeMetaContext(data: Buffer): {id: number; name: string} {
  if (data.length < 4) throw new NbdProtocolError('NBD_REP_META_CONTEXT reply shorter than 4 bytes');
  return {id: data.readUInt32BE(0), name: data.subarray(4).toString('utf8')};
}

/** A BLOCK_STATUS chunk payload: u32 context id then (u32 length, u32 flags) pairs. */
export function decodeBlockStatus(data: Buffer): {contextId: number; entries: {length: number; flags: number}[]} {
  if (data.length < 12 || (data.length - 4) % 8 !== 0) {
    throw new NbdProtocolError(`BLOCK_STATUS chunk has invalid length ${data.length}`);
  }
  const entries: {length: number; flags: number}[] = [];
  for (let p = 4; p < data.length; p += 8) {
    entries.push({length: data.readUInt32BE(p), flags: data.readUInt32BE(p + 4)});
  }
  return {contextId: data.readUInt32BE(0), entries};
}

/** An ERROR / ERROR_OFFSET chunk payload: u32 errno, u16 message length, message[, u64 offset]. */
export function decodeErrorChunk(type: number, data: Buffer): {errno: number; message: string; offset?: number} {
  if (data.length < 6) throw new NbdProtocolError(`error chunk has length ${data.length}, expected at least 6`);
  const errno = data.readUInt32BE(0);
  const msgLen = data.readUInt16BE(4);
  if (6 + msgLen > data.length) throw new NbdProtocolError('error chunk message runs past the chunk');
  const message = data.subarray(6, 6 + msgLen).toString('utf8');
  if (type === ReplyType.errorOffset && data.length >= 6 + msgLen + 8) {
    return {errno, message, offset: Number(data.readBigUInt64BE(6 + msgLen))};
  }
  return {errno, message};
}

/** The server broke the protocol: a bug on one side, not something the user can fix. */
export class NbdProtocolError extends Error {
  constructor(message: string) {
    super(`NBD protocol error: ${message}`);
    this.name = 'NbdProtocolError';
  }
}
