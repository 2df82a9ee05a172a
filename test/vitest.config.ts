import {fileURLToPath} from 'node:url';
import {defineConfig} from 'vitest/config';
import LongestFirst from './sequencer.js';

export default defineConfig({
  // The project root, not test/: paths below are relative to it.
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Files in one worker share its module graph (no test mocks modules or globals): importing the
    // program afresh for each of ~140 files cost ~100 s of the run, most visible at its end, where
    // short files follow each other.
    isolate: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests share libvirtd, loop devices and ports; files run one at a time per worker.
    // Three files at a time on the 2-core test machine: what one waits for (a VM, a daemon, systemd
    // in a container) another computes; measured 880 s of vitest against 911 s with two.
    maxWorkers: 3,
    // The longest files first (test/sequencer.ts), so none is left running alone at the end.
    sequence: {sequencer: LongestFirst},
  },
});
