/**
 * Session history benchmark (prints figures; not a test).
 *   node --import tsx bench/history.ts [--vms 20,200] [--sessions 100,1000] [--updates 40]
 *
 * For each history size (finished sessions of --vms VMs each, with a log line per VM) and each
 * implementation — the SQLite history (src/daemon/history.ts) and the JSON history it replaced
 * (bench/lib/json-history.ts, the code of git 5b486e0) — a running session of the same size is
 * saved --updates times, as the daemon saves it after each VM, and the wall and CPU time per save
 * and the bytes on disk are printed. Target (#16): an update costs O(1) in the history's size.
 */
import {mkdir, mkdtemp, readdir, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import type {SessionRecord} from '../src/api/session-model.js';
import {sessionTotals} from '../src/daemon/figures.js';
import {History} from '../src/daemon/history.js';
import {JsonHistory} from './lib/json-history.js';

const {values} = parseArgs({options: {vms: {type: 'string', default: '20,200'}, sessions: {type: 'string', default: '100,1000'}, updates: {type: 'string', default: '40'}}});
const vmCounts = values.vms.split(',').map(Number);
const sizes = values.sessions.split(',').map(Number);
const updates = Number(values.updates);

function session(i: number, vms: number, state: SessionRecord['state']): SessionRecord {
  const t = '2026-12-01T22:00:00Z';
  return {
    id: `s-${String(i).padStart(6, '0')}`,
    jobId: 'nightly',
    jobName: 'Nightly',
    state,
    trigger: 'schedule',
    attempt: 1,
    startedAt: t,
    repository: 'main',
    vms: Array.from({length: vms}, (_, v) => ({
      id: `00000000-0000-4000-8000-${String(v).padStart(12, '0')}`,
      name: `app-server-${v}`,
      state: 'success' as const,
      attempts: 1,
      restorePointId: `app-server-${v}-20261201t220000z-abcdef`,
      incremental: true,
      startedAt: t,
      endedAt: t,
      figures: {sizeBytes: 64 * 2 ** 30, readBytes: 2 ** 30, storedBytes: 2 ** 28, newPlainBytes: 2 ** 29, processedBytes: 2 ** 30, durationMs: 60_000, sourceMs: 30_000, repositoryMs: 20_000},
    })),
    log: Array.from({length: vms}, (_, v) => ({time: t, severity: 'info' as const, code: 'vm-finished', message: `app-server-${v}: incremental, 1.0 GiB read, 256 MiB stored`, vm: `app-server-${v}`})),
    totals: sessionTotals([], t, t),
  };
}

/** Bytes of the history's own files (not the JSON files the SQLite history set aside). */
async function du(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    const path = join(e.parentPath, e.name);
    if (e.isFile() && !path.includes('.migrated')) n += (await stat(path)).size;
  }
  return n;
}

interface Store {
  save(r: SessionRecord): Promise<void>;
}

async function measure(kind: 'sqlite' | 'json', history: number, vms: number): Promise<{msPerSave: number; cpuMsPerSave: number; bytes: number}> {
  const dir = await mkdtemp(join(tmpdir(), `vmb-bench-history-${kind}-`));
  try {
    // The history as an older daemon left it (sessions.json + a log file per session), written at
    // once: the SQLite history imports it on opening, the JSON one reads it.
    const old = Array.from({length: history}, (_, i) => session(i, vms, 'success'));
    await writeFile(join(dir, 'sessions.json'), JSON.stringify({version: 2, sessions: old.map(({log: _l, ...rest}) => rest)}), {mode: 0o600});
    await mkdir(join(dir, 'sessions'));
    for (const o of old) await writeFile(join(dir, 'sessions', `${o.id}.json`), JSON.stringify(o.log));
    const h: Store & {close?: () => void} = kind === 'sqlite' ? await History.open(dir, () => history + 10) : await JsonHistory.open(dir, () => history + 10);
    const running = session(history, vms, 'running');
    running.log = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let u = 0; u < updates; u++) {
      // After each VM: its state and a log line, as sessions.ts saves it.
      running.log.push({time: '2026-12-01T22:00:00Z', severity: 'info', code: 'vm-finished', message: `vm ${u} done`});
      await h.save(running);
    }
    const ms = (performance.now() - t0) / updates;
    const cpu = process.cpuUsage(cpu0);
    h.close?.();
    return {msPerSave: ms, cpuMsPerSave: (cpu.user + cpu.system) / 1000 / updates, bytes: await du(dir)};
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

console.log(`Node ${process.version}; ${updates} saves of a running session per row (wall and CPU per save)`);
console.log('VMs/session  history   | SQLite ms  CPU ms  on disk   | JSON ms  CPU ms  on disk');
for (const vms of vmCounts) {
  for (const n of sizes) {
    const s = await measure('sqlite', n, vms);
    const j = await measure('json', n, vms);
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log(
      `${String(vms).padStart(11)}  ${String(n).padStart(7)}   | ${s.msPerSave.toFixed(2).padStart(9)} ${s.cpuMsPerSave.toFixed(2).padStart(7)} ${mib(s.bytes).padStart(9)}   | ${j.msPerSave.toFixed(1).padStart(7)} ${j.cpuMsPerSave.toFixed(1).padStart(7)} ${mib(j.bytes).padStart(9)}`,
    );
  }
}
