/**
 * A seeded, bounded fuzz test of the repository as untrusted input (docs/security.md): each
 * iteration copies a small healthy repository, damages one of its files (truncated, bit-flipped,
 * oversized, or a JSON value replaced by a hostile one) and runs one command on it through the
 * real CLI. Every run must end in success or a clear error (a stable exit code, no stack trace,
 * the damaged file or the repository named), within 512 MiB of RSS and a time limit, and nothing
 * outside the repository copy may change.
 *
 * VMBACKUP_FUZZ_SEED and VMBACKUP_FUZZ_ITERATIONS replay or widen a run; a failure prints the
 * seed, the file, the damage and the command, which is all it takes to reproduce it.
 */
import {cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, relative} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createRepository} from '../../src/repository/index.js';
import {ExitCode} from '../../src/util/errors.js';
import {backupImage, pseudoRandom, textLike} from '../repository/helpers.js';
import {maxRssKiB} from './rss.js';

const CS = 64 * 1024;
const SEED = Number(process.env['VMBACKUP_FUZZ_SEED'] ?? 20261206);
// 12 in the suite (each run is a CLI process; the suite must stay under 15 minutes on 2 cores);
// VMBACKUP_FUZZ_ITERATIONS=200 for a wider run by hand.
const ITERATIONS = Number(process.env['VMBACKUP_FUZZ_ITERATIONS'] ?? 12);
/** Exit codes a damaged repository may end in: each a clear, documented outcome. */
const CLEAR = new Set<number>([ExitCode.ok, ExitCode.notARepository, ExitCode.unsupportedVersion, ExitCode.locked, ExitCode.corrupt, ExitCode.verifyFailed, ExitCode.notFound]);

let dir: string;
let base: string;
let files: string[];
let pointIds: string[];

class Rng {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0 || 1;
  }
  next(): number {
    this.x ^= this.x << 13;
    this.x >>>= 0;
    this.x ^= this.x >>> 17;
    this.x ^= this.x << 5;
    this.x >>>= 0;
    return this.x;
  }
  below(n: number): number {
    return this.next() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)]!;
  }
}

async function walk(root: string, at = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(at, {withFileTypes: true})) {
    const p = join(at, e.name);
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else out.push(relative(root, p));
  }
  return out.sort();
}

/** A snapshot of a tree outside the repository: every file with its size and content hash. */
async function snapshot(root: string): Promise<string> {
  const parts: string[] = [];
  for (const f of await walk(root)) parts.push(`${f}:${(await readFile(join(root, f))).toString('base64')}`);
  return parts.join('\n');
}

const HOSTILE_VALUES: unknown[] = ['../../outside', '/etc', '-rf', '', 'a'.repeat(100_000), -1, 2 ** 62, 1e308, null, [], {}, true, '\u001b]0;pwned\u0007'];

function hostileJson(text: string, rng: Rng): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return text;
  }
  // Collect every path in the document and replace one value.
  const paths: (string | number)[][] = [];
  const visit = (v: unknown, p: (string | number)[]) => {
    if (p.length > 0) paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, [...p, k]);
  };
  visit(doc, []);
  if (paths.length === 0) return text;
  const path = rng.pick(paths);
  let parent = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  parent[path.at(-1)!] = rng.pick(HOSTILE_VALUES);
  return JSON.stringify(doc);
}

async function damage(repo: string, file: string, rng: Rng): Promise<string> {
  const path = join(repo, file);
  const data = await readFile(path);
  const kind = rng.pick(['truncate', 'flip', 'oversize', 'json', 'json', 'garbage'] as const);
  switch (kind) {
    case 'truncate': {
      const at = rng.below(data.length + 1);
      await truncate(path, at);
      return `truncated to ${at} bytes`;
    }
    case 'flip': {
      const flips = 1 + rng.below(8);
      for (let i = 0; i < flips; i++) data[rng.below(data.length)]! ^= 1 << rng.below(8);
      await writeFile(path, data);
      return `${flips} bits flipped`;
    }
    case 'oversize': {
      // Sparse: gigabytes that cost no disk space, as a hostile repository would send them.
      const size = (1 + rng.below(8)) * 2 ** 30;
      await truncate(path, size);
      return `extended to ${size} bytes`;
    }
    case 'json': {
      const before = data.toString('utf8');
      const after = hostileJson(before, rng);
      if (after === before) {
        // Not JSON: flip a bit instead.
        data[rng.below(data.length)]! ^= 1 << rng.below(8);
        await writeFile(path, data);
        return '1 bit flipped';
      }
      await writeFile(path, after);
      return `one JSON value replaced by a hostile one: ${after.slice(0, 300)}`;
    }
    case 'garbage': {
      const g = pseudoRandom(1 + rng.below(4096), rng.next());
      await writeFile(path, g);
      return `replaced by ${g.length} random bytes`;
    }
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-fuzz-'));
  base = join(dir, 'base');
  const repo = await createRepository(base, {chunkSize: CS});
  const a = await backupImage(repo, Buffer.concat([pseudoRandom(2 * CS, 1), Buffer.alloc(CS), textLike(CS, 2)]), {vmId: 'vm-a', vmName: 'web'});
  const b = await backupImage(repo, Buffer.concat([pseudoRandom(2 * CS, 1), textLike(2 * CS, 3)]), {vmId: 'vm-a', vmName: 'web', base: a.id});
  const c = await backupImage(repo, Buffer.concat([textLike(CS, 2), pseudoRandom(CS, 4)]), {vmId: 'vm-b', vmName: 'db', key: 'sda'});
  pointIds = [a.id, b.id, c.id];
  // A writer registration and a lock file, as a crashed backup on another appliance leaves them.
  await writeFile(join(base, 'writers', `${b.id}x.json`), JSON.stringify({pid: 999999, pidStart: '1', host: 'elsewhere', since: 0, purpose: 'backup'}));
  await writeFile(join(base, 'locks', 'gc.lock'), JSON.stringify({pid: 999999, pidStart: '1', host: 'elsewhere', since: 0, purpose: 'gc'}));
  files = (await walk(base)).filter((f) => !f.endsWith('/'));
}, 120_000);

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('fuzzed repositories', () => {
  it(`${ITERATIONS} damaged repositories (seed ${SEED}) each end in success or a clear error, in bounded memory, touching nothing outside`, async () => {
    const rng = new Rng(SEED);
    const outside = join(dir, 'outside');
    await mkdir(join(outside, 'etc'), {recursive: true});
    await writeFile(join(outside, 'etc', 'passwd'), 'root:x:0:0');
    const failures: string[] = [];
    const runOne = async (n: number, r: Rng) => {
      const work = join(dir, `run-${n}`);
      const repo = join(work, 'repo');
      await mkdir(work);
      await cp(base, repo, {recursive: true});
      const file = r.pick(files);
      const what = await damage(repo, file, r);
      const op = r.pick(['info', 'list', 'verify', 'prune', 'gc', 'restore'] as const);
      const args: Record<typeof op, string[]> = {
        info: ['repo', 'info', repo],
        list: ['repo', 'list', repo],
        verify: ['repo', 'verify', repo],
        prune: ['repo', 'prune', repo, '--keep-last', '1'],
        gc: ['repo', 'gc', repo],
        restore: ['restore', '--repo', repo, '--restore-point', r.pick(pointIds), '--to-files', join(work, 'out')],
      };
      const before = await snapshot(outside);
      const res = await maxRssKiB(args[op], {timeoutMs: 90_000});
      const label = `seed ${SEED} run ${n}: ${file} ${what}; vmbackup ${args[op].join(' ')} → exit ${res.exitCode}, ${Math.round(res.maxRssKiB / 1024)} MiB, ${res.ms} ms`;
      const problems: string[] = [];
      if (!CLEAR.has(res.exitCode)) problems.push(`exit code ${res.exitCode}`);
      if (/\n\s+at /.test(res.stderr)) problems.push('a stack trace');
      if (res.exitCode !== 0 && !(res.stderr + res.stdout).includes(repo)) problems.push('an error that names neither the file nor the repository');
      if (res.maxRssKiB >= 512 * 1024) problems.push(`peak RSS ${res.maxRssKiB} KiB`);
      if ((await snapshot(outside)) !== before) problems.push('a change outside the repository');
      const siblings = (await readdir(work)).sort();
      if (siblings.some((s) => s !== 'repo' && s !== 'out')) problems.push(`new files beside the repository: ${siblings.join(', ')}`);
      if (problems.length > 0) failures.push(`${label}: ${problems.join(', ')}\n${res.stderr.slice(0, 600)}`);
      await rm(work, {recursive: true, force: true});
    };
    // Two at a time (2 cores); each run draws from its own generator so the order does not matter.
    const seeds = Array.from({length: ITERATIONS}, () => rng.next());
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < ITERATIONS) {
          const n = next++;
          await runOne(n, new Rng(seeds[n]!));
        }
      }),
    );
    expect(failures).toEqual([]);
    expect((await stat(join(outside, 'etc', 'passwd'))).size).toBe(10);
  }, 600_000);
});
