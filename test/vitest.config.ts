import {fileURLToPath} from 'node:url';
import {defineConfig} from 'vitest/config';

export default defineConfig({
  // The project root, not test/: paths below are relative to it.
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests share libvirtd, loop devices and ports; files run one at a time per worker.
    // Three on the 2-core test machine: much of the suite waits (VMs booting, daemons starting,
    // systemd in a container, polls), so a third file keeps the cores busy (suite 15.6 → see README).
    maxWorkers: 3,
  },
});
