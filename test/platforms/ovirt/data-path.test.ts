/**
 * Where oVirt backup data is read from (BackupOptions.dataPath): from the host's imageio
 * (transfer_url) by default, and only through the engine's imageio proxy (proxy_url) when the
 * worker is the appliance itself (docs/reference/ovirt-backup-api.md §5.4: transfer_url is the host daemon,
 * proxy_url the engine's proxy).
 */
import {afterEach, beforeEach, expect, it} from 'vitest';
import {readSource, startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed;
beforeEach(async () => {
  bed = await startBed();
});
afterEach(async () => {
  await stopBed(bed);
});

async function readsVia(dataPath: 'host' | 'proxy' | undefined): Promise<Set<string>> {
  bed.sim.imageioLog.length = 0;
  const b = await bed.platform.openBackup(bed.sim.vm('web01').id, {log: bed.log, dataPath});
  try {
    for (const s of b.sources) await readSource(s);
  } finally {
    await b.complete();
  }
  return new Set(bed.sim.imageioLog.filter((l) => l.op === 'GET').map((l) => l.via));
}

it('reads from the host by default and through the engine proxy when asked', async () => {
  expect(await readsVia(undefined)).toEqual(new Set(['daemon']));
  expect(await readsVia('host')).toEqual(new Set(['daemon']));
  expect(await readsVia('proxy')).toEqual(new Set(['proxy']));
  // Choosing the proxy is not a fallback: no "host unreachable" message for it.
  expect(bed.events.some((e) => e.code === 'imageio-proxy')).toBe(false);
});
