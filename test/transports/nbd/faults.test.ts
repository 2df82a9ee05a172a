/**
 * Faults: server error replies (nbdkit error filter), a server killed mid-read, a stream cut in
 * the middle of a READ payload, unknown exports, missing bitmaps, non-NBD peers, timeouts.
 * Each must end in a clear error, never a hang or an unhandled rejection.
 */
import {randomBytes} from 'node:crypto';
import {rm, writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ExitCode, UserError} from '../../../src/util/errors.js';
import {NbdClient, NbdServerError, StateFlag} from '../../../src/transports/nbd/index.js';
import {qemuImg, qemuIo, startNbdkit, startQemuNbd, tempDir, type RunningServer} from './servers.js';

const MiB = 1024 * 1024;

let t: Awaited<ReturnType<typeof tempDir>>;
let qemu: RunningServer;
let image: string;

beforeAll(async () => {
  t = await tempDir();
  image = path.join(t.dir, 'd.qcow2');
  await qemuImg('create', '-f', 'qcow2', image, '16M');
  await qemuIo(image, 'qcow2', 'write -P 0x5a 0 8M');
  qemu = await startQemuNbd({image, socketPath: path.join(t.dir, 'q.sock'), readOnly: true, exportName: 'disk0'});
});

afterAll(async () => {
  await qemu?.stop();
  await t?.remove();
});

/** A unix-socket server for misbehaving peers. */
async function fakeServer(sock: string, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const srv = net.createServer(onConnection);
  await new Promise<void>((resolve) => srv.listen(sock, resolve));
  return srv;
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('nbdkit memory plugin', () => {
  it('round-trips writes, zeroes, trims and block status', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'mem.sock'), ['memory', '1G']);
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: '', metaContexts: ['base:allocation']});
      expect(c.size).toBe(1024 * MiB);
      expect(c.readOnly).toBe(false);
      const data = randomBytes(3 * MiB);
      await c.write(100 * MiB, data);
      await c.writeZeroes(101 * MiB, 64 * 1024);
      await c.trim(102 * MiB, 1 * MiB);
      await c.flush();
      const back = await c.read(100 * MiB, 3 * MiB);
      const expected = Buffer.from(data);
      expected.fill(0, 1 * MiB, 1 * MiB + 64 * 1024);
      expected.fill(0, 2 * MiB, 3 * MiB);
      expect(back.equals(expected)).toBe(true);
      const entries = await c.blockStatus(0, c.size, 'base:allocation');
      expect(entries[0]).toMatchObject({offset: 0, length: 100 * MiB});
      expect(entries[0]!.flags & StateFlag.zero).toBeTruthy();
      expect(entries.find((e) => e.offset === 100 * MiB)!.flags & StateFlag.zero).toBe(0);
      await c.close();
    } finally {
      await srv.stop();
    }
  });
});

describe('server error replies (nbdkit error filter)', () => {
  it('names the errno and the request, and the connection stays usable', async () => {
    const readFlag = path.join(t.dir, 'inject-read');
    const writeFlag = path.join(t.dir, 'inject-write');
    const srv = await startNbdkit(
      path.join(t.dir, 'err.sock'),
      ['memory', '64M', 'error-pread=EIO', 'error-pread-rate=100%', `error-pread-file=${readFlag}`, 'error-pwrite=ENOSPC', 'error-pwrite-rate=100%', `error-pwrite-file=${writeFlag}`],
      ['error'],
    );
    const c = await NbdClient.connect({address: srv.address, exportName: ''});
    try {
      await c.write(0, Buffer.alloc(8192, 1));
      await writeFile(readFlag, '');
      const err = await caught(c.read(4096, 8192));
      expect(err).toBeInstanceOf(NbdServerError);
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/READ at offset 4096 \(length 8192\).*EIO \(input\/output error\)/);
      expect((err as NbdServerError).errnoName).toBe('EIO');
      expect((err as UserError).exitCode).toBe(ExitCode.platformFailed);
      await rm(readFlag);
      expect((await c.read(0, 8192)).equals(Buffer.alloc(8192, 1))).toBe(true);

      await writeFile(writeFlag, '');
      const werr = await caught(c.write(1 * MiB, Buffer.alloc(4096, 2)));
      expect(werr.message).toMatch(/WRITE at offset 1048576 \(length 4096\).*ENOSPC/);
      expect((werr as UserError).exitCode).toBe(ExitCode.noSpace);
      await rm(writeFlag);
      await c.write(1 * MiB, Buffer.alloc(4096, 2));
    } finally {
      await c.close();
      await srv.stop();
    }
  });
});

describe('connection lost', () => {
  it('rejects every pending request when the server is killed mid-read, and later calls at once', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'slow.sock'), ['memory', '64M', 'delay-read=30'], ['delay']);
    const c = await NbdClient.connect({address: srv.address, exportName: ''});
    const reads = [c.read(0, 4096), c.read(1 * MiB, 65536), c.read(2 * MiB, 40 * MiB)];
    const settled = Promise.allSettled(reads);
    await new Promise((r) => setTimeout(r, 300)); // let the requests reach the server
    srv.process.kill('SIGKILL');
    const results = await settled;
    const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'resolved'));
    expect(messages[0]).toMatch(/NBD server closed the connection during READ at offset 0 \(length 4096\)/);
    expect(messages[1]).toMatch(/during READ at offset 1048576 \(length 65536\)/);
    // The 40 MiB read was split; the first failing piece names its own range.
    expect(messages[2]).toMatch(/during READ at offset \d+ \(length \d+\)/);
    for (const r of results) expect(((r as PromiseRejectedResult).reason as UserError).exitCode).toBe(ExitCode.unreachable);
    await expect(c.read(0, 4096)).rejects.toThrow(/closed the connection during READ at offset 0/);
    await c.close();
    await srv.stop();
  });

  it('gives up on a server that stops answering (idle timeout) instead of hanging', async () => {
    const srv = await startNbdkit(path.join(t.dir, 'stall.sock'), ['memory', '64M', 'delay-read=60'], ['delay']);
    try {
      const c = await NbdClient.connect({address: srv.address, exportName: '', idleTimeoutMs: 300});
      // Idle with nothing outstanding is fine: the connection stays up.
      await new Promise((r) => setTimeout(r, 400));
      await c.write(0, Buffer.alloc(4096, 9));
      const err = await caught(c.read(0, 4096));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/sent nothing for 300 ms while READ at offset 0 \(length 4096\) waited for an answer/);
      expect((err as UserError).exitCode).toBe(ExitCode.unreachable);
      await expect(c.read(0, 4096)).rejects.toThrow(/sent nothing for 300 ms while a request waited for an answer; the connection was closed/);
      await c.close();
    } finally {
      await srv.stop();
    }
  });

  it('rejects a READ whose payload is cut off mid-stream', async () => {
    // A proxy that forwards to qemu-nbd and cuts the server's side after a byte budget.
    const sock = path.join(t.dir, 'cut.sock');
    const budget = 512 * 1024;
    const proxy = await fakeServer(sock, (client) => {
      const upstream = net.connect({path: (qemu.address as {socketPath: string}).socketPath});
      let sent = 0;
      upstream.on('data', (chunk: Buffer) => {
        const room = budget - sent;
        if (chunk.length >= room) {
          client.write(chunk.subarray(0, room));
          upstream.destroy();
          client.destroy();
        } else client.write(chunk);
        sent += chunk.length;
      });
      client.on('data', (d) => upstream.write(d));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    try {
      const c = await NbdClient.connect({address: {socketPath: sock}, exportName: 'disk0'});
      const err = await caught(c.read(0, 4 * MiB));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/NBD server closed the connection during READ at offset 0 \(length 4194304\)/);
      await c.close();
    } finally {
      proxy.close();
    }
  });
});

describe('negotiation errors', () => {
  it('an unknown export name is a UserError naming the export', async () => {
    for (const metaContexts of [[], ['base:allocation']]) {
      const err = await caught(NbdClient.connect({address: qemu.address, exportName: 'no-such-disk', metaContexts}));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/NBD export 'no-such-disk' does not exist/);
      expect((err as UserError).exitCode).toBe(ExitCode.notFound);
      expect((err as UserError).hint).toBeTruthy();
    }
  });

  it('a dirty bitmap the export does not offer is named', async () => {
    const err = await caught(NbdClient.connect({address: qemu.address, exportName: 'disk0', metaContexts: ['base:allocation', 'qemu:dirty-bitmap:backup-vda']}));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/does not offer 'qemu:dirty-bitmap:backup-vda'/);
    expect((err as UserError).hint).toMatch(/bitmap/);
  });

  it('a missing socket, a non-NBD peer, a silent peer and a peer that hangs up are clear errors', async () => {
    const missing = await caught(NbdClient.connect({address: {socketPath: path.join(t.dir, 'nope.sock')}, exportName: ''}));
    expect(missing.message).toMatch(/Cannot connect to the NBD server at unix socket .*nope\.sock \(ENOENT\)/);
    expect((missing as UserError).exitCode).toBe(ExitCode.unreachable);

    const http = await fakeServer(path.join(t.dir, 'http.sock'), (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const notNbd = await caught(NbdClient.connect({address: {socketPath: path.join(t.dir, 'http.sock')}, exportName: ''}));
    expect(notNbd.message).toMatch(/is not an NBD server|closed the connection during the handshake/);
    http.close();

    const held: net.Socket[] = [];
    const silent = await fakeServer(path.join(t.dir, 'silent.sock'), (s) => held.push(s));
    const timedOut = await caught(NbdClient.connect({address: {socketPath: path.join(t.dir, 'silent.sock')}, exportName: '', timeoutMs: 200}));
    expect(timedOut.message).toMatch(/did not finish the handshake within 200 ms/);
    held.forEach((s) => s.destroy());
    silent.close();

    const hangup = await fakeServer(path.join(t.dir, 'hangup.sock'), (s) => s.destroy());
    const hung = await caught(NbdClient.connect({address: {socketPath: path.join(t.dir, 'hangup.sock')}, exportName: 'vda'}));
    expect(hung.message).toMatch(/closed the connection during the handshake for export 'vda'/);
    hangup.close();
  });
});

describe('misuse', () => {
  it('writing a read-only export, reading past the end and an unknown context are refused before sending', async () => {
    const c = await NbdClient.connect({address: qemu.address, exportName: 'disk0'});
    try {
      const ro = await caught(c.write(0, Buffer.alloc(512)));
      expect(ro).toBeInstanceOf(UserError);
      expect(ro.message).toMatch(/export 'disk0' .* is read-only/);
      await expect(c.read(c.size - 10, 11)).rejects.toThrow(RangeError);
      await expect(c.blockStatus(0, 4096, 'base:allocation')).rejects.toThrow(/not negotiated/);
      // Still usable afterwards.
      expect((await c.read(0, 4)).equals(Buffer.alloc(4, 0x5a))).toBe(true);
    } finally {
      await c.close();
    }
  });
});
