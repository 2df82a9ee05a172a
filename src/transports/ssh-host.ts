/**
 * A host reached over SSH as the appliance uses it beyond single commands: its runner, its SSH
 * target, and the appliance's scratch directory there. A platform gives it (LibvirtHost
 * .workerAccess()); the worker layer deploys and starts the worker on it (worker/deploy.ts).
 */
import type {CommandRunner} from './command-runner.js';
import type {SshTarget} from './ssh-args.js';

export interface SshHostAccess {
  /** The host's name in the configuration (for messages and the session log). */
  hostName: string;
  /** Commands on the host (its SSH runner). */
  runner: CommandRunner;
  /** The SSH target sessions of their own (the worker's stream) use. */
  ssh: SshTarget;
  /** The appliance's scratch directory on the host (checked by ensureScratchRoot: 0700, owned by the SSH user). */
  scratchDir: string;
  ensureScratchRoot(): Promise<void>;
  /** The names in the scratch directory. */
  scratchEntries(): Promise<string[]>;
  /** The appliance's private scratch directory (where the worker's bundle is staged). */
  localScratchDir: string;
}
