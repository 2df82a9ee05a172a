/**
 * Chunks hashed and packed elsewhere (a worker on a VM's host, src/worker/) through the disk
 * writer's offer() and putPacked(): what the repository has is reused and not asked for, zero
 * chunks are recorded, the point reads back identical (plain and encrypted, where ids are keyed);
 * and everything a worker sends is checked: a chunk whose data does not hash to its id, a chunk
 * that was not asked for, a wrong length, a wrong number of ids — refused, nothing stored, no
 * commit with a chunk that never came.
 */
import {createHash, createHmac} from 'node:crypto';
import {join} from 'node:path';
import {compressSync} from 'lz4-napi';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, type DiskWriter, type Repository} from '../../src/repository/index.js';
import {UserError} from '../../src/util/errors.js';
import {chunkFiles, expectContent, pseudoRandom, scratch, textLike} from './helpers.js';

const CHUNK = 64 * 1024;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-packed-'));
});
afterAll(() => cleanup());

function ids(data: Buffer, mac?: Uint8Array): Buffer {
  const n = Math.ceil(data.length / CHUNK);
  const out = Buffer.alloc(n * 32);
  for (let i = 0; i < n; i++) {
    const c = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    if (c.equals(Buffer.alloc(c.length))) continue;
    (mac ? createHmac('sha256', mac).update(c).digest() : createHash('sha256').update(c).digest()).copy(out, i * 32);
  }
  return out;
}

/** What a worker does for one run: offer the ids, send the packed chunks asked for. */
async function sendLikeAWorker(d: DiskWriter, offset: number, data: Buffer, mac?: Uint8Array): Promise<number[]> {
  const all = ids(data, mac);
  const ask = await d.offer(offset, data.length, all);
  for (const i of ask) {
    const plain = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    // Always LZ4, even where it does not pay (random data): the repository stores that raw.
    const packed = compressSync(plain) as Buffer;
    await d.putPacked(offset + i * CHUNK, {id: all.subarray(i * 32, i * 32 + 32), flags: 1, plainLength: plain.length, payload: packed}, 'The test worker');
  }
  return ask;
}

async function begin(repo: Repository, base?: string) {
  return repo.beginRestorePoint({vmId: 'vm-w', vmName: 'w', platform: 'libvirt', ...(base ? {base} : {})});
}

describe('chunks packed by a worker', () => {
  for (const encrypted of [false, true]) {
    it(`are stored as sent, reused when present, and read back identical (${encrypted ? 'encrypted' : 'plain'})`, async () => {
      const repo = await createRepository(join(dir, `repo-${encrypted}`), {chunkSize: CHUNK, ...(encrypted ? {passphrase: 'packed-chunks-pw'} : {})});
      const mac = repo.chunkIdKey();
      expect(mac === undefined).toBe(!encrypted);
      const image = Buffer.concat([textLike(4 * CHUNK, 1), Buffer.alloc(2 * CHUNK), pseudoRandom(2 * CHUNK, 2)]);
      const w = await begin(repo);
      const d = await w.addDisk({key: 'vda', name: 'vda', size: image.length});
      expect(await sendLikeAWorker(d, 0, image, mac)).toEqual([0, 1, 2, 3, 6, 7]);
      const stats = await d.finish();
      expect(stats.newChunks).toBe(6);
      expect(stats.zeroBytes).toBe(2 * CHUNK);
      const first = (await w.commit()).id;
      await expectContent(repo, first, 'vda', image);

      // The next point: only the changed chunk is asked for; the rest is reused without being sent.
      const next = Buffer.from(image);
      next.fill(7, 5 * CHUNK, 6 * CHUNK);
      const w2 = await begin(repo, first);
      const d2 = await w2.addDisk({key: 'vda', name: 'vda', size: next.length});
      expect(await sendLikeAWorker(d2, 0, next, mac)).toEqual([5]);
      await d2.finish();
      await expectContent(repo, (await w2.commit()).id, 'vda', next);
    });
  }

  it('refuses a chunk whose data does not hash to its id, and stores nothing of it', async () => {
    const repo = await createRepository(join(dir, 'repo-hostile'), {chunkSize: CHUNK});
    const data = textLike(CHUNK, 3);
    const w = await begin(repo);
    const d = await w.addDisk({key: 'vda', name: 'vda', size: CHUNK});
    const all = ids(data);
    expect(await d.offer(0, CHUNK, all)).toEqual([0]);
    const other = textLike(CHUNK, 4);
    const err = await d.putPacked(0, {id: all, flags: 1, plainLength: CHUNK, payload: compressSync(other) as Buffer}, 'The worker on hvm-9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/The worker on hvm-9 sent a chunk that was refused: its data does not hash to the id/);
    // An LZ4 payload that claims more than the chunk size, raw data of the wrong length: refused too.
    const bomb = Buffer.alloc(8);
    bomb.writeUInt32LE(1 << 30, 0);
    await expect(d.putPacked(0, {id: all, flags: 1, plainLength: CHUNK, payload: bomb}, 'The worker on hvm-9')).rejects.toThrow(/refused: it does not unpack/);
    await expect(d.putPacked(0, {id: all, flags: 0, plainLength: CHUNK, payload: data.subarray(1)}, 'The worker on hvm-9')).rejects.toThrow(/refused/);
    expect(await chunkFiles(join(dir, 'repo-hostile'))).toEqual([]);
    // Not asked for, a wrong length, a wrong number of ids.
    await expect(d.putPacked(CHUNK * 5, {id: all, flags: 0, plainLength: CHUNK, payload: data}, 'The worker on hvm-9')).rejects.toThrow(/was not asked for/);
    await expect(d.putPacked(0, {id: all, flags: 0, plainLength: 100, payload: data.subarray(0, 100)}, 'The worker on hvm-9')).rejects.toThrow(/sent 100 bytes/);
    await expect(d.offer(0, CHUNK, Buffer.alloc(64))).rejects.toThrow(/2 chunk ids offered for 1 chunks/);
    // The chunk never came: the disk cannot be finished, so nothing is committed without it.
    await expect(d.finish()).rejects.toThrow(/asked for by offer\(\) never arrived/);
    await w.abort();
    expect(await repo.listRestorePoints()).toEqual([]);
  });
});
