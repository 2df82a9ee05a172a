/**
 * The worker: the program the appliance deploys onto a KVM host (deploy.ts) and starts over its
 * SSH connection, to read a disk next to it and send only what the repository lacks.
 *
 * It speaks only on its stdin/stdout, the SSH session the appliance opened (protocol.ts): no
 * port, no file written, nothing kept between runs. It reads exports on unix sockets of the host
 * (libvirt's backup job, a read-only qemu-nbd) with the same NBD client as the appliance, cuts the
 * data into the repository's chunks, hashes each (SHA-256, or the HMAC of an encrypted
 * repository with the id key the appliance sent in `hello`), sends the ids, and packs (LZ4) and
 * sends only the chunks the appliance asks for. The repository, its locks and the commit stay on
 * the appliance, which checks every chunk it receives against its id.
 *
 * It exits when its stdin ends (the appliance closed the session, or the connection died), on
 * `bye`, and on SIGHUP/SIGTERM: nothing of it runs while the appliance does not need it.
 */
import {createHash, createHmac} from 'node:crypto';
import {NbdPool} from '../transports/nbd/pool.js';
import {exposeGc} from '../util/expose-gc.js';
import {packData} from '../util/lz4-pack.js';
import {decodeIndexes, encodeFrame, FrameReader, MAX_FRAME, PROTOCOL_VERSION, ProtocolError, str, uint, type Frame} from './protocol.js';

/** Reads to QEMU as the appliance's own NBD source makes them (platforms/libvirt/nbd-disk-source.ts). */
const CONNECTIONS = 4;
const IN_FLIGHT_PER_CONNECTION = 4;
const REQUEST_SIZE = 512 * 1024;
const MAX_READ = 64 << 20;

interface HeldRead {
  data: Buffer;
  chunkSize: number;
  /** The pooled buffer `data` lies in, returned once the read is fetched. */
  buffer: Buffer;
}

interface Disk {
  pool: NbdPool;
  held: Map<number, HeldRead>;
  /** Read buffers of POOLED_READ bytes, reused: the appliance keeps a few reads in flight per disk. */
  free: Buffer[];
}

const POOLED_READ = 8 << 20;

let mac: Buffer | undefined;
const disks = new Map<number, Disk>();
const zeroBuffers = new Map<number, Buffer>();

let writing: Promise<void> = Promise.resolve();

/**
 * Writes a frame in order; resolves once stdout has written it out (the write callback of its
 * last part): back-pressure, and a raw payload (a view of a read buffer) is no longer needed then.
 */
function send(header: Frame['header'], body?: Uint8Array): Promise<void> {
  writing = writing.then(
    () =>
      new Promise<void>((resolve, reject) => {
        const parts = encodeFrame(header, body);
        parts.forEach((p, i) => process.stdout.write(p, i === parts.length - 1 ? (err) => (err ? reject(err) : resolve()) : undefined));
      }),
  );
  return writing;
}

function zeros(n: number): Buffer {
  let z = zeroBuffers.get(n);
  if (!z) {
    z = Buffer.alloc(n);
    zeroBuffers.set(n, z);
  }
  return z;
}

function chunkId(data: Buffer): Buffer {
  return mac ? createHmac('sha256', mac).update(data).digest() : createHash('sha256').update(data).digest();
}

/**
 * lz4-napi's output is memory V8 does not see, freed only after a GC that V8 does not start for
 * it (repository/chunk-worker.ts measured the same): a minor GC after every 8 MiB of output keeps
 * the worker's RSS flat on the host.
 */
const collect = exposeGc();
let packedSinceGc = 0;

/** Packed as a chunk file packs it (util/lz4-pack.ts); the appliance accepts LZ4 or raw. */
function pack(plain: Buffer): {flags: number; payload: Buffer} {
  const packed = packData(plain);
  if (packed.flags !== 0) packedSinceGc += packed.payload.length;
  return packed;
}

function diskOf(h: Frame['header']): {n: number; disk: Disk} {
  const n = uint(h, 'disk');
  const disk = disks.get(n);
  if (!disk) throw new ProtocolError(`disk ${n} is not open`);
  return {n, disk};
}

async function handle(frame: Frame): Promise<void> {
  const h = frame.header;
  switch (h.t) {
    case 'hello': {
      if (h.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`protocol ${String(h.protocol)} asked for, this worker speaks ${PROTOCOL_VERSION}`);
      mac = typeof h.mac === 'string' ? Buffer.from(h.mac, 'base64') : undefined;
      await send({t: 'hello', protocol: PROTOCOL_VERSION, pid: process.pid, node: process.version});
      return;
    }
    case 'open': {
      const n = uint(h, 'disk');
      if (disks.has(n)) throw new ProtocolError(`disk ${n} is open already`);
      const pool = await NbdPool.open({
        address: {socketPath: str(h, 'socket')},
        exportName: str(h, 'export'),
        metaContexts: [],
        connections: CONNECTIONS,
        maxInFlight: IN_FLIGHT_PER_CONNECTION,
        requestSize: REQUEST_SIZE,
      });
      disks.set(n, {pool, held: new Map(), free: []});
      await send({t: 'opened', disk: n, size: pool.size});
      return;
    }
    case 'read': {
      const {n, disk} = diskOf(h);
      const seq = uint(h, 'seq');
      const offset = uint(h, 'offset');
      const length = uint(h, 'length');
      const chunkSize = uint(h, 'chunkSize');
      if (length === 0 || length > MAX_READ || offset + length > disk.pool.size || chunkSize === 0 || chunkSize > MAX_READ) {
        throw new ProtocolError(`a read of ${length} bytes at ${offset} (chunk size ${chunkSize}) on a disk of ${disk.pool.size}`);
      }
      const buffer = length <= POOLED_READ ? (disk.free.pop() ?? Buffer.allocUnsafeSlow(POOLED_READ)) : Buffer.allocUnsafeSlow(length);
      const data = await disk.pool.read(offset, length, buffer);
      const count = Math.ceil(length / chunkSize);
      const ids = Buffer.alloc(count * 32);
      for (let i = 0; i < count; i++) {
        const plain = data.subarray(i * chunkSize, Math.min((i + 1) * chunkSize, length));
        if (!plain.equals(zeros(plain.length))) chunkId(plain).copy(ids, i * 32);
      }
      disk.held.set(seq, {data: data.subarray(0, length), chunkSize, buffer});
      await send({t: 'ids', disk: n, seq}, ids);
      return;
    }
    case 'need': {
      const {n, disk} = diskOf(h);
      const seq = uint(h, 'seq');
      const held = disk.held.get(seq);
      if (!held) throw new ProtocolError(`no read ${seq} is held on disk ${n}`);
      disk.held.delete(seq);
      const count = Math.ceil(held.data.length / held.chunkSize);
      for (const index of decodeIndexes(frame.body)) {
        if (index >= count) throw new ProtocolError(`chunk ${index} asked for, read ${seq} has ${count}`);
        const plain = held.data.subarray(index * held.chunkSize, Math.min((index + 1) * held.chunkSize, held.data.length));
        const {flags, payload} = pack(plain);
        await send({t: 'chunk', disk: n, seq, index, flags, plain: plain.length}, payload);
      }
      await send({t: 'done', disk: n, seq});
      // Every frame of this read is written out (send resolves then): the buffer may be read into again.
      if (held.buffer.length === POOLED_READ) disk.free.push(held.buffer);
      if (collect && packedSinceGc >= 8 << 20) {
        packedSinceGc = 0;
        collect({type: 'minor'});
      }
      return;
    }
    case 'close': {
      const {n, disk} = diskOf(h);
      disks.delete(n);
      await disk.pool.close();
      await send({t: 'closed', disk: n});
      return;
    }
    case 'stats': {
      const cpu = process.cpuUsage();
      await send({t: 'stats', cpuUserUs: cpu.user, cpuSystemUs: cpu.system, maxRssKiB: process.resourceUsage().maxRSS});
      return;
    }
    case 'bye':
      await writing;
      process.exit(0);
      return;
    default:
      throw new ProtocolError(`unknown message "${h.t}"`);
  }
}

/** Messages run one after another per disk; different disks run side by side. */
const lanes = new Map<string, Promise<void>>();

function dispatch(frame: Frame): void {
  const key = typeof frame.header.disk === 'number' ? `d${frame.header.disk}` : 'control';
  const prev = lanes.get(key) ?? Promise.resolve();
  // Reads of a disk may overlap (the appliance keeps several open): only opens and closes are ordered.
  const ordered = frame.header.t === 'open' || frame.header.t === 'close' || key === 'control';
  const run = (ordered ? prev : Promise.resolve()).then(() => handle(frame));
  const tail = run.catch((err: unknown) => {
    const fatal = err instanceof ProtocolError;
    const message = err instanceof Error ? err.message : String(err);
    return send({t: 'error', ...(typeof frame.header.disk === 'number' ? {disk: frame.header.disk} : {}), ...(typeof frame.header.seq === 'number' ? {seq: frame.header.seq} : {}), message, fatal}).then(() => {
      if (fatal) process.exit(3);
    });
  });
  lanes.set(key, ordered ? tail : Promise.all([prev, tail]).then(() => undefined));
}

const reader = new FrameReader(dispatch, MAX_FRAME);
process.stdin.on('data', (data: Buffer) => {
  try {
    reader.push(data);
  } catch (err) {
    void send({t: 'error', message: (err as Error).message, fatal: true}).finally(() => process.exit(3));
  }
});
process.stdin.on('end', () => process.exit(0));
for (const sig of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
