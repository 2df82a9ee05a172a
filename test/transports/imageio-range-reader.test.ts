/**
 * The imageio client's own ranged-GET reader (range-reader.ts) against an HTTPS server that
 * answers the ways a real server or a proxy in front of it might: keep-alive, chunked bodies,
 * bodies shorter or longer than asked for, a stall, a keep-alive connection dropped under us.
 * The simulator covers the well-behaved imageio (imageio.test.ts); this server covers the rest.
 */
import {createServer, type Server} from 'node:https';
import type {AddressInfo, Socket} from 'node:net';
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest';
import {ImageioClient, ImageioError} from '../../src/transports/imageio/imageio-client.js';
import {pattern} from '../ovirt-sim/index.js';
import {makeSimTls, type SimTls} from '../ovirt-sim/tls.js';

type Mode = 'ok' | 'chunked' | 'short' | 'whole' | 'stall' | 'drop-second';
const IMAGE = pattern(5, 4 * 2 ** 20);
let tls: SimTls;
let server: Server;
let base: string;
let mode: Mode = 'ok';
/** Connections the server accepted, and GETs per connection. */
let sockets: Socket[] = [];
const gets = new Map<Socket, number>();
let dropped = 0;

beforeAll(async () => {
  tls = await makeSimTls();
  server = createServer({cert: tls.certPem, key: tls.keyPem}, (req, res) => {
    if (req.method === 'OPTIONS') {
      const body = JSON.stringify({features: ['extents'], max_readers: 4, max_writers: 4});
      res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)});
      return void res.end(body);
    }
    const n = (gets.get(req.socket) ?? 0) + 1;
    gets.set(req.socket, n);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!;
    const [start, last] = [Number(m[1]), Number(m[2])];
    const data = IMAGE.subarray(start, last + 1);
    switch (mode) {
      case 'ok':
        res.writeHead(206, {'content-length': data.length, 'content-range': `bytes ${start}-${last}/${IMAGE.length}`});
        return void res.end(data);
      case 'chunked': // no Content-Length: node frames it chunked
        res.writeHead(206, {'content-range': `bytes ${start}-${last}/${IMAGE.length}`});
        res.write(data.subarray(0, 1000));
        return void res.end(data.subarray(1000));
      case 'short':
        res.writeHead(206, {'content-length': data.length - 1});
        return void res.end(data.subarray(1));
      case 'whole': // a server that ignores Range
        res.writeHead(200, {'content-length': IMAGE.length});
        return void res.end(IMAGE);
      case 'stall':
        res.writeHead(206, {'content-length': data.length});
        return void res.write(data.subarray(0, 10));
      case 'drop-second':
        if (n === 2 && dropped++ === 0) return void req.socket.destroy();
        res.writeHead(206, {'content-length': data.length});
        return void res.end(data);
    }
  });
  server.on('secureConnection', (s: Socket) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}/images/t1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  mode = 'ok';
  sockets = [];
  dropped = 0;
});

const open = (timeoutMs?: number) => ImageioClient.open({transferUrl: base, caPem: tls.caPem, maxConnections: 2, timeoutMs});
const path = 'own connections';

describe('imageio ranged reads on the client\'s own connections', () => {
  it('reads exact ranges into the given buffer, reusing keep-alive connections', async () => {
    const io = await open();
    const before = sockets.length; // OPTIONS went over undici's pool
    const into = Buffer.alloc(2 ** 20 + 10, 0xee);
    for (let i = 0; i < 6; i++) {
      const got = await io.read(i * 333_333, 2 ** 20, into);
      expect(got.equals(IMAGE.subarray(i * 333_333, i * 333_333 + 2 ** 20))).toBe(true);
    }
    expect(into.subarray(2 ** 20).every((b) => b === 0xee)).toBe(true);
    const pair = await Promise.all([io.read(0, 100), io.read(100, 100)]);
    expect(Buffer.concat(pair).equals(IMAGE.subarray(0, 200))).toBe(true);
    expect(sockets.length - before).toBe(2);
    expect(io.readPath).toBe(path);
    await io.close();
  });

  it('a chunked answer sends the reads back to the general HTTP client, with the right bytes', async () => {
    const io = await open();
    mode = 'chunked';
    expect((await io.read(4096, 300_000)).equals(IMAGE.subarray(4096, 304_096))).toBe(true);
    expect((await io.read(0, 10)).equals(IMAGE.subarray(0, 10))).toBe(true);
    expect(io.readPath).toBe('undici');
    await io.close();
  });

  it('a body shorter than asked for, or the whole image for a range, is an ImageioError', async () => {
    const io = await open();
    mode = 'short';
    const short = await io.read(0, 1000).catch((e) => e);
    expect(short).toBeInstanceOf(ImageioError);
    expect(short.message).toContain('sent 999 of 1000 bytes at offset 0');
    mode = 'whole';
    const whole = await io.read(0, 1000).catch((e) => e);
    expect(whole).toBeInstanceOf(ImageioError);
    expect(whole.message).toContain('sent more than the 1000 bytes asked for at 0');
    mode = 'ok';
    expect((await io.read(5, 5)).equals(IMAGE.subarray(5, 10))).toBe(true);
    await io.close();
  });

  it('a keep-alive connection dropped under a request is retried once on a new one', async () => {
    const io = await open();
    mode = 'drop-second';
    expect((await io.read(0, 1000)).equals(IMAGE.subarray(0, 1000))).toBe(true);
    expect((await io.read(1000, 1000)).equals(IMAGE.subarray(1000, 2000))).toBe(true);
    expect(dropped).toBe(1);
    await io.close();
  });

  it('a server that stops sending is a UserError naming the read, after the timeout', async () => {
    const io = await open(300);
    mode = 'stall';
    const err = await io.read(0, 1000).catch((e) => e);
    expect(err).toMatchObject({name: 'UserError', exitCode: 20});
    expect(err.message).toContain('stopped answering (GET bytes 0+1000)');
    expect(err.message).toContain('/images/<ticket>');
    expect(io.readPath).toBe(path);
    await io.close();
  });

  it('a certificate from another CA is refused on these connections too', async () => {
    const io = await open();
    // OPTIONS was answered with the right certificate; the reads' connections meet another CA's.
    const other = await makeSimTls();
    server.setSecureContext({cert: other.certPem, key: other.keyPem});
    try {
      const err = await io.read(0, 10).catch((e) => e);
      expect(err).toMatchObject({name: 'UserError', exitCode: 22});
      expect(err.message).toContain('not signed by the stored engine CA');
    } finally {
      server.setSecureContext({cert: tls.certPem, key: tls.keyPem});
      await io.close();
    }
  });
});
