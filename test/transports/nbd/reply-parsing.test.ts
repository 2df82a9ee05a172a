/**
 * Reply handling that real servers here do not exercise on demand (scripted-server.ts): READ
 * chunks out of order with data and holes mixed, pipelined replies in reverse order, error
 * chunks with an offset, BLOCK_STATUS answered long, protocol violations, and the pool's
 * bound on requests in flight per connection.
 */
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {NbdClient, NbdPool, NbdProtocolError, NbdServerError} from '../../../src/transports/nbd/index.js';
import {startScriptedServer, u16, u32, u64} from './scripted-server.js';
import {tempDir} from './servers.js';

let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  t = await tempDir();
});
afterAll(async () => {
  await t?.remove();
});

/** The byte at offset o of the scripted disk. */
const byteAt = (o: number) => (o * 7 + 3) & 0xff;
function contentOf(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = byteAt(offset + i);
  return b;
}

describe('structured READ replies', () => {
  it('reassembles chunks by offset in any order, holes as zeros, and pipelined replies in reverse', async () => {
    const sock = path.join(t.dir, 'ooo.sock');
    const srv = await startScriptedServer(sock, {
      size: 1024 * 1024,
      onRequest: (_req, reply, batch) => {
        if (batch.length < 3) return; // hold until three requests are in, then answer backwards
        for (const req of batch.splice(0).reverse()) {
          const half = req.length / 2;
          const quarter = half / 2;
          // Last part first, then a hole in the first quarter, then the second quarter.
          reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset + half), contentOf(req.offset + half, half)]), false);
          reply.chunk(req.cookie, 2, Buffer.concat([u64(req.offset), u32(quarter)]), false);
          reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset + quarter), contentOf(req.offset + quarter, quarter)]), false);
          reply.chunk(req.cookie, 0, Buffer.alloc(0), true);
        }
      },
    });
    try {
      const c = await NbdClient.connect({address: {socketPath: sock}, exportName: 'x'});
      const expectAt = (offset: number, length: number) => {
        const e = contentOf(offset, length);
        e.fill(0, 0, length / 4);
        return e;
      };
      const into = Buffer.alloc(8192, 0xff); // the hole must overwrite stale bytes
      const [a, b, d] = await Promise.all([c.read(0, 4096), c.read(65536, 8192, into), c.read(4096, 16384)]);
      expect(a.equals(expectAt(0, 4096))).toBe(true);
      expect(b.equals(expectAt(65536, 8192))).toBe(true);
      expect(d.equals(expectAt(4096, 16384))).toBe(true);
      await c.close();
    } finally {
      await srv.close();
    }
  });

  it('an ERROR_OFFSET chunk fails only its request, naming the errno, the request and the offset', async () => {
    const sock = path.join(t.dir, 'err.sock');
    const srv = await startScriptedServer(sock, {
      size: 1024 * 1024,
      onRequest: (req, reply, batch) => {
        batch.splice(0);
        if (req.offset === 8192) {
          const msg = Buffer.from('medium error');
          reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset), contentOf(req.offset, 512)]), false);
          reply.chunk(req.cookie, 32770, Buffer.concat([u32(5), u16(msg.length), msg, u64(req.offset + 512)]), false);
          reply.chunk(req.cookie, 0, Buffer.alloc(0), true);
        } else {
          reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset), contentOf(req.offset, req.length)]), true);
        }
      },
    });
    try {
      const c = await NbdClient.connect({address: {socketPath: sock}, exportName: 'x'});
      const err = await c.read(8192, 4096).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(NbdServerError);
      expect((err as Error).message).toBe(
        "NBD server failed READ at offset 8192 (length 4096) on export 'x' with EIO (input/output error), failing at offset 8704: medium error",
      );
      expect((await c.read(0, 4096)).equals(contentOf(0, 4096))).toBe(true);
      await c.close();
    } finally {
      await srv.close();
    }
  });
});

describe('BLOCK_STATUS replies', () => {
  it('clips an answer that runs past the request and skips other contexts\' chunks', async () => {
    const sock = path.join(t.dir, 'bs.sock');
    const srv = await startScriptedServer(sock, {
      size: 1024 * 1024,
      onRequest: (req, reply, batch) => {
        batch.splice(0);
        // A chunk for an unrelated context id first, then ours running 1 MiB past the end.
        reply.chunk(req.cookie, 5, Buffer.concat([u32(99), u32(req.length), u32(1)]), false);
        reply.chunk(req.cookie, 5, Buffer.concat([u32(7), u32(4096), u32(0), u32(req.length + 1024 * 1024), u32(3)]), true);
      },
    });
    try {
      const c = await NbdClient.connect({address: {socketPath: sock}, exportName: 'x', metaContexts: ['base:allocation']});
      expect(c.metaContexts.get('base:allocation')).toBe(7);
      expect(await c.blockStatus(4096, 65536, 'base:allocation')).toEqual([
        {offset: 4096, length: 4096, flags: 0},
        {offset: 8192, length: 61440, flags: 3},
      ]);
      await c.close();
    } finally {
      await srv.close();
    }
  });
});

describe('protocol violations', () => {
  it('a reply for an unknown cookie or a chunk outside the request fails every outstanding call', async () => {
    for (const bad of ['cookie', 'range'] as const) {
      const sock = path.join(t.dir, `bad-${bad}.sock`);
      const srv = await startScriptedServer(sock, {
        size: 1024 * 1024,
        onRequest: (req, reply, batch) => {
          if (batch.length < 2) return;
          batch.splice(0);
          if (bad === 'cookie') reply.chunk(u64(0xdeadbeef), 0, Buffer.alloc(0), true);
          else reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset + 4096), Buffer.alloc(4096)]), true);
        },
      });
      try {
        const c = await NbdClient.connect({address: {socketPath: sock}, exportName: 'x'});
        const results = await Promise.allSettled([c.read(0, 4096), c.read(8192, 4096)]);
        for (const r of results) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(NbdProtocolError);
        }
        expect(((results[0] as PromiseRejectedResult).reason as Error).message).toMatch(bad === 'cookie' ? /unknown cookie/ : /outside READ at offset 8192/);
        await expect(c.read(0, 512)).rejects.toThrow(/NBD protocol error/);
        await c.close();
      } finally {
        await srv.close();
      }
    }
  });
});

describe('NbdPool scheduling', () => {
  it('spreads requests over every connection and never has more than maxInFlight outstanding on one', async () => {
    const sock = path.join(t.dir, 'pool.sock');
    const outstanding: number[] = [];
    const peak: number[] = [];
    const srv = await startScriptedServer(sock, {
      size: 64 * 1024 * 1024,
      exportFlags: 1 | 2, // HAS_FLAGS | READ_ONLY: several connections allowed
      onRequest: (req, reply, batch, conn) => {
        batch.splice(0);
        outstanding[conn] = (outstanding[conn] ?? 0) + 1;
        peak[conn] = Math.max(peak[conn] ?? 0, outstanding[conn]!);
        setTimeout(() => {
          outstanding[conn]!--;
          reply.chunk(req.cookie, 1, Buffer.concat([u64(req.offset), contentOf(req.offset, req.length)]), true);
        }, 2);
      },
    });
    try {
      const pool = await NbdPool.open({address: {socketPath: sock}, exportName: 'x', connections: 3, maxInFlight: 2});
      expect(pool.connections).toBe(3);
      // 2.5 MiB reads split into 1 MiB pieces (the scripted maximum payload): 60 requests.
      const offsets = Array.from({length: 20}, (_, i) => i * 3 * 1024 * 1024);
      const got = await Promise.all(offsets.map((o) => pool.read(o, 2.5 * 1024 * 1024)));
      got.forEach((b, i) => expect(b.equals(contentOf(offsets[i]!, 2.5 * 1024 * 1024))).toBe(true));
      expect(peak).toEqual([2, 2, 2]);
      await pool.close();
    } finally {
      await srv.close();
    }
  });
});
