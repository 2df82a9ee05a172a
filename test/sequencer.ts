/**
 * The order test files start in: the longest first (measured on the 2-core test machine, CI
 * runs of 2026-12-07), then the rest in vitest's own order. Three files run at a time; with the
 * long ones last, the suite ended with one or two of them running alone for minutes while the
 * other workers had nothing left (926 s against 2173 s of file time / 3). Only the order changes.
 */
import {BaseSequencer, type TestSpecification} from 'vitest/node';

const LONGEST_FIRST = [
  'test/package/deb.test.ts',
  'test/cli/files.test.ts',
  'test/console/e2e-ssh-host.test.ts',
  'test/platforms/libvirt/ssh-host.test.ts',
  'test/daemon/jobs.test.ts',
  'test/platforms/libvirt/nvram.test.ts',
  'test/daemon/verify-boot.test.ts',
  'test/daemon/instant.test.ts',
  'test/cli/interrupt.test.ts',
  'test/console/e2e-tmux.test.ts',
  'test/cli/s3.test.ts',
  'test/security/roles.test.ts',
  'test/cli/docs.test.ts',
  'test/daemon/cli-config.test.ts',
  'test/daemon/files.test.ts',
  'test/daemon/encrypted-repository.test.ts',
  'test/platforms/libvirt/backup-running.test.ts',
  'test/engine/libvirt-engine.test.ts',
];

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.endsWith(`/${name}`));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}
