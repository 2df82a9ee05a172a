/**
 * Fixed-newstyle NBD negotiation, from the server greeting to NBD_OPT_GO's ACK.
 *
 * Order (docs/reference/libvirt-backup.md §5.1): STARTTLS first when TLS is wanted (it wipes
 * any earlier state), then STRUCTURED_REPLY, SET_META_CONTEXT with the wanted contexts, and GO
 * with NBD_INFO_BLOCK_SIZE. One option at a time, each read to its final reply. Every context
 * asked for must come back, or negotiation fails naming the missing one: a backup that silently
 * lost its dirty bitmap would read the wrong blocks.
 */
import type {Duplex} from 'node:stream';
import {UserError, ExitCode} from '../../util/errors.js';
import type {ByteReader} from './byte-reader.js';
import {optionError, type NbdAddress, describeAddress} from './errors.js';
import {
  ClientFlag,
  HandshakeFlag,
  IHAVEOPT,
  Info,
  MAX_PAYLOAD_DEFAULT,
  NBDMAGIC,
  NbdProtocolError,
  OPTION_REPLY_ERROR_BIT,
  OPTION_REPLY_MAGIC,
  Option,
  OptionReply,
  REP_ERR_POLICY,
  REP_ERR_UNSUP,
  decodeInfo,
  decodeMetaContext,
  encodeGo,
  encodeMetaContextQuery,
  encodeOption,
  type BlockSize,
} from './protocol.js';

export interface NegotiatedExport {
  size: number;
  exportFlags: number;
  blockSize: BlockSize;
  /** True when the server advertised NBD_INFO_BLOCK_SIZE (otherwise blockSize holds defaults). */
  blockSizeAdvertised: boolean;
  structuredReplies: boolean;
  metaContexts: Map<string, number>;
}

export interface HandshakeChannel {
  reader: ByteReader;
  write(data: Buffer): void;
  /** Performs the TLS handshake over the raw socket and returns the secure stream. */
  startTls?: () => Promise<Duplex>;
}

interface OptionReplyMsg {
  type: number;
  data: Buffer;
}

const OPTION_NAMES: Record<number, string> = {
  [Option.startTls]: 'NBD_OPT_STARTTLS',
  [Option.structuredReply]: 'NBD_OPT_STRUCTURED_REPLY',
  [Option.setMetaContext]: 'NBD_OPT_SET_META_CONTEXT',
  [Option.go]: 'NBD_OPT_GO',
};

async function readOptionReply(reader: ByteReader, option: number): Promise<OptionReplyMsg> {
  const head = await reader.readExact(20);
  if (head.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new NbdProtocolError('bad option reply magic');
  const replyOption = head.readUInt32BE(8);
  if (replyOption !== option) throw new NbdProtocolError(`reply for option ${replyOption} while waiting for ${option}`);
  const type = head.readUInt32BE(12);
  const length = head.readUInt32BE(16);
  if (length > 16 * 1024 * 1024) throw new NbdProtocolError(`option reply of ${length} bytes`);
  return {type, data: await reader.readExact(length)};
}

function isError(reply: OptionReplyMsg): boolean {
  return (reply.type & OPTION_REPLY_ERROR_BIT) !== 0;
}

export async function negotiate(
  channel: HandshakeChannel,
  opts: {exportName: string; metaContexts: string[]; address: NbdAddress; tls: boolean},
): Promise<NegotiatedExport> {
  const {reader} = channel;
  const greeting = await reader.readExact(18);
  if (greeting.readBigUInt64BE(0) !== NBDMAGIC) {
    throw new UserError(`${describeAddress(opts.address)} is not an NBD server (no NBDMAGIC greeting)`, {
      hint: 'Check the socket path or host and port of the NBD export.',
      exitCode: ExitCode.unreachable,
    });
  }
  if (greeting.readBigUInt64BE(8) !== IHAVEOPT) {
    throw new UserError(`The NBD server at ${describeAddress(opts.address)} speaks the old-style protocol, which this client does not support`, {
      hint: 'Use QEMU 2.10 or later, or start qemu-nbd/nbdkit without --oldstyle.',
      exitCode: ExitCode.platformFailed,
    });
  }
  const serverFlags = greeting.readUInt16BE(16);
  if ((serverFlags & HandshakeFlag.fixedNewstyle) === 0) {
    throw new UserError(`The NBD server at ${describeAddress(opts.address)} does not support fixed newstyle negotiation`, {
      hint: 'Use a newer NBD server (QEMU 2.10 or later, nbdkit 1.x).',
      exitCode: ExitCode.platformFailed,
    });
  }
  const clientFlags = Buffer.allocUnsafe(4);
  clientFlags.writeUInt32BE(ClientFlag.fixedNewstyle | (serverFlags & HandshakeFlag.noZeroes ? ClientFlag.noZeroes : 0), 0);
  channel.write(clientFlags);

  const fail = (option: number, reply: OptionReplyMsg): never => {
    throw optionError({
      option: OPTION_NAMES[option] ?? `option ${option}`,
      reply: reply.type,
      serverMessage: reply.data.toString('utf8'),
      exportName: opts.exportName,
      address: opts.address,
    });
  };

  if (opts.tls) {
    channel.write(encodeOption(Option.startTls));
    const reply = await readOptionReply(reader, Option.startTls);
    if (isError(reply)) {
      // QEMU without --tls-creds answers POLICY ("TLS not configured"); others UNSUP.
      if (reply.type === REP_ERR_UNSUP || reply.type === REP_ERR_POLICY) {
        const said = reply.data.length > 0 ? `: ${reply.data.toString('utf8')}` : '';
        throw new UserError(`The NBD server at ${describeAddress(opts.address)} does not support TLS${said}`, {
          hint: 'Enable TLS on the server (qemu-nbd --tls-creds, libvirt backup <server tls="yes">) or connect without TLS.',
          exitCode: ExitCode.untrusted,
        });
      }
      fail(Option.startTls, reply);
    }
    if (reply.type !== OptionReply.ack) throw new NbdProtocolError(`unexpected reply ${reply.type} to STARTTLS`);
    if (!channel.startTls) throw new Error('TLS requested but the channel cannot start TLS');
    reader.detach();
    const secure = await channel.startTls();
    reader.attach(secure, true);
  }

  // Structured replies: needed for meta contexts and for sparse (OFFSET_HOLE) reads.
  channel.write(encodeOption(Option.structuredReply));
  let structuredReplies = false;
  {
    const reply = await readOptionReply(reader, Option.structuredReply);
    if (reply.type === OptionReply.ack) structuredReplies = true;
    else if (!isError(reply)) throw new NbdProtocolError(`unexpected reply ${reply.type} to STRUCTURED_REPLY`);
  }

  const metaContexts = new Map<string, number>();
  if (opts.metaContexts.length > 0) {
    if (!structuredReplies) {
      throw new UserError(`The NBD server at ${describeAddress(opts.address)} does not support structured replies, so it cannot report ${opts.metaContexts.join(', ')}`, {
        hint: 'Use QEMU 2.12 or later for block status and 3.0 or later for dirty bitmaps.',
        exitCode: ExitCode.platformFailed,
      });
    }
    channel.write(encodeOption(Option.setMetaContext, encodeMetaContextQuery(opts.exportName, opts.metaContexts)));
    for (;;) {
      const reply = await readOptionReply(reader, Option.setMetaContext);
      if (isError(reply)) fail(Option.setMetaContext, reply);
      if (reply.type === OptionReply.ack) break;
      if (reply.type === OptionReply.metaContext) {
        const {id, name} = decodeMetaContext(reply.data);
        metaContexts.set(name, id);
      }
    }
    const missing = opts.metaContexts.filter((c) => !metaContexts.has(c));
    if (missing.length > 0) {
      const bitmap = missing.some((c) => c.startsWith('qemu:dirty-bitmap:'));
      throw new UserError(`NBD export '${opts.exportName}' on ${describeAddress(opts.address)} does not offer ${missing.map((c) => `'${c}'`).join(', ')}`, {
        hint: bitmap
          ? 'The dirty bitmap is not exported: for a libvirt pull backup the context is qemu:dirty-bitmap:backup-<target> and needs an <incremental> checkpoint; for qemu-nbd pass --bitmap=<name>. Otherwise take a full backup.'
          : 'The server does not support this block-status context; use QEMU 2.12 or later.',
        exitCode: ExitCode.platformFailed,
      });
    }
  }

  channel.write(encodeOption(Option.go, encodeGo(opts.exportName, [Info.blockSize])));
  let size: number | undefined;
  let exportFlags = 0;
  let blockSize: BlockSize | undefined;
  for (;;) {
    const reply = await readOptionReply(reader, Option.go);
    if (isError(reply)) fail(Option.go, reply);
    if (reply.type === OptionReply.ack) break;
    if (reply.type === OptionReply.info) {
      const info = decodeInfo(reply.data);
      if (info.type === 'export') {
        size = info.size;
        exportFlags = info.flags;
      } else if (info.type === 'blockSize') {
        blockSize = info.blockSize;
      }
    }
  }
  if (size === undefined) throw new NbdProtocolError('NBD_OPT_GO finished without NBD_INFO_EXPORT');
  return {
    size,
    exportFlags,
    blockSize: blockSize ?? {minimum: 1, preferred: 4096, maximum: MAX_PAYLOAD_DEFAULT},
    blockSizeAdvertised: blockSize !== undefined,
    structuredReplies,
    metaContexts,
  };
}
