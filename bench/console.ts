/**
 * Console benchmark (prints figures; not a test).
 *   node --import tsx bench/console.ts [--jobs 300] [--sessions 2000] [--keys 200]
 *
 * Renders the console's dashboard (80×24) against the in-memory fake daemon with --jobs jobs
 * and --sessions past sessions, then sends --keys ↓ presses and an Enter in ONE write (a burst
 * over SSH) and prints: time to the first full dashboard, time for the burst to open the right
 * job, and the time per live progress event (disk-progress) redrawn on the dashboard.
 */
import {performance} from 'node:perf_hooks';
import {parseArgs} from 'node:util';
import {createElement} from 'react';
import {App} from '../src/console/app/app.js';
import {makeSession, seeded} from '../test/console/fake-api.js';
import {KEY, renderTree} from '../test/console/harness.js';

(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = true;
process.env.FORCE_COLOR = '0';
const {values} = parseArgs({options: {jobs: {type: 'string', default: '300'}, sessions: {type: 'string', default: '2000'}, keys: {type: 'string', default: '200'}}});
const jobs = Number(values.jobs);
const sessions = Number(values.sessions);
const keys = Math.min(Number(values.keys), jobs - 1);

const api = seeded();
const template = api.data.jobs[0]!;
api.data.jobs = Array.from({length: jobs}, (_, i) => ({...template, id: `job-${String(i).padStart(4, '0')}`, name: `job ${String(i).padStart(4, '0')}`}));
api.sessionsList = Array.from({length: sessions}, (_, i) =>
  makeSession({id: `s-${i}`, jobId: `job-${String(i % jobs).padStart(4, '0')}`, jobName: `job ${i % jobs}`, startedAt: new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString(), state: i % 7 ? 'success' : 'warning'}),
);
api.sessionsList.push(makeSession({id: 'live', jobId: 'job-0000', jobName: 'job 0000', state: 'running', endedAt: undefined}));

let t = performance.now();
const r = await renderTree(createElement(App, {api}));
await r.waitFor('job 0000', 60_000);
const firstMs = performance.now() - t;

t = performance.now();
await r.press(KEY.down.repeat(keys) + KEY.enter);
const target = `job ${String(keys).padStart(4, '0')}`;
await r.waitFor(new RegExp(`${target}( –|\\n)`), 60_000);
const burstMs = performance.now() - t;
await r.press(KEY.esc);
await r.waitFor('Enter open job', 60_000);

const events = 500;
await r.act(() => api.emit({type: 'engine', sessionId: 'live', jobId: 'job-0000', event: {type: 'vm-started', vmId: 'v', vmName: 'v', incremental: false, disks: [{key: 'd', name: 'd', size: events}]}}));
t = performance.now();
for (let i = 1; i <= events; i++) await r.act(() => api.emit({type: 'engine', sessionId: 'live', jobId: 'job-0000', event: {type: 'disk-progress', vmId: 'v', disk: 'd', doneBytes: i, size: events, readBytes: i, rate: 1}}));
const perEventMs = (performance.now() - t) / events;
await r.unmount();

console.log(`console dashboard, ${jobs} jobs, ${sessions} sessions, 80×24`);
console.log(`  first full frame        ${firstMs.toFixed(0)} ms`);
console.log(`  burst of ${keys} ↓ + Enter  ${burstMs.toFixed(0)} ms (opened ${target})`);
console.log(`  live progress event     ${perEventMs.toFixed(2)} ms per event redrawn`);
process.exit(0);
