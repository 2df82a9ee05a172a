/**
 * The console's test fake (fake-api.ts) against the real daemon: every reply the fake gives
 * must have the real reply's shape (each key the fake sends exists in the real reply with the
 * same type), and replies the contract defines (src/api/contract.ts) must pass its schemas from
 * both sides. A fake that answers what the daemon never sends — the host-key reply once did, and
 * adding an SSH host from the console failed — fails here.
 *
 * The real side is a vmbackupd process, the test bed's sshd on 127.0.0.1:2222 as a remote KVM
 * host, the oVirt simulator as an engine, and a real repository.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {applianceSshKeyReply, hostKeyScanReply} from '../../src/api/contract.js';
import {consoleApi, type ConsoleApi} from '../../src/console/api.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';
import {startDaemon, type RunningDaemon} from '../daemon/helpers.js';
import {ensureSshd, SSHD_DIR, SSHD_PORT} from '../lib/sshd.js';
import {seeded, type FakeApi} from './fake-api.js';

let dir: string;
let daemon: RunningDaemon;
let real: ConsoleApi;
let fake: FakeApi;
let sim: Simulator;

beforeAll(async () => {
  await ensureSshd();
  dir = await mkdtemp(join(tmpdir(), 'vmb-contract-'));
  daemon = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'));
  real = consoleApi(daemon.client);
  fake = seeded();
  sim = await startSimulator({delayMs: 5});
}, 60_000);
afterAll(async () => {
  await daemon?.stop();
  await sim?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

type Shape = string | {[k: string]: Shape} | Shape[];

/** The types of a value, keys and all (arrays by their first element). */
function shapeOf(v: unknown): Shape {
  if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
  if (v === null) return 'null';
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).filter(([, x]) => x !== undefined).map(([k, x]) => [k, shapeOf(x)]));
  return typeof v;
}

/** Where the fake's shape is not inside the real one: "path: fake X, real Y". */
function outside(fakeShape: Shape, realShape: Shape, path = '$'): string[] {
  if (typeof fakeShape === 'string' || typeof realShape === 'string') {
    return fakeShape === realShape || (fakeShape === 'null' || realShape === 'null') ? [] : [`${path}: fake ${JSON.stringify(fakeShape)}, real ${JSON.stringify(realShape)}`];
  }
  if (Array.isArray(fakeShape) || Array.isArray(realShape)) {
    if (!Array.isArray(fakeShape) || !Array.isArray(realShape)) return [`${path}: fake ${Array.isArray(fakeShape) ? 'array' : 'object'}, real ${Array.isArray(realShape) ? 'array' : 'object'}`];
    return fakeShape.length && realShape.length ? outside(fakeShape[0]!, realShape[0]!, `${path}[0]`) : [];
  }
  const out: string[] = [];
  for (const [k, s] of Object.entries(fakeShape)) {
    if (!(k in realShape)) out.push(`${path}.${k}: only the fake sends it`);
    else out.push(...outside(s, realShape[k]!, `${path}.${k}`));
  }
  return out;
}

async function same(name: string, fakeReply: Promise<unknown>, realReply: Promise<unknown>): Promise<{fake: unknown; real: unknown}> {
  const [f, r] = await Promise.all([fakeReply, realReply]);
  expect(outside(shapeOf(f), shapeOf(r)), name).toEqual([]);
  return {fake: f, real: r};
}

describe('the console fake answers in the real daemon\'s shapes', () => {
  it('host keys and the appliance key: the contract schemas hold on both sides', async () => {
    const {fake: f, real: r} = await same('scanHostKey', fake.scanHostKey('127.0.0.1', SSHD_PORT), real.scanHostKey('127.0.0.1', SSHD_PORT));
    hostKeyScanReply.parse(f);
    hostKeyScanReply.parse(r);
    // The key the console stores is the one the host really has.
    const hostPub = (await readFile(`${SSHD_DIR}/host_ed25519.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    expect(hostKeyScanReply.parse(r).keys.find((k) => k.type === 'ssh-ed25519')?.key).toBe(hostPub);
    const a = await same('applianceSshKey', fake.applianceSshKey(), real.applianceSshKey());
    applianceSshKeyReply.parse(a.fake);
    applianceSshKeyReply.parse(a.real);
  });

  it('collections, status, settings, who am I, audit, e-mail', async () => {
    const repo = {id: 'second', name: 'second', path: join(dir, 'repo')};
    await same('create repositories', fake.create('repositories', repo), real.create('repositories', repo));
    await same('list repositories', fake.list('repositories'), real.list('repositories'));
    await same('get repositories', fake.get('repositories', 'second'), real.get('repositories', 'second'));
    await same('verify', fake.verify('second'), real.verify('second'));
    // Repository figures come from a background count the first status call starts.
    while ((await real.status()).repositories.some((x) => x.usedBytes === undefined)) await new Promise((res) => setTimeout(res, 50));
    await same('status', fake.status(), real.status());
    await same('settings', fake.settings(), real.settings());
    await same('whoami', fake.whoami(), real.whoami());
    await same('audit', fake.audit(), real.audit());
    await same('restorePoints', fake.restorePoints('second'), real.restorePoints('second'));
    await same('sessions', fake.sessions(), real.sessions());
  });

  it('an oVirt engine: its CA, a connection test, the inventory', async () => {
    const {real: ca} = await same('fetchCa', fake.fetchCa(sim.url), real.fetchCa(sim.url));
    const conn = {id: 'engine', kind: 'ovirt', name: 'engine', url: sim.url, user: sim.user, password: sim.password, caPem: (ca as {pem: string}).pem};
    await same('testConnection (ovirt)', fake.testConnection(conn), real.testConnection(conn));
    await real.create('connections', conn);
    await same('inventory', fake.inventory('engine', true), real.inventory('engine', true));
  });

  it('a KVM host over SSH: the key the scan gave is accepted, the connection tested and saved', async () => {
    const scan = hostKeyScanReply.parse(await real.scanHostKey('127.0.0.1', SSHD_PORT));
    const key = scan.keys.find((k) => k.type === 'ssh-ed25519')!;
    const conn = {
      id: 'kvm', kind: 'morpheus', name: 'kvm',
      clusters: [{name: 'c1', hosts: [{name: '127.0.0.1', connection: {kind: 'ssh', host: '127.0.0.1', port: SSHD_PORT, user: 'root', identityFile: `${SSHD_DIR}/client_ed25519`, hostKey: key.key}}]}],
    };
    const {real: t} = await same('testConnection (ssh)', fake.testConnection(conn), real.testConnection(conn));
    expect(t).toMatchObject({ok: true, reachable: true, authenticated: true});
    await same('create connections', fake.create('connections', conn), real.create('connections', conn));
  });
});
