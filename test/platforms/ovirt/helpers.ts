/**
 * Shared helpers for the oVirt adapter tests: a simulator + adapter pair, an event collector,
 * and a reader that drives a DiskSource the way the engine will (extents, then reads).
 */
import {OvirtPlatform} from '../../../src/platforms/ovirt/platform.js';
import type {DiskSource, SessionEvent} from '../../../src/platforms/types.js';
import {startSimulator, type SimOptions, type Simulator} from '../../ovirt-sim/index.js';

export interface Bed {
  sim: Simulator;
  platform: OvirtPlatform;
  events: SessionEvent[];
  log: (e: SessionEvent) => void;
}

export async function startBed(opts: SimOptions = {}, platformOpts: Partial<ConstructorParameters<typeof OvirtPlatform>[0]> = {}): Promise<Bed> {
  const sim = await startSimulator({delayMs: 10, ...opts});
  const platform = new OvirtPlatform({
    url: sim.url, user: sim.user, password: sim.password, caPem: sim.caPem, pollIntervalMs: 10, phaseTimeoutMs: 30_000,
    ...platformOpts,
  });
  const events: SessionEvent[] = [];
  return {sim, platform, events, log: (e) => events.push(e)};
}

/** A new adapter on the same simulator: the appliance after a crash and restart (same appliance id). */
export async function restartPlatform(bed: Bed): Promise<void> {
  await bed.platform.close().catch(() => undefined);
  bed.platform = new OvirtPlatform({url: bed.sim.url, user: bed.sim.user, password: bed.sim.password, caPem: bed.sim.caPem, pollIntervalMs: 10, phaseTimeoutMs: 30_000});
}

export async function stopBed(bed: Bed | undefined): Promise<void> {
  if (!bed) return;
  await bed.platform.close().catch(() => undefined);
  await bed.sim.stop();
}

/**
 * Reads a source into a full image: data extents are read (in pieces of at most 1 MiB, several
 * at once), zero extents become zeros, unchanged extents keep `base`. Returns the image and the
 * ranges read.
 */
export async function readSource(src: DiskSource, base?: Buffer): Promise<{image: Buffer; reads: [number, number][]; kinds: Record<string, number>}> {
  const image = base ? Buffer.from(base) : Buffer.alloc(src.size);
  const reads: [number, number][] = [];
  const kinds: Record<string, number> = {data: 0, zero: 0, unchanged: 0};
  const jobs: [number, number][] = [];
  let expect = 0;
  for await (const e of src.extents()) {
    if (e.offset !== expect) throw new Error(`extent gap at ${expect}`);
    expect = e.offset + e.length;
    kinds[e.kind] = (kinds[e.kind] ?? 0) + e.length;
    if (e.kind === 'zero') image.fill(0, e.offset, e.offset + e.length);
    if (e.kind === 'data') for (let o = e.offset; o < e.offset + e.length; o += 2 ** 20) jobs.push([o, Math.min(2 ** 20, e.offset + e.length - o)]);
  }
  if (expect !== src.size) throw new Error(`extents cover ${expect} of ${src.size}`);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const [o, l] = jobs[next++]!;
      const buf = await src.read(o, l);
      buf.copy(image, o);
      reads.push([o, l]);
    }
  };
  await Promise.all(Array.from({length: src.maxParallelReads}, worker));
  reads.sort((a, b) => a[0] - b[0]);
  return {image, reads, kinds};
}
