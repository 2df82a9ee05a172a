/**
 * What the parts of an open repository share: where it lives, its geometry, id and chunk store.
 * Internal: the public face is Repository (repository.ts).
 */
import type {ChunkStore} from './chunk-store.js';
import type {ChunkKeys} from './crypto.js';
import type {StorageBackend} from './storage/backend.js';

export interface RepoContext {
  /** Where the repository lives, for messages (the backend's location). */
  readonly root: string;
  readonly id: string;
  readonly chunkSize: number;
  readonly formatVersion: number;
  readonly backend: StorageBackend;
  readonly store: ChunkStore;
  /** An encrypted repository's keys (format 3, crypto.ts); indexes and manifests go through sealed-files.ts. */
  readonly keys?: ChunkKeys;
}
