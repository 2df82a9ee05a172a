/**
 * Repository: the public face of one open repository directory. It wires the chunk store,
 * writers, readers, retention, GC, verify and statistics together; each lives in its own file.
 */
import {randomUUID} from 'node:crypto';
import {chmod, mkdir, readdir, readFile, rm, stat, unlink} from 'node:fs/promises';
import {join, resolve} from 'node:path';
import {ExitCode, UserError, errnoCode} from '../util/errors.js';
import {ChunkStore} from './chunk-store.js';
import {CONFIG_FILE, DEFAULT_CHUNK_SIZE, FORMAT_VERSION, FORMAT_VERSIONS, REPOSITORY_FORMAT, type RepositoryConfig, parseConfig, serializeConfig, validateChunkSize} from './config-file.js';
import type {RepoContext} from './context.js';
import {corrupt, fsyncDir, ioError, isRealDirectory, readFileCapped, writeFileAtomic} from './fsio.js';
import {collectGarbage} from './gc.js';
import {CHUNKS_DIR, LOCKS_DIR, MANIFEST_FILE, POINTS_DIR, POINT_ID, PROTECTED_FILE, WRITERS_DIR, pointDir, vmLockPath} from './layout.js';
import {acquireLock} from './lock.js';
import {compareSummaries, MAX_MANIFEST_BYTES, parseManifest, summarize} from './manifest.js';
import {isValidName, newPointId} from './names.js';
import {RestorePointReaderImpl, loadIndexIds} from './reader.js';
import {planRetention, validatePolicy} from './retention.js';
import {repositoryStats} from './stats.js';
import type {
  BeginOptions,
  DamagedManifest,
  GcOptions,
  GcResult,
  Manifest,
  Progress,
  PruneResult,
  RepositoryStats,
  RestorePointReader,
  RestorePointSummary,
  RestorePointWriter,
  RetentionPolicy,
  VerifyReport,
} from './types.js';
import {verifyPoints} from './verify.js';
import {type BaseInfo, RestorePointWriterImpl} from './writer.js';

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/** A repository configuration is a few hundred bytes; a larger file is refused unread. */
const MAX_CONFIG_BYTES = 64 << 10;

export class Repository {
  readonly path: string;
  readonly id: string;
  readonly chunkSize: number;
  readonly formatVersion: number;
  private readonly ctx: RepoContext;

  /** Use openRepository / createRepository. */
  constructor(path: string, config: RepositoryConfig) {
    this.path = path;
    this.id = config.id;
    this.chunkSize = config.chunkSize;
    this.formatVersion = config.version;
    this.ctx = {root: path, id: config.id, chunkSize: config.chunkSize, formatVersion: config.version, store: new ChunkStore(path, config.version, config.chunkSize)};
  }

  /**
   * Restore point directories whose manifest is there but cannot be used (damaged, hostile, or
   * from a newer version): listed here with the reason, so that verify, list and info can name
   * them instead of skipping them in silence.
   */
  async damagedRestorePoints(): Promise<DamagedManifest[]> {
    const damaged: DamagedManifest[] = [];
    await this.committed(damaged);
    return damaged;
  }

  /** Committed manifests with their protected flag; a manifest that cannot be read goes to `damaged`. */
  private async committed(damaged: DamagedManifest[] = []): Promise<{m: Manifest; protected: boolean}[]> {
    const dir = join(this.path, POINTS_DIR);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw ioError(err, dir, 'listing restore points');
    }
    const out: {m: Manifest; protected: boolean}[] = [];
    for (const name of names) {
      if (!POINT_ID.test(name)) continue;
      if (!(await isRealDirectory(join(dir, name)))) continue; // a planted link: never followed
      const m = await this.readManifest(name).catch((err: unknown) => {
        if (err instanceof UserError) {
          damaged.push({restorePoint: name, file: join(dir, name, MANIFEST_FILE), detail: err.message});
          return undefined;
        }
        throw err;
      });
      if (m) out.push({m, protected: await this.isProtected(name)});
    }
    return out;
  }

  private async readManifest(id: string): Promise<Manifest | undefined> {
    const file = join(pointDir(this.path, id), MANIFEST_FILE);
    let text: string;
    try {
      text = (await readFileCapped(file, MAX_MANIFEST_BYTES, 'manifest')).toString('utf8');
    } catch (err) {
      if (err instanceof UserError) throw err;
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw ioError(err, file, 'reading a restore point manifest');
    }
    return parseManifest(text, file, {dirName: id, chunkSize: this.chunkSize});
  }

  private async isProtected(id: string): Promise<boolean> {
    try {
      await stat(join(pointDir(this.path, id), PROTECTED_FILE));
      return true;
    } catch {
      return false;
    }
  }

  async listRestorePoints(filter: {vmId?: string} = {}): Promise<RestorePointSummary[]> {
    const all = await this.committed();
    return all
      .filter((x) => filter.vmId === undefined || x.m.vm.id === filter.vmId)
      .map((x) => summarize(x.m, x.protected))
      .sort(compareSummaries);
  }

  private notFound(id: string): UserError {
    return new UserError(`Restore point ${id} does not exist in the repository ${this.path}.`, {
      hint: 'List the restore points with "vmbackup repo list <path>" and use one of those ids.',
      exitCode: ExitCode.notFound,
    });
  }

  async openRestorePoint(id: string): Promise<RestorePointReader> {
    if (!POINT_ID.test(id)) throw this.notFound(id);
    const m = await this.readManifest(id);
    if (!m) throw this.notFound(id);
    return new RestorePointReaderImpl(this.ctx, summarize(m, await this.isProtected(id)), m);
  }

  async beginRestorePoint(opts: BeginOptions): Promise<RestorePointWriter> {
    for (const f of ['vmId', 'vmName', 'platform'] as const) {
      if (typeof opts[f] !== 'string' || opts[f].length === 0) {
        throw new UserError(`Cannot begin a restore point: ${f} is empty.`, {exitCode: ExitCode.invalidInput});
      }
    }
    if (!isValidName('objectId', opts.vmId)) {
      throw new UserError(`Cannot begin a restore point: the VM id ${JSON.stringify(opts.vmId)} is not a valid id (letters, digits, ".", "_", ":" and "-").`, {exitCode: ExitCode.invalidInput});
    }
    let base: {reader: RestorePointReader} | undefined;
    if (opts.base !== undefined) {
      const reader = await this.openRestorePoint(opts.base);
      if (reader.manifest.vm.id !== opts.vmId) {
        throw new UserError(`Restore point ${opts.base} belongs to VM ${reader.manifest.vm.name}, not to ${opts.vmName}; it cannot be the base.`, {
          exitCode: ExitCode.invalidInput,
        });
      }
      if (reader.manifest.chunkSize !== this.chunkSize) throw new Error(`base ${opts.base} has chunk size ${reader.manifest.chunkSize}`);
      base = {reader};
    }
    await mkdir(join(this.path, LOCKS_DIR), {recursive: true, mode: 0o700});
    const lock = await acquireLock(vmLockPath(this.path, opts.vmId), `backup of VM ${opts.vmName}`, {
      timeoutMs: opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      ...(opts.signal ? {signal: opts.signal} : {}),
      what: `backup of VM "${opts.vmName}" in repository ${this.path}`,
      hint: 'Another backup of this VM is writing to the repository. Wait for it to finish, or if its process is gone on another machine, remove the lock file named here.',
    });
    try {
      const startedAt = new Date();
      const id = newPointId(opts.vmName, startedAt);
      let baseInfo: BaseInfo | undefined;
      if (base) {
        const m = base.reader.manifest;
        const ids = new Map<string, Buffer>();
        for (const d of m.disks) {
          // A damaged base index is not fatal: that disk is read in full (and the writer warns).
          const loaded = await loadIndexIds(this.ctx, m, d).catch((err: unknown) => {
            if (err instanceof UserError) return undefined;
            throw err;
          });
          if (loaded) ids.set(d.key, loaded);
        }
        baseInfo = {summary: base.reader.summary, manifest: m, ids};
      }
      const w = new RestorePointWriterImpl(this.ctx, id, opts, startedAt, baseInfo, lock);
      await w.start();
      return w;
    } catch (err) {
      await lock.release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Applies `policy` to the restore points of `vmId` (all VMs when omitted); with `only`, to just
   * the points it accepts (one job's points): the others are neither counted nor removed.
   */
  async prune(
    policy: RetentionPolicy,
    opts: {vmId?: string; dryRun?: boolean; now?: Date; only?: (p: RestorePointSummary) => boolean} = {},
  ): Promise<PruneResult> {
    const bad = validatePolicy(policy);
    if (bad) throw new UserError(`Invalid retention policy: ${bad}.`, {exitCode: ExitCode.invalidInput});
    const listed = await this.listRestorePoints(opts.vmId === undefined ? {} : {vmId: opts.vmId});
    const points = opts.only ? listed.filter(opts.only) : listed;
    const plan = planRetention(points, policy, opts.now ?? new Date());
    const result: PruneResult = {dryRun: opts.dryRun === true, kept: [], removed: []};
    for (const d of plan) {
      if (!d.keep && !opts.dryRun && (await this.isProtected(d.id))) {
        // Protected since we listed: keep it.
        result.kept.push({...d, keep: true, reasons: ['protected']});
        continue;
      }
      (d.keep ? result.kept : result.removed).push(d);
      if (!d.keep && !opts.dryRun) await this.deletePoint(d.id);
    }
    return result;
  }

  /**
   * Removes the manifest first (the un-commit), then the rest; GC frees the chunks later. `id`
   * is a directory name listed under points/ (the manifest's id was checked to be that name),
   * and the directory must be a real one: nothing outside the repository is ever removed.
   */
  private async deletePoint(id: string): Promise<void> {
    const dir = pointDir(this.path, id);
    if (!(await isRealDirectory(dir))) {
      throw corrupt(dir, 'the restore point directory is not a directory (a symbolic link?); it was left alone');
    }
    const file = join(dir, MANIFEST_FILE);
    try {
      await unlink(file);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError(err, file, 'removing a restore point');
    }
    await fsyncDir(dir);
    await rm(dir, {recursive: true, force: true}).catch((err: unknown) => {
      throw ioError(err, dir, 'removing a restore point');
    });
    await fsyncDir(join(this.path, POINTS_DIR));
  }

  /**
   * Removes one restore point, also one whose manifest is damaged (the way out of a damaged
   * point: verify names it, GC keeps its chunks until it is gone). A protected point is kept
   * unless `force`. Every restore point is logically full, so the others stay restorable; GC
   * frees the chunks only it used.
   */
  async forget(id: string, opts: {force?: boolean} = {}): Promise<{id: string; damaged: boolean}> {
    if (!POINT_ID.test(id)) throw this.notFound(id);
    const dir = pointDir(this.path, id);
    if (!(await isRealDirectory(dir))) throw this.notFound(id);
    const manifest = await stat(join(dir, MANIFEST_FILE)).catch(() => undefined);
    if (!manifest) {
      throw new UserError(`${id} in ${this.path} is not a committed restore point (it has no manifest: a backup that did not finish).`, {
        hint: 'Garbage collection removes unfinished restore points: vmbackup repo gc <path>.',
        exitCode: ExitCode.notFound,
      });
    }
    if ((await this.isProtected(id)) && !opts.force) {
      throw new UserError(`Restore point ${id} is protected.`, {hint: 'Remove the protection first (vmbackup repo unprotect), or forget it with --force.', exitCode: ExitCode.invalidInput});
    }
    const damaged = await this.readManifest(id).then(
      () => false,
      (err: unknown) => {
        if (err instanceof UserError) return true;
        throw err;
      },
    );
    await this.deletePoint(id);
    return {id, damaged};
  }

  async setProtected(id: string, value: boolean): Promise<void> {
    await this.openRestorePoint(id);
    const dir = pointDir(this.path, id);
    const marker = join(dir, PROTECTED_FILE);
    if (value) {
      await writeFileAtomic(marker, [], 'marking a restore point protected', {syncDir: dir});
    } else {
      await unlink(marker).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw ioError(err, marker, 'removing the protection of a restore point');
      });
      await fsyncDir(dir);
    }
  }

  gc(opts: GcOptions = {}): Promise<GcResult> {
    return collectGarbage(this.ctx, opts);
  }

  async verify(opts: {restorePoints?: string[]; onProgress?: (p: Progress) => void} = {}): Promise<VerifyReport> {
    let manifests: Manifest[];
    const damaged: DamagedManifest[] = [];
    if (opts.restorePoints) {
      manifests = [];
      for (const id of opts.restorePoints) manifests.push((await this.openRestorePoint(id)).manifest);
    } else {
      manifests = (await this.committed(damaged)).map((x) => x.m);
    }
    const report = await verifyPoints(this.ctx, manifests, opts.onProgress);
    report.manifestProblems = damaged;
    for (const d of damaged) report.restorePoints.push({id: d.restorePoint, ok: false, problems: 1});
    if (damaged.length > 0) report.ok = false;
    return report;
  }

  async stats(): Promise<RepositoryStats> {
    return repositoryStats(this.ctx, (await this.committed()).map((x) => x.m));
  }
}

/**
 * Creates a repository in the newest format (FORMAT_VERSION). `formatVersion` makes an older
 * one (tests and benchmarks that compare formats; an older vmbackup reads only its own).
 */
export async function createRepository(path: string, opts: {chunkSize?: number; formatVersion?: number} = {}): Promise<Repository> {
  const root = resolve(path);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  validateChunkSize(chunkSize);
  const version = opts.formatVersion ?? FORMAT_VERSION;
  if (!FORMAT_VERSIONS.includes(version)) {
    throw new UserError(`Cannot create a repository in format version ${version}: this vmbackup writes versions ${FORMAT_VERSIONS.join(' and ')}.`, {
      hint: 'Leave the format version at its default.',
      exitCode: ExitCode.invalidInput,
    });
  }
  let existing: string[] = [];
  try {
    existing = await readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR') {
      throw new UserError(`Cannot create a repository at ${root}: it is a file.`, {hint: 'Choose a directory path.', exitCode: ExitCode.invalidInput});
    }
    if (errnoCode(err) !== 'ENOENT') throw ioError(err, root, 'creating a repository');
  }
  if (existing.includes(CONFIG_FILE)) {
    throw new UserError(`${root} already holds a repository.`, {hint: 'Open it instead of creating it, or choose another path.', exitCode: ExitCode.invalidInput});
  }
  if (existing.length > 0) {
    throw new UserError(`Cannot create a repository at ${root}: the directory is not empty.`, {
      hint: 'Choose a new or empty directory.',
      exitCode: ExitCode.invalidInput,
    });
  }
  try {
    // 0700 whatever the umask: a repository holds the VMs' disk contents (docs/security.md).
    await mkdir(root, {recursive: true, mode: 0o700});
    await chmod(root, 0o700);
    for (const d of [CHUNKS_DIR, POINTS_DIR, WRITERS_DIR, LOCKS_DIR]) await mkdir(join(root, d), {recursive: true, mode: 0o700});
  } catch (err) {
    throw ioError(err, root, 'creating a repository');
  }
  const config: RepositoryConfig = {
    format: REPOSITORY_FORMAT,
    version,
    id: randomUUID(),
    chunkSize,
    hash: 'sha256',
    compression: 'lz4',
    created: new Date().toISOString(),
  };
  await writeFileAtomic(join(root, CONFIG_FILE), [Buffer.from(serializeConfig(config))], 'writing the repository configuration', {syncDir: root});
  return new Repository(root, config);
}

export async function openRepository(path: string): Promise<Repository> {
  const root = resolve(path);
  const file = join(root, CONFIG_FILE);
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > MAX_CONFIG_BYTES) {
      throw new UserError(`${root} is not a vmbackup repository: ${CONFIG_FILE} is ${st.size} bytes, far more than a repository configuration can be.`, {
        hint: 'The repository configuration is damaged or not vmbackup\'s. Check the path.',
        exitCode: ExitCode.notARepository,
      });
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new UserError(`${root} is not a vmbackup repository (it has no ${CONFIG_FILE}).`, {
        hint: 'Check the path: a repository is the directory that holds vmbackup-repository.json. Create one with "vmbackup repo create".',
        exitCode: ExitCode.notARepository,
      });
    }
    throw ioError(err, file, 'opening the repository');
  }
  const config = parseConfig(text, root);
  // A copied repository may lack empty directories (some copy tools skip them).
  for (const d of [CHUNKS_DIR, POINTS_DIR]) {
    try {
      await stat(join(root, d));
    } catch {
      throw new UserError(`${root} is not a complete vmbackup repository: the ${d}/ directory is missing.`, {
        hint: 'Copy the whole repository directory, including chunks/ and points/.',
        exitCode: ExitCode.notARepository,
      });
    }
  }
  return new Repository(root, config);
}
