/**
 * Freeze/thaw ordering around the start of a backup. A guest agent cannot run here (the test VMs
 * have no OS), so virsh is replaced by a scripted CommandRunner that answers like libvirt does.
 */
import {describe, expect, it} from 'vitest';
import type {CommandRunner, RunOptions, RunResult} from '../../../src/transports/command-runner.js';
import {UserError} from '../../../src/util/errors.js';
import {withGuestFrozen} from '../../../src/platforms/libvirt/guest-freeze.js';
import {LibvirtHost} from '../../../src/platforms/libvirt/host.js';
import type {SessionEvent} from '../../../src/platforms/types.js';

function scripted(answers: Record<string, () => Promise<RunResult>>): {host: LibvirtHost; calls: string[]} {
  const calls: string[] = [];
  const runner: CommandRunner = {
    where: 'scripted',
    async run(argv: readonly string[], _opts?: RunOptions): Promise<RunResult> {
      const verb = argv[4]!; // virsh -q -c URI <verb>
      calls.push(verb);
      const answer = answers[verb];
      if (!answer) throw new Error(`unexpected ${argv.join(' ')}`);
      return answer();
    },
  };
  return {host: new LibvirtHost({name: 'h', connection: {kind: 'local'}}, {runner, scratchDir: '/tmp/x', localScratchDir: '/tmp/y'}), calls};
}

const ok = async (): Promise<RunResult> => ({stdout: '', stderr: '', exitCode: 0});

describe('withGuestFrozen', () => {
  it('freezes, runs the step, thaws — also when the step fails', async () => {
    const {host, calls} = scripted({domfsfreeze: ok, domfsthaw: ok});
    const order: string[] = [];
    await expect(
      withGuestFrozen(host, 'u', 'vm', true, () => {}, async () => {
        order.push(...calls);
        throw new Error('backup-begin failed');
      }),
    ).rejects.toThrow('backup-begin failed');
    expect(order).toEqual(['domfsfreeze']);
    expect(calls).toEqual(['domfsfreeze', 'domfsthaw']);
  });

  it('without an agent: warns no-guest-agent, runs the step, does not thaw', async () => {
    const {host, calls} = scripted({
      domfsfreeze: async () => ({stdout: '', stderr: 'error: Guest agent is not responding: QEMU guest agent is not connected', exitCode: 1}),
    });
    const events: SessionEvent[] = [];
    expect(await withGuestFrozen(host, 'u', 'vm', true, (e) => events.push(e), async () => 42)).toBe(42);
    expect(events.map((e) => e.code)).toEqual(['no-guest-agent']);
    expect(calls).toEqual(['domfsfreeze']);
  });

  it('a freeze that times out is still followed by a thaw', async () => {
    const {host, calls} = scripted({
      domfsfreeze: async () => {
        throw new UserError('virsh domfsfreeze u on scripted did not finish within 30 s and was stopped.');
      },
      domfsthaw: ok,
    });
    const events: SessionEvent[] = [];
    await withGuestFrozen(host, 'u', 'vm', true, (e) => events.push(e), async () => {});
    expect(calls).toEqual(['domfsfreeze', 'domfsthaw']);
    expect(events.map((e) => e.code)).toEqual(['no-guest-agent']);
  });

  it('a failing thaw is a warning, not a failed backup', async () => {
    const {host} = scripted({domfsfreeze: ok, domfsthaw: async () => ({stdout: '', stderr: 'thaw failed', exitCode: 1})});
    const events: SessionEvent[] = [];
    await withGuestFrozen(host, 'u', 'vm', true, (e) => events.push(e), async () => {});
    expect(events.map((e) => e.code)).toEqual(['guest-thaw-failed']);
  });

  it('does nothing when consistency is off', async () => {
    const {host, calls} = scripted({});
    await withGuestFrozen(host, 'u', 'vm', false, () => {}, async () => {});
    expect(calls).toEqual([]);
  });
});
