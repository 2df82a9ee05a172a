import {spawn} from 'node:child_process';
import {mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {CONFIG_FILE, ConfigError, ConfigStore, REDACTED, redact, repositorySchema} from '../../src/config/index.js';
import {UserError} from '../../src/util/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-config-'));
});
afterEach(async () => {
  await rm(dir, {recursive: true, force: true});
});

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
const engine = {kind: 'ovirt', name: 'Engine', url: 'https://engine.example/ovirt-engine', user: 'admin@internal', password: 's3cret;"\' ü', caPem: pem};
const kvm = {kind: 'morpheus', name: 'VME one', clusters: [{name: 'c1', hosts: [{name: 'h1', connection: {kind: 'local'}}]}]};

describe('config store', () => {
  it('creates objects with readable ids, persists them 0600 in a 0750 directory', async () => {
    const store = await ConfigStore.open(join(dir, 'state'));
    const repo = await store.create('repositories', {name: 'Main repo', path: '/srv/a b'});
    expect(repo.id).toBe('main-repo');
    const again = await store.create('repositories', {name: 'Main-repo!', path: '/srv/other'});
    expect(again.id).toBe('main-repo-2');
    const file = join(dir, 'state', CONFIG_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o750);
    const reopened = await ConfigStore.open(join(dir, 'state'));
    expect(reopened.list('repositories').map((r) => r.path)).toEqual(['/srv/a b', '/srv/other']);
    expect(reopened.list('workers').map((w) => w.id)).toEqual(['appliance']);
    // No temp files left behind.
    expect((await readdir(join(dir, 'state'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects bad input and references without changing memory or file', async () => {
    const store = await ConfigStore.open(dir);
    await store.create('repositories', {id: 'r', name: 'R', path: '/srv/r'});
    await store.create('connections', {id: 'k', ...kvm});
    const before = await readFile(join(dir, CONFIG_FILE), 'utf8');
    const attempts: [() => Promise<unknown>, string][] = [
      [() => store.create('jobs', {name: 'J', source: {connection: 'k', vms: [{id: 'v'}]}, repository: 'nope'}), 'jobs.repository'],
      [() => store.create('jobs', {name: 'J', source: {connection: 'x', vms: [{id: 'v'}]}, repository: 'r'}), 'jobs.source.connection'],
      [() => store.create('jobs', {name: 'J', source: {connection: 'k', clusters: ['c9']}, repository: 'r'}), 'jobs.source.clusters'],
      [() => store.create('jobs', {name: 'J', source: {connection: 'k', tags: ['prod']}, repository: 'r'}), 'jobs.source.tags'],
      [() => store.create('jobs', {name: 'J', source: {connection: 'k', vms: [{id: 'v'}]}, repository: 'r', schedule: {kind: 'daily', at: '7'}}), 'jobs.schedule.at'],
      [() => store.create('repositories', {id: 'r2', name: 'R', path: '/srv/r2'}), 'repositories.name'],
      [() => store.create('repositories', {id: 'r2', name: 'R2', path: '/srv/r'}), 'repositories.path'],
      [() => store.update('repositories', 'r', {name: 'R', path: 'relative'}), 'repositories.path'],
      [() => store.update('repositories', 'r', {id: 'other', name: 'R', path: '/srv/r'}), 'repositories.id'],
      [() => store.create('workers', {name: 'w1', placement: {kind: 'host', connection: 'k', host: 'h9'}}), 'workers.placement.host'],
      [() => store.setEmail({transport: 'smtp', host: 'mail', port: 0, from: 'a@b'}), 'email.port'],
      [() => store.setSettings({gcAt: '3am'}), 'settings.gcAt'],
    ];
    for (const [attempt, field] of attempts) {
      const err = await attempt().then(() => undefined, (e: unknown) => e);
      expect(err, field).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
      expect((err as ConfigError).message).toContain(`${field}: `);
    }
    expect(await readFile(join(dir, CONFIG_FILE), 'utf8')).toBe(before);
    expect(store.list('jobs')).toEqual([]);
    expect(store.list('repositories')).toHaveLength(1);
    expect(store.data.settings.gcAt).toBe('03:00');
  });

  it('refuses to remove what a job uses, and the appliance worker', async () => {
    const store = await ConfigStore.open(dir);
    await store.create('repositories', {id: 'r', name: 'R', path: '/srv/r'});
    await store.create('connections', {id: 'k', ...kvm});
    await store.create('jobs', {id: 'j', name: 'J', source: {connection: 'k', vms: [{id: 'v'}]}, repository: 'r'});
    await expect(store.remove('repositories', 'r')).rejects.toThrow(/used by job/);
    await expect(store.remove('connections', 'k')).rejects.toThrow(/used by job/);
    await expect(store.remove('workers', 'appliance')).rejects.toThrow(UserError);
    await expect(store.remove('jobs', 'nope')).rejects.toMatchObject({exitCode: 16});
    await store.remove('jobs', 'j');
    await store.remove('repositories', 'r');
    expect(store.list('repositories')).toEqual([]);
  });

  it('redacts secrets and keeps the stored one when an update sends the redacted value back', async () => {
    const store = await ConfigStore.open(dir);
    const c = await store.create('connections', {id: 'e', ...engine});
    const shown = redact('connections', c);
    expect(shown).toMatchObject({password: REDACTED});
    expect(JSON.stringify(shown)).not.toContain('s3cret');
    const updated = await store.update('connections', 'e', {...shown, name: 'Engine 2'});
    expect(updated).toMatchObject({name: 'Engine 2', password: engine.password});
    await store.update('connections', 'e', {...shown, password: 'new'});
    expect((store.get('connections', 'e') as {password: string}).password).toBe('new');
    await store.setEmail({transport: 'smtp', host: 'mail', from: 'a@b', auth: {user: 'u', password: 'mailpw'}});
    await store.setEmail({...redact('email', store.data.email), fromName: 'Backups'});
    expect(store.data.email).toMatchObject({fromName: 'Backups', auth: {password: 'mailpw'}});
    // The stored password is never handed to another server, port or login than its own.
    for (const change of [{host: 'mail2'}, {port: 2525}, {security: 'tls'}, {auth: {user: 'other', password: REDACTED}}]) {
      await expect(store.setEmail({...redact('email', store.data.email), ...change})).rejects.toThrow(/stored password belongs to another mail server/);
    }
    await expect(store.update('connections', 'e', {...redact('connections', store.get('connections', 'e')), url: 'https://evil.example/ovirt-engine'})).rejects.toThrow(
      /stored password belongs to another engine URL/,
    );
    expect(store.data.email).toMatchObject({host: 'mail', auth: {password: 'mailpw'}});
  });

  it('says which file is damaged when the config is not JSON', async () => {
    await writeFile(join(dir, CONFIG_FILE), '{"version": 1, "repo');
    await expect(ConfigStore.open(dir)).rejects.toMatchObject({exitCode: 13, message: expect.stringContaining(join(dir, CONFIG_FILE))});
  });

  it('survives kill -9 of a writer at random moments: the file always parses', async () => {
    const child = fileURLToPath(new URL('./writer-child.ts', import.meta.url));
    const seen = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const p = spawn(process.execPath, ['--import', 'tsx', child, dir], {stdio: ['ignore', 'pipe', 'inherit']});
      await new Promise<void>((resolve, reject) => {
        p.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        p.on('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      });
      // A random moment inside the write loop: not a timing assertion, only where the kill lands.
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      const exited = new Promise((r) => p.on('exit', r));
      p.kill('SIGKILL');
      await exited;
      const text = await readFile(join(dir, CONFIG_FILE), 'utf8');
      const data = JSON.parse(text) as {repositories: unknown[]};
      const repo = repositorySchema.parse(data.repositories[0]);
      expect(repo.name).toMatch(/^gen \d+$/);
      seen.add(repo.name);
    }
    // The writers made progress, so the kills really landed among writes.
    expect(seen.size).toBeGreaterThan(1);
    const store = await ConfigStore.open(dir);
    expect(store.get('repositories', 'r1').path).toBe('/srv/r1');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
