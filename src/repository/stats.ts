/**
 * Repository statistics: restore points, chunk files and their bytes, logical bytes, the dedup
 * and compression ratios, and the free space of the file system holding the repository.
 */
import {ZERO_ID} from './chunk-file.js';
import type {RepoContext} from './context.js';
import {loadIndexIds} from './reader.js';
import type {Manifest, RepositoryStats} from './types.js';

export async function repositoryStats(ctx: RepoContext, manifests: Manifest[]): Promise<RepositoryStats> {
  // Plain length of each distinct referenced chunk: all are chunkSize but a disk's last one.
  const unique = new Map<string, number>();
  let logicalBytes = 0;
  let referencedBytes = 0;
  for (const m of manifests) {
    for (const d of m.disks) {
      logicalBytes += d.size;
      const ids = await loadIndexIds(ctx, m, d);
      for (let i = 0; i * 32 < ids.length; i++) {
        const id = ids.subarray(i * 32, i * 32 + 32);
        if (ZERO_ID.equals(id)) continue;
        const len = Math.min(m.chunkSize, d.size - i * m.chunkSize);
        referencedBytes += len;
        unique.set(id.toString('hex'), len);
      }
    }
  }
  let chunks = 0;
  let storedBytes = 0;
  let referencedStored = 0;
  for await (const ids of ctx.store.idBatches()) {
    for (const name of ids) {
      const s = await ctx.backend.stat(ctx.store.key(name));
      if (!s) continue;
      chunks++;
      storedBytes += s.size;
      if (unique.has(name)) referencedStored += s.size;
    }
  }
  let uniqueBytes = 0;
  for (const len of unique.values()) uniqueBytes += len;
  const space = await ctx.backend.space();
  return {
    restorePoints: manifests.length,
    chunks,
    storedBytes,
    logicalBytes,
    referencedBytes,
    uniqueBytes,
    dedupRatio: uniqueBytes > 0 ? referencedBytes / uniqueBytes : 1,
    compressionRatio: referencedStored > 0 ? uniqueBytes / referencedStored : 1,
    ...(space ?? {freeBytes: 0, totalBytes: 0}),
  };
}
