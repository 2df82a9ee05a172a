/**
 * The control API's contract, with its client (client.ts) in this directory: the default socket,
 * and the shapes of replies that more than one side relies on, as schemas. The daemon builds
 * these replies through them (so it cannot send another shape), the console's and CLI's types
 * come from them, and the console's test fake is checked against them and against the real
 * daemon's replies (test/console/fake-contract.test.ts). The routes are listed at the top of
 * src/daemon/api.ts, which serves them.
 */
import {z} from 'zod';
import type {EngineEvent} from '../engine/events.js';
import {ExitCode, UserError} from '../util/errors.js';
import type {SessionRecord} from './session-model.js';

/** Where the daemon listens unless told otherwise (--socket, $VMBACKUP_SOCKET). */
export const DEFAULT_SOCKET = '/run/vmbackup/api.sock';

/** A public host key as a known_hosts line holds it after the host names: "ssh-ed25519 AAAA…". */
export const publicHostKey = z
  .string()
  .regex(/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+$/, {
    error: 'must be a public host key such as "ssh-ed25519 AAAA…"',
  });

/** POST /connections/ssh-hostkey → the keys a host presents, to confirm before trusting one. */
export const hostKeyScanReply = z.object({
  keys: z.array(
    z.object({
      /** The key's algorithm as in the key itself: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa. */
      type: z.string().regex(/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)$/),
      /** "SHA256:…" as `ssh-keygen -lf` prints it on the host. */
      fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]+$/),
      /** What a connection's `hostKey` takes. */
      key: publicHostKey,
    }),
  ),
});
export type HostKeyScanReply = z.infer<typeof hostKeyScanReply>;

/** POST /restores/plan → what the restore would do (platforms/types.ts RestorePlan), before it starts. */
export const restorePlanReply = z.object({
  target: z.string(),
  creates: z.array(z.string()),
  replaces: z.array(z.string()),
  notes: z.array(z.string()),
});
export type RestorePlanReply = z.infer<typeof restorePlanReply>;

/** GET /appliance/ssh-key → the appliance's own SSH key, for the hosts' authorized_keys. */
export const applianceSshKeyReply = z.object({
  /** The private key file connections use by default. */
  identityFile: z.string(),
  /** The public key line ("ssh-ed25519 AAAA… vmbackup@host"). */
  publicKey: z.string().regex(/^ssh-ed25519 [A-Za-z0-9+/=]+( \S+)?$/),
  fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]+$/),
  /** The one line to run on a KVM host (as root) so that the appliance may log in. */
  authorizeCommand: z.string(),
});
export type ApplianceSshKeyReply = z.infer<typeof applianceSshKeyReply>;

/** What the daemon streams to its clients (GET /events). */
export type DaemonEvent =
  | {type: 'engine'; sessionId: string; jobId: string; event: EngineEvent}
  | {type: 'session'; session: Omit<SessionRecord, 'log'>}
  | {type: 'maintenance'; repository: string; action: string; state: 'started' | 'finished' | 'failed'; detail?: string}
  | {type: 'config'; collection: string};


/** POST /webhooks/:id/test: the receiver's answer, or why there was none. */
export interface TestWebhookReply {
  ok: boolean;
  /** The HTTP status the receiver answered (success). */
  status?: number;
  /** The start of its answer, one line. */
  answer?: string;
  error?: {message: string; hint?: string; exitCode: number};
}

export interface TestEmailReply {
  ok: boolean;
  /** The recipients the server accepted (success). */
  accepted?: string[];
  /** What went wrong, in words (failure; the same as error.message). */
  message?: string;
  error?: {message: string; hint?: string; exitCode: number};
}


export interface PruneReply {
  ok: true;
  removed: number;
  kept: number;
  /** One entry per VM and job (a VM that two jobs back up here has two). */
  vms: {id: string; name: string; job: string; removed: number; kept: number}[];
  /** VMs with restore points that no job of this repository backs up: not pruned. */
  unassigned: {id: string; name: string}[];
}


export interface RestorePointInfo {
  id: string;
  vmId: string;
  vmName: string;
  time: string;
  type: string;
  sizeBytes: number;
  storedBytes: number;
  protected: boolean;
  platform: string;
  disks: {key: string; name: string; size: number}[];
  /**
   * Whether the VM is still in the inventory of the connection it was backed up from; absent when
   * that cannot be told (no such connection any more, or its inventory could not be read in time).
   * The restore wizard offers "to its original place" only when the VM is there.
   */
  vmExists?: boolean;
}


export interface DemoLabVm {
  id: string;
  name: string;
}


export interface DemoLabResult {
  repository: {id: string; name: string; path: string};
  libvirt: {connection: string; name: string; vms: DemoLabVm[]; kvm: boolean};
  ovirt: {connection: string; name: string; url: string; caFingerprint: string; vms: DemoLabVm[]};
  /** What this call added or changed ("repository Demo repository", ...); empty when all was there. */
  changed: string[];
  /** One line for the console and the CLI. */
  summary: string;
}


/**
 * The first set-up may install packages for longer than a client waits for an answer (undici's
 * headers timeout): the daemon carries on, and asking again picks up what is done. Clients
 * turn that timeout into this UserError; anything else is returned unchanged.
 */
export function stillSettingUp(err: unknown): unknown {
  if ((err as {code?: unknown} | undefined)?.code !== 'UND_ERR_HEADERS_TIMEOUT') return err;
  return new UserError('The daemon is still setting up the demo lab (packages are being installed).', {
    hint: 'Ask again in a minute ("vmbackup demo-lab" or try again here): it picks up what is done already; the daemon log shows each step.',
    exitCode: ExitCode.unreachable,
  });
}


export interface AuditEntry {
  time: string;
  uid: number;
  user: string;
  /** The role the request was judged with; none when the user has none. */
  role: string;
  method: string;
  path: string;
  outcome: 'ok' | 'refused' | 'failed';
  status: number;
  /** The error message of a refused or failed change. */
  error?: string;
}

/** A file browser over a restore point (POST /files). */
export interface FileSessionInfo {
  id: string;
  repository: string;
  restorePointId: string;
  vmName: string;
  time: string;
  disks: string[];
  layout: GuestLayout;
}
export type {GuestEntry, GuestLayout} from '../engine/guest-files.js';
import type {GuestLayout} from '../engine/guest-files.js';

/** A running instant recovery (GET /instant-recoveries). */
export interface InstantRecoveryInfo {
  /** Also its session's id. */
  id: string;
  /** The instant VM's name. */
  name: string;
  /** The backed-up VM's name. */
  vmName: string;
  host: string;
  connection: string;
  repository: string;
  restorePointId: string;
  restorePointTime: string;
  startedAt: string;
  network: boolean;
  /** The directory of its overlays on the host. */
  storage: string;
  disks: {key: string; overlay: string}[];
  /** starting → running → migrating → (gone: finished or stopped). */
  phase: 'starting' | 'running' | 'migrating';
  progress?: {doneBytes: number; totalBytes: number};
  /** The last thing that went wrong (a failed move to storage, an export not served again). */
  error?: string;
}

/** A repository's retention lock, and what holds it (GET/PUT /repositories/:id/lock). */
export interface RetentionLockReply {
  lock: {days: number; setAt: string} | null;
  /** True only where the storage itself refuses deletion (S3 Object Lock, probed). */
  storageEnforced: boolean;
  /** What the lock holds against, in words. */
  note: string;
}
