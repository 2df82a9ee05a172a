/**
 * The NBD server (src/transports/nbd/server.ts) serving a restore point's disk straight from a
 * real repository, read by the real clients: nbdinfo and nbdcopy (libnbd), qemu-img (QEMU's NBD
 * client). What is checked: the export's size and flags, extents (zeros known from the index),
 * bit-identical copies, that a copy skips the zeros (bytes of data actually sent), several
 * connections at once, TLS required on TCP, and hostile clients (a huge option, a read past the
 * end, garbage) that end their own connection only.
 */
import {execa} from 'execa';
import {createConnection} from 'node:net';
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {NbdServer} from '../../../src/transports/nbd/server.js';
import {Command, Info, Option, encodeGo, encodeOption, encodeRequest} from '../../../src/transports/nbd/protocol.js';
import {createRepository, type DiskReader} from '../../../src/repository/index.js';
import {makeSimTls} from '../../ovirt-sim/tls.js';
import {backupImage, pseudoRandom, scratch, textLike} from '../../repository/helpers.js';

const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => Promise<void>;
let image: Buffer;
let reader: DiskReader;
let server: NbdServer;
let sock: string;
let dataSent = 0;

/** 64 MiB: 8 MiB random, 32 MiB zeros, 8 MiB text, 16 MiB zeros (zeros are not stored). */
function makeImage(): Buffer {
  const b = Buffer.alloc(64 * MiB);
  pseudoRandom(8 * MiB, 1).copy(b, 0);
  textLike(8 * MiB, 2).copy(b, 40 * MiB);
  return b;
}

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-nbd-server-'));
  image = makeImage();
  const repo = await createRepository(join(dir, 'repo'));
  const point = await backupImage(repo, image);
  reader = await (await repo.openRestorePoint(point.id)).openDisk('vda');
  // Counts the bytes of data read from the repository for the clients.
  const counted = {
    size: reader.size,
    extents: (o: number, l: number) => reader.extents(o, l),
    prefetch: (o: number, l: number) => reader.prefetch(o, l),
    read: async (o: number, l: number, into: Buffer) => {
      dataSent += l;
      return reader.read(o, l, into);
    },
  };
  server = new NbdServer({exports: [{name: 'vda', description: 'web 01 vda', source: counted, preferredBlockSize: MiB}]});
  sock = join(dir, 'nbd.sock');
  await server.listenUnix(sock);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await cleanup?.();
});

const uri = () => `nbd+unix:///vda?socket=${sock}`;

describe('NBD server, read by libnbd and QEMU', () => {
  it('nbdinfo: size, read-only, multi-conn, structured replies, and the zeros as holes', async () => {
    const info = JSON.parse((await execa('nbdinfo', ['--json', uri()])).stdout);
    const e = info.exports[0];
    expect(e['export-size']).toBe(64 * MiB);
    expect(e['is_read_only']).toBe(true);
    expect(e['can_multi_conn']).toBe(true);
    expect(info['protocol']).toBe('newstyle-fixed');
    expect(e['block_size_preferred']).toBe(MiB);
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    const map = JSON.parse((await execa('nbdinfo', ['--map', '--json', uri()])).stdout) as {offset: number; length: number; type: number}[];
    expect(map.map((m) => [m.offset / MiB, m.length / MiB, m.type])).toEqual([
      [0, 8, 0],
      [8, 32, 3],
      [40, 8, 0],
      [48, 16, 3],
    ]);
    // LIST names the export.
    expect((await execa('nbdinfo', ['--list', '--json', `nbd+unix://?socket=${sock}`])).stdout).toContain('"export-name": "vda"');
  });

  it('nbdcopy and qemu-img copy it bit for bit, reading only the data', async () => {
    dataSent = 0;
    const a = join(dir, 'nbdcopy.raw');
    await execa('nbdcopy', ['--connections=4', uri(), a]);
    expect((await readFile(a)).equals(image)).toBe(true);
    // Only the 16 MiB of data crossed the socket; the zeros came as holes and block status.
    expect(dataSent).toBe(16 * MiB);
    dataSent = 0;
    const b = join(dir, 'qemu.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', uri(), b]);
    const cmp = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', join(dir, 'nbdcopy.raw'), b], {reject: false});
    expect(cmp.exitCode, cmp.stdout).toBe(0);
    expect(dataSent).toBeLessThanOrEqual(16 * MiB);
    // The qcow2 holds the data only.
    const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', b])).stdout) as {length: number; data: boolean}[];
    expect(map.filter((m) => m.data).reduce((n, m) => n + m.length, 0)).toBe(16 * MiB);
  });

  it('a write is refused (read-only), and so is a read past the end, without ending the server', async () => {
    const io = await execa('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', uri()], {reject: false, all: true});
    expect(io.all).toMatch(/read-only|Operation not permitted|Permission denied/i);
    const c = await rawClient();
    await c.go('vda');
    c.send(encodeRequest({flags: 0, type: Command.read, cookie: 7n, offset: 64 * MiB - 512, length: 4096}));
    const reply = await c.read(16);
    expect(reply.readUInt32BE(4)).toBe(22); // EINVAL (simple reply: no structured replies asked)
    c.send(encodeRequest({flags: 0, type: Command.read, cookie: 8n, offset: 0, length: 4096}));
    const ok = await c.read(16 + 4096);
    expect(ok.readUInt32BE(4)).toBe(0);
    expect(ok.subarray(16).equals(image.subarray(0, 4096))).toBe(true);
    c.end();
    expect((await execa('nbdinfo', ['--size', uri()])).stdout.trim()).toBe(String(64 * MiB));
  });

  it('hostile clients end their own connection only: a huge option, garbage, an unknown export', async () => {
    const huge = await rawClient();
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(0x49484156454f5054n, 0);
    head.writeUInt32BE(Option.go, 8);
    head.writeUInt32BE(0xfffffff0, 12);
    huge.send(head);
    await huge.closed;
    const junk = await rawClient();
    junk.send(Buffer.alloc(4096, 0x41));
    await junk.closed;
    const unknown = await rawClient();
    unknown.send(encodeOption(Option.go, encodeGo('../../etc/passwd', [Info.blockSize])));
    const rep = await unknown.read(20);
    expect(rep.readUInt32BE(12) >>> 0).toBe(0x80000006); // NBD_REP_ERR_UNKNOWN
    unknown.end();
    expect((await execa('nbdinfo', ['--size', uri()])).stdout.trim()).toBe(String(64 * MiB));
  });

  it('on TCP with TLS: a client with the CA reads it, one without TLS is refused', async () => {
    const tls = await makeSimTls();
    const tlsServer = new NbdServer({exports: [{name: 'vda', source: reader}], tls: {certPem: tls.certPem, keyPem: tls.keyPem}});
    const port = await tlsServer.listenTcp('127.0.0.1', 0);
    try {
      const certs = join(dir, 'tls');
      await mkdir(certs, {recursive: true});
      await writeFile(join(certs, 'ca-cert.pem'), tls.caPem);
      const size = await execa('nbdinfo', ['--size', `nbds://127.0.0.1:${port}/vda?tls-certificates=${certs}`], {all: true, reject: false});
      expect(size.exitCode, size.all).toBe(0);
      expect(size.stdout.trim()).toBe(String(64 * MiB));
      const out = join(dir, 'tls.raw');
      await execa('nbdcopy', [`nbds://127.0.0.1:${port}/vda?tls-certificates=${certs}`, out]);
      expect((await readFile(out)).equals(image)).toBe(true);
      const plain = await execa('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/vda`], {reject: false, all: true});
      expect(plain.exitCode).not.toBe(0);
      expect(plain.all).toMatch(/TLS/i);
    } finally {
      await tlsServer.close();
    }
  });
});

/** A client that speaks bytes: the greeting, fixed newstyle, then whatever the test sends. */
async function rawClient() {
  const s = createConnection(sock);
  const chunks: Buffer[] = [];
  let have = 0;
  let waiter: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    have += d.length;
    waiter?.();
  });
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => undefined);
  const read = async (n: number): Promise<Buffer> => {
    while (have < n) {
      await Promise.race([new Promise<void>((r) => (waiter = r)), closed.then(() => Promise.reject(new Error('closed')))]);
    }
    const all = Buffer.concat(chunks);
    chunks.length = 0;
    chunks.push(all.subarray(n));
    have -= n;
    return all.subarray(0, n);
  };
  await read(18);
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(3, 0); // fixed newstyle, no zeroes
  s.write(flags);
  return {
    send: (b: Buffer) => s.write(b),
    read,
    closed,
    end: () => s.end(),
    async go(name: string) {
      s.write(encodeOption(Option.go, encodeGo(name, [])));
      for (;;) {
        const h = await read(20);
        const len = h.readUInt32BE(16);
        await read(len);
        if (h.readUInt32BE(12) === 1) return;
      }
    },
  };
}
