/**
 * The configuration objects of the appliance, as zod schemas: repositories, connections (oVirt
 * engines and HPE Morpheus VM Essentials servers = named groups of KVM hosts), workers, email
 * settings (the notify layer's schema), appliance settings and backup jobs.
 *
 * The store, the control API, the CLI and the console all validate through these, so a bad field
 * gets the same message everywhere. Field names are part of the API: add, never rename.
 * References between objects (a job's repository, a worker's connection) are checked by
 * references.ts, because a single object cannot see the others.
 */
import {z} from 'zod';
import {emailSettingsSchema, jobNotificationSchema} from '../notify/settings.js';
import {WEBHOOK_FORMATS} from '../notify/webhooks.js';
import {absolutePath, description, displayName, id, jobName, secret, timeOfDay, weekday, whole} from './fields.js';
import {scheduleSchema} from './schedule.js';
import {isS3Url, parseS3Url} from '../util/s3-url.js';
import {isSshUrl, parseSshUrl} from '../util/ssh-url.js';

// ---- repositories ----------------------------------------------------------------------------

/** The credentials of a repository in an S3 bucket (the S3 backend signs with them; never sent anywhere else). */
export const s3CredentialsSchema = z.object({
  accessKeyId: z.string({error: 'must be an access key id'}).regex(/^[\x21-\x7e]{1,256}$/, {error: 'must be an access key id (printable, no spaces)'}),
  secretAccessKey: secret().regex(/^[\x21-\x7e]{1,256}$/, {error: 'must be a secret access key (printable, no spaces)'}),
  region: z.string({error: 'must be a region name'}).regex(/^[a-z0-9-]{1,64}$/, {error: 'must be a region name such as us-east-1'}).default('us-east-1'),
  /** A PEM file of the CA that signed the server's certificate (a private CA); the system's CAs otherwise. */
  caFile: absolutePath().optional(),
});

/**
 * How the appliance logs in to another appliance that keeps a repository (ssh://USER@HOST[:PORT]/PATH;
 * it serves the directory with `vmbackup repo serve`).
 */
export const sshRepositorySchema = z
  .object({
    /** The far machine's host key, one known_hosts line without the host name ("ssh-ed25519 AAAA..."): never trusted unseen. */
    hostKey: z
      .string({error: 'must be a host key line'})
      .regex(/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( [^\r\n]*)?$/, {error: 'must be a public host key such as "ssh-ed25519 AAAA…" (from ssh-keyscan)'}),
    /** The private key to log in with; default the appliance's own (vmbackup appliance ssh-key). */
    identityFile: absolutePath().optional(),
    /** The vmbackup command on the far machine; default `vmbackup` on its PATH. */
    remoteVmbackup: absolutePath().optional(),
  })
  .strict();

/** A local directory (absolute path), an S3 bucket (s3://HOST[:PORT]/BUCKET[/PREFIX], s3+http://…) or another appliance (ssh://…). */
const repositoryPath = () =>
  z.string({error: 'must be an absolute path, an s3:// or an ssh:// address'}).superRefine((p, ctx) => {
    if (isS3Url(p) || isSshUrl(p)) {
      try {
        if (isS3Url(p)) parseS3Url(p);
        else parseSshUrl(p);
      } catch (err) {
        ctx.addIssue({code: 'custom', message: err instanceof Error ? err.message : String(err)});
      }
      return;
    }
    const r = absolutePath().safeParse(p);
    if (!r.success) ctx.addIssue({code: 'custom', message: r.error.issues[0]?.message ?? 'must be an absolute path'});
  });

export const repositorySchema = z
  .object({
    id: id(),
    name: displayName(),
    /**
     * A directory on a local disk, or an S3 bucket (s3://HOST[:PORT]/BUCKET[/PREFIX]; s3+http:// for
     * plain HTTP); created as a repository when it does not hold one yet.
     */
    path: repositoryPath(),
    /** The credentials of a repository in an S3 bucket: required there, refused elsewhere. */
    s3: s3CredentialsSchema.optional(),
    /** How to reach a repository on another appliance (an ssh:// path): required there, refused elsewhere. */
    ssh: sshRepositorySchema.optional(),
    /** When the health check (verify) of this repository runs. Default: Sundays at 04:00. */
    healthCheck: scheduleSchema.default({kind: 'daily', at: '04:00', days: ['sun']}),
    /**
     * The passphrase of an encrypted repository (repository/crypto.ts). A new repository at `path`
     * is made encrypted with it; an existing one must be encrypted and open with it.
     */
    passphrase: secret()
      .min(8, {error: 'must be at least 8 characters'})
      .max(1024, {error: 'must be at most 1024 characters'})
      .regex(/^[^\r\n]*$/, {error: 'must be one line'})
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (isS3Url(r.path) && r.s3 === undefined) ctx.addIssue({code: 'custom', path: ['s3'], message: 'is required for a repository in an S3 bucket (accessKeyId, secretAccessKey, region)'});
    if (!isS3Url(r.path) && r.s3 !== undefined) ctx.addIssue({code: 'custom', path: ['s3'], message: 'is only for a repository in an S3 bucket (an s3:// path)'});
    if (isSshUrl(r.path) && r.ssh === undefined) ctx.addIssue({code: 'custom', path: ['ssh'], message: "is required for a repository on another appliance (hostKey: the far machine's SSH host key)"});
    if (!isSshUrl(r.path) && r.ssh !== undefined) ctx.addIssue({code: 'custom', path: ['ssh'], message: 'is only for a repository on another appliance (an ssh:// path)'});
  });
export type RepositoryConfig = z.output<typeof repositorySchema>;

// ---- connections -----------------------------------------------------------------------------

const hostName = () =>
  z
    .string({error: 'must be a host name or IP address'})
    .trim()
    .min(1, {error: 'is required'})
    .regex(/^[A-Za-z0-9._:\-[\]]+$/, {error: 'must be a host name or IP address (no spaces, slashes or URL)'});

export const sshConnectionSchema = z
  .object({
    kind: z.literal('ssh'),
    host: hostName(),
    port: whole(1, 65535).default(22),
    user: z.string({error: 'must be a user name'}).regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, {error: 'must be a user name (letters, digits, _ . -)'}),
    /** Private key on the appliance used to log in. */
    identityFile: absolutePath(),
    /** A known_hosts file that holds the host's key ... */
    knownHostsFile: absolutePath().optional(),
    /** ... or the host key itself, one known_hosts line without the host name ("ssh-ed25519 AAAA..."). */
    hostKey: z
      .string({error: 'must be a host key line'})
      .regex(/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$/, {
        error: 'must be a public host key such as "ssh-ed25519 AAAA…" (from ssh-keyscan)',
      })
      .optional(),
  })
  .refine((c) => c.knownHostsFile !== undefined || c.hostKey !== undefined, {
    error: 'needs knownHostsFile or hostKey (the appliance never trusts an unknown host key)',
    path: ['hostKey'],
  });

export const hostConnectionSchema = z.discriminatedUnion('kind', [z.object({kind: z.literal('local')}), sshConnectionSchema], {
  error: "must have kind 'local' or 'ssh'",
});

export const kvmHostSchema = z.object({name: displayName(), connection: hostConnectionSchema});

export const morpheusConnectionSchema = z.object({
  id: id(),
  kind: z.literal('morpheus'),
  name: displayName(),
  clusters: z
    .array(z.object({name: displayName(), hosts: z.array(kvmHostSchema).min(1, {error: 'must list at least one host'})}), {error: 'must be a list of clusters'})
    .min(1, {error: 'must list at least one cluster'})
    .superRefine((clusters, ctx) => {
      const seen = new Set<string>();
      clusters.forEach((c, ci) =>
        c.hosts.forEach((h, hi) => {
          if (seen.has(h.name)) ctx.addIssue({code: 'custom', message: `host name '${h.name}' is used twice`, path: [ci, 'hosts', hi, 'name']});
          seen.add(h.name);
        }),
      );
    }),
});

export const ovirtConnectionSchema = z.object({
  id: id(),
  kind: z.literal('ovirt'),
  name: displayName(),
  url: z
    .string({error: 'must be an https:// URL'})
    .trim()
    .refine((u) => {
      try {
        return new URL(u).protocol === 'https:';
      } catch {
        return false;
      }
    }, {error: 'must be an https:// URL such as https://engine.example.com/ovirt-engine'}),
  user: z.string({error: 'must be text'}).trim().min(1, {error: 'is required'}).regex(/@/, {error: 'must include the profile, e.g. admin@internal'}),
  password: secret().min(1, {error: 'is required'}),
  /** The engine CA the administrator confirmed, PEM. */
  caPem: z.string({error: 'must be a PEM certificate'}).refine((p) => p.includes('-----BEGIN CERTIFICATE-----'), {error: 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)'}),
  /** SHA-256 fingerprint shown when the CA was confirmed. */
  caFingerprint: z.string({error: 'must be text'}).regex(/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/, {error: 'must be a SHA-256 fingerprint (32 hex pairs separated by colons)'}).optional(),
});

export const connectionSchema = z.discriminatedUnion('kind', [ovirtConnectionSchema, morpheusConnectionSchema], {
  error: "must have kind 'ovirt' (OLVM/oVirt engine) or 'morpheus' (HPE Morpheus VM Essentials hosts)",
});
export type ConnectionConfig = z.output<typeof connectionSchema>;
export type OvirtConnectionConfig = z.output<typeof ovirtConnectionSchema>;
export type MorpheusConnectionConfig = z.output<typeof morpheusConnectionSchema>;
export type HostConnectionConfig = z.output<typeof hostConnectionSchema>;

// ---- workers ---------------------------------------------------------------------------------

export const placementSchema = z.discriminatedUnion(
  'kind',
  [
    z.object({kind: z.literal('appliance')}),
    z.object({kind: z.literal('cluster'), connection: id(), cluster: displayName()}),
    z.object({kind: z.literal('host'), connection: id(), host: displayName()}),
  ],
  {error: "must have kind 'appliance', 'cluster' or 'host'"},
);
export type Placement = z.output<typeof placementSchema>;

export const workerSchema = z.object({
  id: id(),
  name: z.string({error: 'must be text'}).regex(/^[A-Za-z0-9-]{1,40}$/, {error: 'must be 1–40 letters, digits or -'}),
  placement: placementSchema,
  /** Disk tasks this worker runs at once. */
  slots: whole(1, 64).default(4),
});
export type WorkerConfig = z.output<typeof workerSchema>;

// ---- jobs ------------------------------------------------------------------------------------

export const retentionSchema = z
  .object({
    /** Keep at least the newest N restore points of each VM. */
    restorePoints: whole(1, 9999).optional(),
    /** Keep every restore point newer than N days. */
    days: whole(1, 36500).optional(),
    gfs: z
      .object({weekly: whole(0, 520).default(0), monthly: whole(0, 1200).default(0), yearly: whole(0, 100).default(0)})
      .optional(),
  })
  .default({restorePoints: 14});
export type RetentionConfig = z.output<typeof retentionSchema>;

const vmPick = z.object({
  id: z.string({error: 'must be the VM id'}).trim().min(1, {error: 'is required'}),
  /** The name when the VM was picked (for display; the id is what counts). */
  name: z.string().optional(),
  /** Disk keys to back up; every disk when omitted. */
  disks: z.array(z.string().min(1, {error: 'must not be empty'})).optional(),
});

/** A backup job's source: VMs of a connection, picked by id, cluster, host or tag. */
export const vmSourceSchema = z
  .object({
    connection: id(),
    vms: z.array(vmPick, {error: 'must be a list of VMs'}).default([]),
    /** Every VM of these clusters (by name). */
    clusters: z.array(displayName()).default([]),
    /** Every VM of these hosts (by name). */
    hosts: z.array(displayName()).default([]),
    /** Every VM with one of these oVirt tags. */
    tags: z.array(displayName()).default([]),
    /** VM ids never backed up by this job, whatever else selects them. */
    exclude: z.array(z.string().min(1)).default([]),
  })
  .refine((s) => s.vms.length + s.clusters.length + s.hosts.length + s.tags.length > 0, {
    error: 'must pick at least one VM, cluster, host or tag',
    path: ['vms'],
  });

/**
 * A copy job's source (the second copy of 3-2-1): the restore points of another repository of the
 * appliance, copied into the job's repository (repository/copy.ts) — the points the job's
 * retention would keep, and only what the target lacks.
 */
export const copySourceSchema = z
  .object({
    repository: id(),
    /** Only these VMs (ids or names, as the source repository records them); every VM when empty. */
    vms: z.array(z.string({error: 'must be a VM id or name'}).min(1, {error: 'must not be empty'}).max(256, {error: 'must be at most 256 characters'})).default([]),
    /** Read every copied restore point back from the target and check each chunk (verify at the target). */
    verify: z.boolean({error: 'must be true or false'}).default(true),
  })
  .strict();

export const jobSourceSchema = z.union([vmSourceSchema, copySourceSchema]);
export type VmSource = z.output<typeof vmSourceSchema>;
export type CopySource = z.output<typeof copySourceSchema>;

/** The job's copy source when it is a copy job. */
export function copySourceOf(job: {source: VmSource | CopySource}): CopySource | undefined {
  return 'repository' in job.source ? job.source : undefined;
}

/** The job's VM source when it is a backup job. */
export function vmSourceOf(job: {source: VmSource | CopySource}): VmSource | undefined {
  return 'connection' in job.source ? job.source : undefined;
}

// ---- webhooks --------------------------------------------------------------------------------

/**
 * A webhook: session reports POSTed to a URL (src/notify/webhooks.ts). The URL is a secret —
 * Slack's, Teams' and Mattermost's carry their credential in it — and so is the signing key:
 * both are shown as "••••" and kept for the same URL only (secrets.ts).
 */
export const webhookSchema = z
  .object({
    id: id(),
    name: displayName(),
    enabled: z.boolean({error: 'must be true or false'}).default(true),
    url: z
      .string({error: 'must be an https:// URL'})
      .trim()
      .max(2048, {error: 'must be at most 2048 characters'})
      .refine((u) => URL.canParse(u) && ['https:', 'http:'].includes(new URL(u).protocol) && new URL(u).username === '' && new URL(u).password === '', {
        error: 'must be an http(s):// URL without a user name or password in it',
      }),
    /** A plain http:// URL sends the report (and the URL's token) unencrypted: refused unless allowed here. */
    allowPlainHttp: z.boolean({error: 'must be true or false'}).default(false),
    format: z.enum(WEBHOOK_FORMATS, {error: `must be one of ${WEBHOOK_FORMATS.join(', ')}`}).default('json'),
    /** HMAC-SHA256 key for the X-Vmbackup-Signature header (json receivers that check it). */
    secret: z.string({error: 'must be text'}).min(16, {error: 'must be at least 16 characters'}).max(512, {error: 'must be at most 512 characters'}).optional(),
    /** Extra CA certificate(s), PEM, for a receiver with a private CA. */
    caPem: z
      .string()
      .refine((pem) => pem.includes('-----BEGIN CERTIFICATE-----'), {error: 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)'})
      .optional(),
    /** Every job's sessions; otherwise only the jobs that name this webhook (notification.webhooks). */
    allJobs: z.boolean({error: 'must be true or false'}).default(false),
    onSuccess: z.boolean({error: 'must be true or false'}).default(true),
    onWarning: z.boolean({error: 'must be true or false'}).default(true),
    onFailure: z.boolean({error: 'must be true or false'}).default(true),
    timeoutSeconds: whole(1, 120).default(15),
  })
  .strict()
  .refine((w) => !w.url.startsWith('http:') || w.allowPlainHttp, {
    error: 'is http://: the report and the URL would cross the network unencrypted; use https://, or allow it explicitly (allowPlainHttp) for a receiver on a trusted network',
    path: ['url'],
  });
export type WebhookConfig = z.output<typeof webhookSchema>;

export const jobSchema = z.object({
  id: id(),
  name: jobName(),
  description: description(),
  enabled: z.boolean({error: 'must be true or false'}).default(true),
  source: jobSourceSchema,
  repository: id(),
  retention: retentionSchema,
  schedule: scheduleSchema.default({kind: 'none'}),
  /** Read every disk in full on these weekdays (an active full). */
  activeFullDays: z.array(weekday()).default([]),
  /** Freeze guest file systems through the QEMU guest agent while the checkpoint is taken. */
  guestConsistency: z.boolean({error: 'must be true or false'}).default(true),
  retries: z.object({count: whole(0, 10).default(3), waitMinutes: whole(0, 1440).default(10)}).prefault({}),
  /**
   * The job's retention lock: each restore point it writes (or copies) records it and cannot be
   * forgotten or pruned for this many days — through the CLI, the API or the console alike.
   */
  retentionLockDays: whole(1, 36500).optional(),
  /** MB/s over the whole job; unlimited when omitted. */
  bandwidthLimitMBps: z.number({error: 'must be a number of MB/s'}).positive({error: 'must be more than 0 MB/s'}).max(100_000, {error: 'must be at most 100000 MB/s'}).optional(),
  notification: jobNotificationSchema.prefault({}),
  /**
   * Restore verification: after the backup, each VM's new restore point is started as an isolated
   * instant VM (no network, disks read from the repository, writes thrown away) on a libvirt
   * host, watched until its firmware hands over to a boot loader (or its guest agent answers),
   * photographed (screenshot) and discarded; the result is in the session and its report.
   */
  restoreVerification: z
    .object({
      enabled: z.boolean({error: 'must be true or false'}).default(false),
      /** How long each VM is given to reach its boot loader (its guest agent, when it has one). */
      timeoutSeconds: whole(10, 1800).default(300),
      /** The libvirt (Morpheus) connection to start it on; default: the job's own when it is one. */
      connection: id().optional(),
    })
    .prefault({}),
});
export type JobConfig = z.output<typeof jobSchema>;

// ---- console users and roles -----------------------------------------------------------------

/**
 * Who may do what through the control API (docs/security.md). root and the console user the
 * installer creates are admins; other accounts get the role recorded here, or none (refused).
 *   admin     everything
 *   operator  read everything, run and stop jobs, verify and collect garbage, restore to new
 *             places (a new VM, an existing VM's new disks, files), test what is saved
 */
export const ROLES = ['admin', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export const consoleUserSchema = z.object({
  /** The Unix login name of the account (made by "vmbackup user add" as root). */
  name: z.string({error: 'must be a user name'}).regex(/^[a-z_][a-z0-9_-]{0,31}$/, {error: 'must be a Unix user name (lowercase letters, digits, _ and -, at most 32)'}),
  role: z.enum(ROLES, {error: "must be 'admin' or 'operator'"}),
  /** The SSH public key the user logs in with, as recorded when the account was made. */
  sshKey: z
    .string({error: 'must be an SSH public key line'})
    .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]{0,200})?$/, {
      error: 'must be one SSH public key line such as "ssh-ed25519 AAAA… comment"',
    })
    .optional(),
});
export type ConsoleUserConfig = z.output<typeof consoleUserSchema>;

// ---- appliance settings ----------------------------------------------------------------------

export const settingsSchema = z.object({
  /** Garbage collection of every repository runs daily at this time. */
  gcAt: timeOfDay().default('03:00'),
  /** Warn (and run GC) when a repository's file system has less free space than this. */
  lowSpacePercent: whole(0, 90).default(10),
  /** Sessions kept in the history. */
  historySessions: whole(10, 100_000).default(1000),
  /**
   * Prefix of this appliance's libvirt checkpoints and qcow2 bitmaps. Cleanup removes only
   * those with this prefix, so two appliances sharing hosts need different prefixes.
   */
  checkpointPrefix: z
    .string({error: 'must be text'})
    .regex(/^[a-z][a-z0-9-]{0,30}-$/, {error: "must be lowercase letters, digits and '-', ending with '-' (e.g. vmbackup-)"})
    .default('vmbackup-'),
  /** This appliance's scratch directory on each KVM host (sockets, pid files); cleanup owns it. */
  hostScratchDir: absolutePath().default('/var/tmp/vmbackup'),
  /**
   * The Prometheus metrics endpoint, off by default: GET /metrics on `listen` (address:port), with
   * the bearer token the daemon keeps in <state directory>/metrics-token (0600, made when first on).
   */
  metrics: z
    .object({
      enabled: z.boolean({error: 'must be true or false'}).default(false),
      listen: z
        .string({error: 'must be address:port'})
        .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9][A-Za-z0-9.-]*):([1-9]\d{0,4})$/, {error: 'must be address:port, e.g. 127.0.0.1:9469'})
        .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, {error: 'the port must be at most 65535'})
        .default('127.0.0.1:9469'),
    })
    .strict()
    .prefault({}),
});
export type SettingsConfig = z.output<typeof settingsSchema>;

export {emailSettingsSchema};
