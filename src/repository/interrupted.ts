/**
 * Writers that died before their sync(): making their chunk files safe to reuse.
 *
 * On a backend with deferWorkerSync (the local directory) a chunk file is visible under its name
 * before its bytes are durable: the writer's commit syncs the file system once (storage/local.ts).
 * A writer that dies before that leaves its registration (writers/<id>.json) behind, marked
 * `chunkSync: "deferred"` with the boot it ran in. What its files hold then depends on how it died:
 *
 *  - its process was killed, the machine kept running: the bytes are in the page cache and reach
 *    the disk by themselves; one file-system sync makes that certain, and nothing is read;
 *  - the machine crashed or lost power (the boot id differs): a file the crash caught between its
 *    rename and the disk may be empty or short (ext4 and XFS commit the name before delayed
 *    allocation writes the data). Reusing it would let a later restore point commit a chunk that
 *    is not there, so every chunk file changed since that writer started is read and checked
 *    against its id, and a damaged one is set aside as verify does (<id>.bad): the next backup
 *    that meets the data writes it again.
 *
 * Either way the registration is then marked settled (GC removes it later, as any dead writer's).
 * A writer begins, and GC starts, only after this ran: nothing reuses or sweeps a chunk the crash
 * may have damaged before it was looked at. Registrations of live writers, of other hosts (whose
 * liveness cannot be judged from here) and of writers that fsynced each file are left alone.
 */
import {readFileSync} from 'node:fs';
import type {RepoContext} from './context.js';
import {WRITERS_DIR} from './layout.js';
import {parseOwner} from './lock.js';
import {parallelFor} from '../util/parallel-for.js';

/** This boot of the machine (a new one after every restart or crash). */
export const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
})();

/** What a writer registration records besides its owner (writer.ts start()). */
export interface RegistrationSync {
  /** 'deferred': its chunk files were not fsynced one by one; 'settled': checked since it died. */
  chunkSync?: 'deferred' | 'settled';
  bootId?: string;
}

export interface SettleReport {
  /** Dead writers of this boot whose files a file-system sync made durable. */
  flushed: string[];
  /** Dead writers of an earlier boot whose files were checked. */
  checkedWriters: string[];
  checkedChunks: number;
  /** Chunk files found damaged and set aside. */
  quarantined: string[];
}

/** Chunk files modified this long before a writer's recorded start are checked too (clocks move). */
const CLOCK_SLACK_MS = 2 * 60_000;
const CHECK_PARALLEL = 8;

/**
 * Settles every dead writer with deferred chunk syncs (see the file comment). Cheap when there
 * is none: one listing of writers/.
 */
export async function settleInterruptedWriters(ctx: RepoContext): Promise<SettleReport> {
  const backend = ctx.backend;
  const report: SettleReport = {flushed: [], checkedWriters: [], checkedChunks: 0, quarantined: []};
  const flush: {key: string; text: string}[] = [];
  const check: {key: string; text: string; since: number}[] = [];
  for (const e of await backend.list(WRITERS_DIR)) {
    if (e.dir || !e.name.endsWith('.json')) continue;
    const key = `${WRITERS_DIR}/${e.name}`;
    const raw = await backend.get(key, {max: 64 << 10, what: 'writer registration'}).catch(() => undefined);
    if (raw === undefined) continue;
    const text = raw.toString('utf8');
    let reg: RegistrationSync;
    try {
      reg = JSON.parse(text) as RegistrationSync;
    } catch {
      continue;
    }
    if (reg.chunkSync !== 'deferred') continue;
    const owner = parseOwner(text);
    if (!owner || backend.ownerAlive(owner)) continue;
    if (reg.bootId !== undefined && reg.bootId !== '' && reg.bootId === BOOT_ID) flush.push({key, text});
    else check.push({key, text, since: owner.since});
  }
  if (flush.length === 0 && check.length === 0) return report;

  if (flush.length > 0) {
    await (backend.syncWorkerWrites?.() ?? backend.sync());
    report.flushed = flush.map((f) => f.key);
  }
  if (check.length > 0) {
    const since = Math.min(...check.map((c) => c.since)) - CLOCK_SLACK_MS;
    for await (const names of ctx.store.idBatches()) {
      await parallelFor(names.length, CHECK_PARALLEL, async (i) => {
        const hex = names[i]!;
        const info = await backend.stat(ctx.store.key(hex));
        if (!info || info.modifiedMs < since) return;
        report.checkedChunks++;
        const r = await ctx.store.check(hex, {verify: true, want: false});
        if (r.status !== 'damaged') return;
        await ctx.store.quarantine(hex);
        report.quarantined.push(hex);
      });
    }
    report.checkedWriters = check.map((c) => c.key);
  }
  // Settled: the files are durable or set aside. The registration stays for GC (dead writer).
  for (const r of [...flush, ...check]) {
    const reg = JSON.parse(r.text) as Record<string, unknown>;
    await backend.put(r.key, [Buffer.from(JSON.stringify({...reg, chunkSync: 'settled'}))]);
  }
  await backend.sync();
  return report;
}

/** The report as one line for a log or a restore point's warnings; undefined when nothing happened. */
export function describeSettled(r: SettleReport, where: string): string | undefined {
  if (r.checkedWriters.length === 0) return undefined;
  const set = r.quarantined.length === 0 ? 'none was damaged' : `${r.quarantined.length} damaged ${r.quarantined.length === 1 ? 'one was' : 'ones were'} set aside and will be written again when their data is backed up`;
  return `${r.checkedWriters.length} backup(s) in ${where} were interrupted by a restart of the machine; the ${r.checkedChunks} chunk file(s) written since they began were checked: ${set}.`;
}
