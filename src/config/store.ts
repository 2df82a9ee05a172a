/**
 * The configuration store: one lowdb JSON document (config.json, mode 0600) under the state
 * directory (default /var/lib/vmbackup, mode 0750), written through DurableJsonFile.
 *
 * Contract:
 * - Every change is validated (the object's schema, then references between objects) on a copy;
 *   only a valid copy is written and then becomes the current data. A rejected change leaves
 *   file and memory exactly as they were.
 * - Changes are serialized: one write at a time, in call order.
 * - An update that sends a secret back as REDACTED keeps the stored secret (secrets.ts).
 * - Only the daemon opens the store; clients go through the control API.
 */
import {randomBytes} from 'node:crypto';
import {chmod, mkdir, readdir, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {Low} from 'lowdb';
import {z} from 'zod';
import type {EmailSettings} from '../notify/settings.js';
import {ExitCode, UserError} from '../util/errors.js';
import {DurableJsonFile} from './durable-json-file.js';
import {ConfigError, parseConfig} from './parse.js';
import {referenceProblems, removalProblem} from './references.js';
import {
  connectionSchema,
  consoleUserSchema,
  emailSettingsSchema,
  jobSchema,
  repositorySchema,
  settingsSchema,
  webhookSchema,
  workerSchema,
  type ConnectionConfig,
  type ConsoleUserConfig,
  type JobConfig,
  type RepositoryConfig,
  type SettingsConfig,
  type WebhookConfig,
  type WorkerConfig,
} from './schema.js';
import {keepSecrets} from './secrets.js';

export const DEFAULT_STATE_DIR = '/var/lib/vmbackup';
export const CONFIG_FILE = 'config.json';

export interface ConfigData {
  version: 1;
  repositories: RepositoryConfig[];
  connections: ConnectionConfig[];
  workers: WorkerConfig[];
  jobs: JobConfig[];
  webhooks: WebhookConfig[];
  email?: EmailSettings;
  settings: SettingsConfig;
  /** Console users other than root and the installer's `console` (both admins), with their role. */
  users: ConsoleUserConfig[];
}

export interface CollectionTypes {
  repositories: RepositoryConfig;
  connections: ConnectionConfig;
  workers: WorkerConfig;
  jobs: JobConfig;
  webhooks: WebhookConfig;
}
export type Collection = keyof CollectionTypes;
export const COLLECTIONS: readonly Collection[] = ['repositories', 'connections', 'workers', 'jobs', 'webhooks'];

const SCHEMAS: Record<Collection, z.ZodType> = {
  repositories: repositorySchema,
  connections: connectionSchema,
  workers: workerSchema,
  jobs: jobSchema,
  webhooks: webhookSchema,
};

/** The worker every appliance has: data movers in the daemon itself. */
export const APPLIANCE_WORKER: WorkerConfig = {id: 'appliance', name: 'appliance', placement: {kind: 'appliance'}, slots: 4};

export function emptyConfig(): ConfigData {
  return {version: 1, repositories: [], connections: [], workers: [APPLIANCE_WORKER], jobs: [], webhooks: [], settings: settingsSchema.parse({}), users: []};
}

export function isCollection(s: string): s is Collection {
  return (COLLECTIONS as readonly string[]).includes(s);
}

/** Opens a lowdb document that is written durably; creates it with `defaults` when missing. */
export async function openDocument<T>(path: string, defaults: T): Promise<Low<T>> {
  const db = new Low<T>(new DurableJsonFile<T>(path), defaults);
  await db.read();
  return db;
}

export class ConfigStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(data: ConfigData) => void>();

  private constructor(
    private readonly db: Low<ConfigData>,
    readonly stateDir: string,
  ) {}

  static async open(stateDir = DEFAULT_STATE_DIR): Promise<ConfigStore> {
    await mkdir(stateDir, {recursive: true, mode: 0o750});
    await chmod(stateDir, 0o750);
    // Temp files of a writer that died mid-write (the target itself is always whole).
    for (const f of await readdir(stateDir)) {
      if (f.startsWith(`.${CONFIG_FILE}.`) && f.endsWith('.tmp')) await rm(join(stateDir, f), {force: true});
    }
    const db = await openDocument<ConfigData>(join(stateDir, CONFIG_FILE), emptyConfig());
    db.data = {...emptyConfig(), ...db.data};
    if (!db.data.workers.some((w) => w.id === APPLIANCE_WORKER.id)) db.data.workers.unshift(APPLIANCE_WORKER);
    if (migrate(db.data)) await db.write();
    return new ConfigStore(db, stateDir);
  }

  get path(): string {
    return (this.db.adapter as DurableJsonFile<ConfigData>).path;
  }

  /** The current configuration. Treat as read-only: changes go through the methods below. */
  get data(): Readonly<ConfigData> {
    return this.db.data;
  }

  onChange(fn: (data: ConfigData) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  list<C extends Collection>(c: C): CollectionTypes[C][] {
    return this.db.data[c] as CollectionTypes[C][];
  }

  get<C extends Collection>(c: C, id: string): CollectionTypes[C] {
    const found = (this.db.data[c] as {id: string}[]).find((o) => o.id === id);
    if (!found) throw new UserError(`There is no ${singular(c)} with id '${id}'.`, {hint: `List them with GET /${c} (vmbackup ${singular(c)} list).`, exitCode: ExitCode.notFound});
    return found as CollectionTypes[C];
  }

  async create<C extends Collection>(c: C, input: unknown): Promise<CollectionTypes[C]> {
    return this.change((data) => {
      const withId = input !== null && typeof input === 'object' && !('id' in input) ? {...input, id: newId(c, input, data)} : input;
      // A secret given as "••••" (from a listing or an export) is refused, not stored as the secret.
      const obj = parseConfig(SCHEMAS[c], keepSecrets(c, withId, undefined), c) as CollectionTypes[C];
      (data[c] as CollectionTypes[C][]).push(obj);
      return obj;
    });
  }

  async update<C extends Collection>(c: C, id: string, input: unknown): Promise<CollectionTypes[C]> {
    return this.change((data) => {
      const list = data[c] as CollectionTypes[C][];
      const at = list.findIndex((o) => o.id === id);
      if (at < 0) this.get(c, id);
      if (input !== null && typeof input === 'object' && 'id' in input && (input as {id: unknown}).id !== id) {
        throw new ConfigError([{field: `${c}.id`, message: 'cannot be changed'}]);
      }
      const merged = keepSecrets(c, input !== null && typeof input === 'object' ? {...input, id} : input, list[at]);
      const obj = parseConfig(SCHEMAS[c], merged, c) as CollectionTypes[C];
      list[at] = obj;
      return obj;
    });
  }

  async remove(c: Collection, id: string): Promise<void> {
    await this.change((data) => {
      this.get(c, id);
      if (c === 'workers' && id === APPLIANCE_WORKER.id) {
        throw new UserError("The appliance's own worker cannot be removed.", {hint: 'Set its slots instead (PUT /workers/appliance).', exitCode: ExitCode.invalidInput});
      }
      const problem = removalProblem(data, c, id);
      if (problem) throw new UserError(`Cannot remove: ${problem}.`, {hint: 'Change or remove what uses it first.', exitCode: ExitCode.invalidInput});
      (data[c] as {id: string}[]).splice(
        (data[c] as {id: string}[]).findIndex((o) => o.id === id),
        1,
      );
    });
  }

  /** Records (or replaces) a console user's role; the account itself is made by "vmbackup user add". */
  async putUser(name: string, input: unknown): Promise<ConsoleUserConfig> {
    return this.change((data) => {
      const obj = parseConfig(consoleUserSchema, input !== null && typeof input === 'object' ? {...input, name} : input, 'users');
      const at = data.users.findIndex((u) => u.name === name);
      if (at >= 0) data.users[at] = obj;
      else data.users.push(obj);
      return obj;
    });
  }

  async removeUser(name: string): Promise<void> {
    await this.change((data) => {
      const at = data.users.findIndex((u) => u.name === name);
      if (at < 0) throw new UserError(`There is no console user '${name}'.`, {hint: 'List them with "vmbackup user list".', exitCode: ExitCode.notFound});
      data.users.splice(at, 1);
    });
  }

  async setEmail(input: unknown): Promise<EmailSettings | undefined> {
    return this.change((data) => {
      if (input === null) {
        delete data.email;
        return undefined;
      }
      data.email = parseConfig(emailSettingsSchema, keepSecrets('email', input, data.email), 'email');
      return data.email;
    });
  }

  async setSettings(input: unknown): Promise<SettingsConfig> {
    return this.change((data) => {
      const merged = input !== null && typeof input === 'object' ? {...data.settings, ...input} : input;
      data.settings = parseConfig(settingsSchema, merged, 'settings');
      return data.settings;
    });
  }

  /** Applies `fn` to a copy, checks references, writes durably, then swaps the copy in. */
  private change<R>(fn: (draft: ConfigData) => R): Promise<R> {
    const run = async (): Promise<R> => {
      const draft = structuredClone(this.db.data);
      const result = fn(draft);
      const problems = referenceProblems(draft);
      if (problems.length) throw new ConfigError(problems);
      const previous = this.db.data;
      this.db.data = draft;
      try {
        await this.db.write();
      } catch (err) {
        this.db.data = previous;
        throw err;
      }
      for (const l of this.listeners) l(draft);
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }
}

/**
 * Brings a configuration written by an earlier version up to this one: every object is parsed
 * again so that fields added since get their defaults (schemas only ever add fields, with
 * defaults, see schema.ts). An object the schema refuses now is left exactly as it was, for the
 * administrator to correct; nothing is dropped. Returns whether anything changed.
 */
export function migrate(data: ConfigData): boolean {
  let changed = false;
  for (const c of COLLECTIONS) {
    const list = data[c] as unknown[];
    for (let i = 0; i < list.length; i++) {
      const parsed = SCHEMAS[c].safeParse(list[i]);
      if (parsed.success && JSON.stringify(parsed.data) !== JSON.stringify(list[i])) {
        list[i] = parsed.data;
        changed = true;
      }
    }
  }
  const settings = settingsSchema.safeParse(data.settings);
  if (settings.success && JSON.stringify(settings.data) !== JSON.stringify(data.settings)) {
    data.settings = settings.data;
    changed = true;
  }
  return changed;
}

function singular(c: string): string {
  return c === 'repositories' ? 'repository' : c.replace(/s$/, '');
}

/** A readable id from the name ("Nightly DB" → "nightly-db"), made unique. */
function newId(c: Collection, input: object, data: ConfigData): string {
  const name = 'name' in input && typeof input.name === 'string' ? input.name : '';
  const base =
    name
      .normalize('NFKD')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || singular(c);
  const taken = new Set((data[c] as {id: string}[]).map((o) => o.id));
  if (!taken.has(base)) return base;
  for (let i = 2; i < 1000; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  return `${base}-${randomBytes(4).toString('hex')}`;
}
