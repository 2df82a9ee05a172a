/** Free and total bytes of the file system holding a path. */
import {statfs} from 'node:fs/promises';

/** Free and total bytes of the file system holding `path`; undefined when it cannot be read. */
export async function diskSpace(path: string): Promise<{freeBytes: number; totalBytes: number} | undefined> {
  const fs = await statfs(path).catch(() => undefined);
  return fs ? {freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize} : undefined;
}
