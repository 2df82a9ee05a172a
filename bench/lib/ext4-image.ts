/**
 * A disk image that looks like a real guest disk: an ext4 filesystem holding about `dataMiB` of
 * real files (shared libraries, locales, man pages...) copied from this machine's /usr, built
 * with `mkfs.ext4 -d` into a sparse raw file of `sizeMiB`. The raw file is cached under
 * `cacheDir` (building it copies ~800 MiB and takes a while); callers copy it, never write it.
 *
 * Directories are picked greedily, biggest first, each capped so the result mixes kinds of
 * files; what was picked is recorded next to the image and printed by the benchmark, because
 * the mix decides how well LZ4 compresses and so the repository size.
 */
import {existsSync} from 'node:fs';
import {mkdir, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';

const MiB = 2 ** 20;

export interface Ext4Image {
  path: string;
  sizeBytes: number;
  /** Directories copied into the filesystem and their sizes (MiB, du). */
  picked: {dir: string; mib: number}[];
  dataMiB: number;
}

async function duMiB(dirs: string[]): Promise<Map<string, number>> {
  const r = await execa('du', ['-sm', '--', ...dirs], {reject: false});
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+)\t(.+)$/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]));
  }
  return out;
}

/** Greedy pick: biggest first, each at most `capMiB`, until the total is within 5% of the goal. */
export function pickDirs(sizes: Map<string, number>, goalMiB: number, capMiB: number): {dir: string; mib: number}[] {
  const sorted = [...sizes].filter(([, mib]) => mib > 0 && mib <= capMiB).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const picked: {dir: string; mib: number}[] = [];
  let total = 0;
  for (const [dir, mib] of sorted) {
    if (total >= goalMiB * 0.95) break;
    if (total + mib > goalMiB * 1.03) continue;
    picked.push({dir, mib});
    total += mib;
  }
  return picked;
}

export async function ensureExt4Image(cacheDir: string, opts: {sizeMiB: number; dataMiB: number}): Promise<Ext4Image> {
  const name = `ext4-${opts.sizeMiB}M-${opts.dataMiB}M`;
  const path = join(cacheDir, `${name}.raw`);
  const meta = join(cacheDir, `${name}.json`);
  if (existsSync(path) && existsSync(meta)) return JSON.parse(await readFile(meta, 'utf8')) as Ext4Image;

  await mkdir(cacheDir, {recursive: true});
  const roots = ['/usr/lib', '/usr/share'];
  const candidates: string[] = [];
  for (const root of roots) {
    for (const e of await readdir(root, {withFileTypes: true})) if (e.isDirectory()) candidates.push(join(root, e.name));
  }
  const picked = pickDirs(await duMiB(candidates), opts.dataMiB, Math.ceil(opts.dataMiB / 2));
  const staging = join(cacheDir, `${name}.staging`);
  await rm(staging, {recursive: true, force: true});
  for (const p of picked) {
    const to = join(staging, p.dir);
    await mkdir(to, {recursive: true});
    // Contents only (dir/.): the destination already exists; -a keeps symlinks as symlinks.
    await execa('cp', ['-a', '--', `${p.dir}/.`, to]);
  }
  const tmp = `${path}.tmp`;
  await rm(tmp, {force: true});
  await execa('truncate', ['-s', `${opts.sizeMiB}M`, tmp]);
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'benchdata', '-d', staging, tmp]);
  await rm(staging, {recursive: true, force: true});
  await rename(tmp, path);
  const image: Ext4Image = {path, sizeBytes: opts.sizeMiB * MiB, picked, dataMiB: picked.reduce((s, p) => s + p.mib, 0)};
  await writeFile(meta, JSON.stringify(image, null, 2));
  return image;
}
