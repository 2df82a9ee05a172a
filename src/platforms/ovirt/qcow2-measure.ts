/**
 * The size a qcow2 image needs for a given virtual size and amount of data, computed the way
 * `qemu-img measure -O qcow2` does (QEMU block/qcow2.c qcow2_measure, qcow2_calc_prealloc_size,
 * qcow2_refcount_metadata_size; 64 KiB clusters, 16-bit refcounts, no extended L2, no
 * encryption, no bitmaps): the metadata of a fully allocated image plus the data clusters.
 *
 * oVirt needs it as `initial_size` when a qcow2 disk is created on block storage for an upload:
 * vdsm sizes the logical volume from it and nothing grows the volume during the upload
 * (ovirt-engine's api-model ImageTransferService: "initial_size must be bigger or the same as the
 * size of the uploaded data"; the SDK's upload_disk.py runs `qemu-img measure` for it).
 * test/platforms/ovirt/qcow2-measure.test.ts checks it against the real qemu-img.
 */
const CLUSTER = 64 * 1024;
const L2_ENTRY = 8;
const L1_ENTRY = 8;
const REFTABLE_ENTRY = 8;
const REFCOUNT_BITS = 16;

const divUp = (a: number, b: number) => Math.ceil(a / b);
const roundUp = (a: number, b: number) => divUp(a, b) * b;

/** Bytes of refcount table and refcount blocks that cover `clusters` clusters and themselves. */
function refcountMetadataSize(clusters: number): number {
  const blocksPerTableCluster = CLUSTER / REFTABLE_ENTRY;
  const refcountsPerBlock = (CLUSTER * 8) / REFCOUNT_BITS;
  let table = 0;
  let blocks = 0;
  let n = 0;
  let last: number;
  // The fixed point where no more refcount clusters are needed to count every cluster.
  do {
    last = n;
    blocks = divUp(clusters + table + blocks, refcountsPerBlock);
    table = divUp(blocks, blocksPerTableCluster);
    n = clusters + blocks + table;
  } while (n !== last);
  return (blocks + table) * CLUSTER;
}

/** The size of a fully allocated qcow2 image of `virtualSize` bytes (metadata included). */
export function qcow2FullyAllocated(virtualSize: number): number {
  const aligned = roundUp(virtualSize, CLUSTER);
  let meta = CLUSTER; // header
  const l2Entries = roundUp(aligned / CLUSTER, CLUSTER / L2_ENTRY);
  meta += l2Entries * L2_ENTRY;
  const l1Entries = roundUp((l2Entries * L2_ENTRY) / CLUSTER, CLUSTER / L1_ENTRY);
  meta += l1Entries * L1_ENTRY;
  meta += refcountMetadataSize((meta + aligned) / CLUSTER);
  return meta + aligned;
}

/**
 * `qemu-img measure`'s "required size" for a qcow2 image of `virtualSize` bytes holding
 * `dataBytes` bytes of data (the allocated, non-zero ranges, each rounded out to whole clusters).
 */
export function qcow2Required(virtualSize: number, dataBytes: number): number {
  const aligned = roundUp(virtualSize, CLUSTER);
  return qcow2FullyAllocated(virtualSize) - aligned + Math.min(roundUp(dataBytes, CLUSTER), aligned);
}
