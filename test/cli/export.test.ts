/**
 * `vmbackup export` as a process: it serves at once, nbdcopy reads the restore point bit for bit,
 * the restore point is held while it serves (prune keeps it, forget refuses it), Ctrl-C ends it
 * with the hold released, an idle timeout ends it by itself, and the hold of a killed export no
 * longer counts.
 */
import {execa, type ResultPromise} from 'execa';
import {readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository, type Repository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {backupImage, pseudoRandom, scratch} from '../repository/helpers.js';
import {CLI_MAIN} from '../lib/dist.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => Promise<void>;
let repo: Repository;
let older: string;
const images: Buffer[] = [];

beforeAll(async () => {
  ({dir, cleanup} = await scratch('vmb-export-'));
  repo = await createRepository(join(dir, 'repo'));
  for (const seed of [1, 2]) {
    const img = Buffer.alloc(12 * MiB);
    pseudoRandom(3 * MiB, seed).copy(img, 4 * MiB);
    images.push(img);
    const p = await backupImage(repo, img);
    if (seed === 1) older = p.id;
  }
}, 60_000);
afterAll(async () => cleanup?.());

/** Starts an export; resolves with the process and its JSON answer once it serves. */
async function startExport(args: string[]): Promise<{proc: ResultPromise; answer: {restorePoint: string; exports: {disk: string; uri: string}[]}}> {
  const proc = execa(process.execPath, [CLI_MAIN, 'export', '--repo', join(dir, 'repo'), '--json', ...args], {cwd: ROOT, reject: false, all: true, env: {FORCE_COLOR: '0'}});
  let out = '';
  // The answer is one JSON document (pretty-printed) printed once the export serves.
  const answer = await new Promise<unknown>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve(JSON.parse(out));
      } catch {
        /* not whole yet */
      }
    });
    void proc.then((r) => reject(new Error(`export ended: ${r.all}`)));
  });
  return {proc, answer: answer as Awaited<ReturnType<typeof startExport>>['answer']};
}

const holds = async (id: string) => (await readdir(join(dir, 'repo', 'points', id))).filter((f) => f.startsWith('held-'));

describe('vmbackup export', () => {
  it('serves the older restore point, holds it while serving, and Ctrl-C ends it with the hold released', async () => {
    const sock = join(dir, 'a.sock');
    const {proc, answer} = await startExport(['--restore-point', older, '--socket', sock]);
    expect(answer.restorePoint).toBe(older);
    expect(answer.exports).toEqual([{disk: 'vda', size: 12 * MiB, uri: `nbd+unix:///vda?socket=${sock}`}]);
    const copy = join(dir, 'a.raw');
    await execa('nbdcopy', [answer.exports[0]!.uri, copy]);
    expect((await readFile(copy)).equals(images[0]!)).toBe(true);
    // Held: retention keeps it ("in use"), forget refuses it.
    expect(await holds(older)).toHaveLength(1);
    const pruned = await repo.prune({keepLast: 1});
    expect(pruned.removed).toEqual([]);
    expect(pruned.kept.find((k) => k.id === older)?.reasons).toEqual(['in use']);
    await expect(repo.forget(older)).rejects.toMatchObject({exitCode: ExitCode.locked, message: expect.stringMatching(/in use by an export \(pid \d+\)/)});
    proc.kill('SIGINT');
    const r = await proc;
    expect(r.exitCode).toBe(ExitCode.cancelled);
    expect(await holds(older)).toEqual([]);
    // Released: retention may remove it now.
    expect((await repo.prune({keepLast: 1})).removed.map((d) => d.id)).toEqual([older]);
  });

  it('ends by itself after the idle timeout; a killed export leaves a hold that does not count', async () => {
    const idle = await startExport(['--vm', 'web 01', '--socket', join(dir, 'b.sock'), '--idle-timeout', '1']);
    const r = await idle.proc;
    expect(r.exitCode).toBe(0);
    expect(r.all).toContain('No connection for 1 s: the export ends.');
    const newest = idle.answer.restorePoint;
    expect(await holds(newest)).toEqual([]);
    const killed = await startExport(['--vm', 'web 01', '--socket', join(dir, 'c.sock')]);
    killed.proc.kill('SIGKILL');
    await killed.proc;
    expect(await holds(newest)).toHaveLength(1);
    // The dead holder's mark is gone the next time anyone asks.
    expect(await repo.holders(newest)).toEqual([]);
    expect(await holds(newest)).toEqual([]);
  });

  it('says what is wrong: no place to serve, a disk the point does not have, TCP without TLS', async () => {
    const run = (args: string[]) => execa(process.execPath, [CLI_MAIN, 'export', '--repo', join(dir, 'repo'), '--vm', 'web 01', ...args], {cwd: ROOT, reject: false, all: true});
    const none = await run([]);
    expect(none.exitCode).toBe(ExitCode.usage);
    expect(none.all).toContain('exactly one of --socket <path> or --listen <addr:port>');
    const disk = await run(['--socket', join(dir, 'd.sock'), '--disk', 'sdz']);
    expect(disk.exitCode).toBe(ExitCode.notFound);
    expect(disk.all).toContain('has no disk sdz');
    const tcp = await run(['--listen', '127.0.0.1:0']);
    expect(tcp.exitCode).toBe(ExitCode.usage);
    expect(tcp.all).toContain('needs TLS');
  });
});
