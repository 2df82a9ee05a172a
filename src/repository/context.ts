/**
 * What the parts of an open repository share: its root, geometry, id and chunk store.
 * Internal: the public face is Repository (repository.ts).
 */
import type {ChunkStore} from './chunk-store.js';

export interface RepoContext {
  readonly root: string;
  readonly id: string;
  readonly chunkSize: number;
  readonly formatVersion: number;
  readonly store: ChunkStore;
}
