/**
 * The control API's contract, with its client (client.ts) in this directory: the default socket,
 * and the shapes of replies that more than one side relies on, as schemas. The daemon builds
 * these replies through them (so it cannot send another shape), the console's and CLI's types
 * come from them, and the console's test fake is checked against them and against the real
 * daemon's replies (test/console/fake-contract.test.ts). The routes are listed at the top of
 * src/daemon/api.ts, which serves them.
 */
import {z} from 'zod';

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
