/**
 * The NBD client: public API. See client.ts for the connection contract, pool.ts for parallel
 * reads over several connections, extents.ts for turning block status into SourceExtents.
 */
export {NbdClient, type NbdConnectOptions, type BlockStatusEntry} from './client.js';
export {NbdServerError, type NbdAddress, describeAddress} from './errors.js';
export {NbdProtocolError, TransmissionFlag, StateFlag, type BlockSize} from './protocol.js';
export {allocationToExtents, dirtyToExtents, mergeExtents, allocationKind, type StatusEntry, type SourceExtent} from './extents.js';
export {NbdPool, type NbdPoolOptions} from './pool.js';
export {walkExtents, ALLOCATION_CONTEXT, type BlockStatusSource, type WalkOptions} from './walk.js';
