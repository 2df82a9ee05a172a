/**
 * Image transfers on the engine (docs/reference/ovirt-backup-api.md §5): create with explicit direction, raw
 * format and inactivity timeout; wait for `transferring`; finalize or cancel and wait for a
 * terminal phase. Only finished_success and finished_failure are terminal (gotcha 3).
 */
import {ExitCode, UserError} from '../../util/errors.js';
import type {EngineClient} from './engine-client.js';
import {obj, str} from './json.js';
import {pollUntil, type PollOptions} from './poll.js';

export interface TransferRequest {
  diskId: string;
  backupId?: string;
  direction: 'download' | 'upload';
  /** Seconds without imageio activity before the engine cancels (gotcha 13). */
  inactivityTimeout: number;
}

export interface Transfer {
  id: string;
  transferUrl?: string;
  proxyUrl?: string;
}

const TERMINAL = new Set(['finished_success', 'finished_failure']);

export async function transferPhase(client: EngineClient, id: string): Promise<string | undefined> {
  const t = await client.find(`/imagetransfers/${id}`);
  return t ? str(t.phase) : undefined;
}

export async function startTransfer(client: EngineClient, req: TransferRequest, poll: PollOptions): Promise<Transfer> {
  const created = await client.post('/imagetransfers', {
    disk: {id: req.diskId},
    ...(req.backupId ? {backup: {id: req.backupId}} : {}),
    // The default direction is upload (gotcha 1); format raw gives NBD, extents, 8 readers (gotcha 20).
    direction: req.direction,
    format: 'raw',
    inactivity_timeout: req.inactivityTimeout,
    timeout_policy: 'cancel',
  });
  const id = str(created.id);
  if (!id) throw new UserError('The engine created an image transfer without an id.', {exitCode: ExitCode.platformFailed});
  try {
    return await pollUntil(`image transfer of disk ${req.diskId} to start`, poll, async () => {
      const t = await client.find(`/imagetransfers/${id}`);
      if (!t) throw new UserError(`The engine removed image transfer ${id} of disk ${req.diskId} before it started.`, {exitCode: ExitCode.platformFailed});
      const phase = str(t.phase);
      if (phase === 'transferring') return {id, transferUrl: str(t.transfer_url), proxyUrl: str(t.proxy_url)};
      if (phase === 'initializing' || phase === 'resuming') return undefined;
      throw new UserError(`Image transfer of disk ${req.diskId} did not start (phase ${phase}).`, {
        hint: 'See the engine events for the disk; a host must be up in the data center and the disk must not be locked.',
        exitCode: ExitCode.platformFailed,
      });
    });
  } catch (err) {
    await endTransfer(client, id, req.direction === 'download' ? 'finalize' : 'cancel', poll).catch(() => undefined);
    throw err;
  }
}

/**
 * Ends a transfer and waits until it is terminal. Downloads are always finalized; `cancel` on an
 * upload deletes the target disk (gotcha 2), which is what an aborted restore wants.
 * Returns the final phase, or 'gone' when the engine already dropped the entity (old engines).
 */
export async function endTransfer(client: EngineClient, id: string, how: 'finalize' | 'cancel', poll: PollOptions): Promise<string> {
  const phase = await transferPhase(client, id);
  if (phase === undefined) return 'gone';
  if (TERMINAL.has(phase)) return phase;
  if (['transferring', 'paused_user', 'paused_system', 'initializing', 'resuming'].includes(phase)) {
    try {
      await client.post(`/imagetransfers/${id}/${how}`, {});
    } catch (err) {
      // Raced with the engine ending it (inactivity timeout): fall through to waiting.
      if (!(err instanceof UserError)) throw err;
    }
  }
  return pollUntil(`image transfer ${id} to finish`, poll, async () => {
    const t = await client.find(`/imagetransfers/${id}`);
    if (!t) return 'gone';
    const p = str(obj(t).phase) ?? '';
    return TERMINAL.has(p) ? p : undefined;
  });
}
