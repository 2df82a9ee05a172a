/**
 * The worker's bundle: everything a KVM host needs to run the worker (main.ts), with no package
 * manager there — the appliance's own Node.js runtime, the worker's modules (its import closure,
 * nothing else of the appliance) and the LZ4 binding. Built once per process in a private
 * directory on the appliance; its id is the SHA-256 over every file's path and content, so a new
 * appliance version (or a changed runtime) is a new id, deployed next to nothing old
 * (deploy.ts removes older ones).
 *
 * Layout (the same on the host):
 *   node                                   the runtime (the appliance's process.execPath)
 *   package.json                           {"type": "module"}
 *   app/<area>/<module>.js                 the worker's modules, paths as under src/
 *   node_modules/lz4-napi/…                its loader and the native binding package
 *   SHA256SUMS                             sha256sum's format, checked on the host before each start
 * Under tsx (development, tests) the modules are TypeScript: Node's own type stripping
 * (module.stripTypeScriptTypes, transform mode) turns each into JavaScript; the compiled
 * appliance copies its .js files as they are.
 */
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {mkdir, readdir, readFile, rm, symlink, writeFile, rename, stat} from 'node:fs/promises';
import {createRequire, stripTypeScriptTypes} from 'node:module';
import {dirname, join, relative, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {ensurePrivateDirSync} from '../util/private-dir.js';

export interface WorkerBundle {
  /** SHA-256 (hex) over the files' paths and contents. */
  id: string;
  /** The staging directory on the appliance (the layout above, the runtime as a symlink). */
  dir: string;
  /** Relative path → SHA-256 of every file. */
  files: Map<string, string>;
}

/** The entry's path inside a bundle. */
export const WORKER_ENTRY = 'app/worker/main.js';
/** The native LZ4 binding the worker loads: this build runs on x86-64 Linux with glibc. */
const NATIVE_PACKAGE = '@antoniomuso/lz4-napi-linux-x64-gnu';

const built = new Map<string, Promise<WorkerBundle>>();

/** The bundle, staged under `scratchDir` (the appliance's private scratch directory); built once per process. */
export function workerBundle(scratchDir: string): Promise<WorkerBundle> {
  let b = built.get(scratchDir);
  if (!b) {
    b = build(scratchDir);
    built.set(scratchDir, b);
    b.catch(() => built.delete(scratchDir));
  }
  return b;
}

/** The relative imports of a module that load code at run time (type-only imports load nothing). */
function runtimeImports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^'";]*?)\sfrom\s+'([^']+)'/gm)) {
    if (m[2] !== undefined) continue;
    out.push(m[4]!);
  }
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push(m[1]!);
  return out.filter((s) => s.startsWith('.'));
}

/** Hashes of files already read by this process, by path, size and modification time (the runtime is ~120 MiB). */
const fileHashes = new Map<string, string>();

async function sha256File(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = fileHashes.get(key);
  if (known) return known;
  const h = createHash('sha256');
  for await (const part of createReadStream(path)) h.update(part as Buffer);
  const sum = h.digest('hex');
  fileHashes.set(key, sum);
  return sum;
}

async function build(scratchDir: string): Promise<WorkerBundle> {
  const here = fileURLToPath(import.meta.url);
  const typescript = here.endsWith('.ts');
  const root = resolve(dirname(here), '..'); // src/ or dist/
  const ext = typescript ? '.ts' : '.js';

  // The worker's modules: its import closure from the entry.
  const modules = new Map<string, string>(); // relative path (.js) → JavaScript
  const queue = [join(root, 'worker', `main${ext}`)];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const rel = relative(root, file).replace(/\.ts$/, '.js');
    if (modules.has(rel)) continue;
    const text = await readFile(file, 'utf8');
    modules.set(rel, typescript ? stripTypeScriptTypes(text, {mode: 'transform'}) : text);
    for (const spec of runtimeImports(text)) queue.push(resolve(dirname(file), spec).replace(/\.js$/, ext));
  }

  // The LZ4 loader and its native binding for this platform.
  const require = createRequire(import.meta.url);
  const lz4Dir = dirname(require.resolve('lz4-napi'));
  const nativeDir = dirname(createRequire(join(lz4Dir, 'index.js')).resolve(NATIVE_PACKAGE));
  const nativeFiles = (await readdir(nativeDir)).filter((n) => n === 'package.json' || n.endsWith('.node'));

  const files = new Map<string, string>();
  const copies: [string, string][] = [
    ['node', process.execPath],
    ['node_modules/lz4-napi/package.json', join(lz4Dir, 'package.json')],
    ['node_modules/lz4-napi/index.js', join(lz4Dir, 'index.js')],
    ...nativeFiles.map((n): [string, string] => [`node_modules/${NATIVE_PACKAGE}/${n}`, join(nativeDir, n)]),
  ];
  for (const [rel, from] of copies) files.set(rel, await sha256File(from));
  const texts = new Map<string, string>([['package.json', '{"type": "module", "private": true}\n']]);
  for (const [rel, js] of modules) texts.set(`app/${rel}`, js);
  for (const [rel, text] of texts) files.set(rel, createHash('sha256').update(text).digest('hex'));

  const sorted = [...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  const id = sorted.reduce((h, [rel, sum]) => h.update(`${sum}  ${rel}\n`), createHash('sha256')).digest('hex');
  ensurePrivateDirSync(scratchDir);
  const dir = join(scratchDir, `worker-bundle-${id.slice(0, 16)}`);
  if (!(await stat(join(dir, 'SHA256SUMS')).then(() => true, () => false))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, {recursive: true, force: true});
    for (const [rel, from] of copies) {
      await mkdir(dirname(join(tmp, rel)), {recursive: true, mode: 0o700});
      await symlink(from, join(tmp, rel));
    }
    for (const [rel, text] of texts) {
      await mkdir(dirname(join(tmp, rel)), {recursive: true, mode: 0o700});
      await writeFile(join(tmp, rel), text, {mode: 0o600});
    }
    await writeFile(join(tmp, 'SHA256SUMS'), sorted.map(([rel, sum]) => `${sum}  ${rel}\n`).join(''), {mode: 0o600});
    await rm(dir, {recursive: true, force: true});
    await rename(tmp, dir);
  }
  return {id, dir, files};
}
