/**
 * The oVirt engine + imageio simulator, in process: `startSimulator(opts)`.
 *
 * Three HTTPS listeners share one throw-away CA (tls.ts): the engine (SSO, CA download, REST
 * API), the imageio daemon of the "host" (transfer_url) and the imageio proxy of the "engine"
 * (proxy_url). All bind 127.0.0.1. Faults are switched on through `sim.faults` (or, for the
 * standalone server, `POST /sim/faults` on the engine port).
 */
import {createServer, type Server} from 'node:https';
import type {IncomingMessage, ServerResponse} from 'node:http';
import {randomUUID} from 'node:crypto';
import type {AddressInfo} from 'node:net';
import {EngineApi, readBody, sendJson, type ApiLogEntry} from './engine-api.js';
import {ImageioServer, type ImageioLogEntry} from './imageio.js';
import {BLOCK, SimImage} from './image.js';
import {SimState, type SimDisk, type SimFaults, type SimTransfer, type SimVm} from './state.js';
import {makeSimTls} from './tls.js';

export interface DiskSpec {
  alias: string;
  size: number;
  format?: 'cow' | 'raw';
  /** Defaults to 'incremental' for cow disks. */
  backup?: 'incremental' | 'none';
  sparse?: boolean;
  bootable?: boolean;
  /** The attachment's pass_discard. */
  passDiscard?: boolean;
  /** The attachment's interface (default virtio_scsi). */
  iface?: 'virtio' | 'virtio_scsi';
  /** Regions filled with pseudo-random data of the given seed. */
  fill?: {offset: number; length: number; seed: number}[];
}

export interface VmSpec {
  name: string;
  status?: 'up' | 'down';
  tags?: string[];
  memory?: number;
  cpu?: SimVm['cpu'];
  biosType?: number;
  nics?: SimVm['nics'];
  disks: DiskSpec[];
}

export interface SimOptions {
  port?: number;
  user?: string;
  password?: string;
  /** Delay of each engine phase step (ms); default 20. */
  delayMs?: number;
  legacyJson?: boolean;
  tokenTtlMs?: number;
  /** Subject alternative names of the listeners' certificate, e.g. ['DNS:engine.example.com'] (default localhost, 127.0.0.1). */
  tlsNames?: string[];
  /** Engine version reported in product_info (default 4.5.7). */
  engineVersion?: {major: number; minor: number; build: number};
  vms?: VmSpec[];
}

export interface SimControl extends SimFaults {
  /** Every issued SSO token becomes invalid: the next API call answers 401. */
  expireTokens(): void;
  /** Applies the inactivity policy now to the given transfer, or to every transferring one. */
  timeOutTransfer(transferId?: string): SimTransfer[];
  /** Removes a checkpoint behind the client's back (as a snapshot revert would). */
  vanishCheckpoint(checkpointId: string): void;
}

export interface Simulator {
  url: string;
  caPem: string;
  caFingerprint: string;
  user: string;
  password: string;
  state: SimState;
  faults: SimControl;
  apiLog: ApiLogEntry[];
  imageioLog: ImageioLogEntry[];
  /** Base URLs of the imageio daemon ("host", transfer_url) and proxy ("engine", proxy_url). */
  imageio: {daemon: string; proxy: string};
  /** The simulated VMs (live objects: tests may change status, tags, attachments). */
  readonly vms: SimVm[];
  vm(name: string): SimVm;
  disksOf(name: string): SimDisk[];
  /** A guest write to a disk (marks the blocks dirty in every checkpoint bitmap). */
  guestWrite(diskId: string, offset: number, data: Buffer): void;
  stop(): Promise<void>;
}

export const DEFAULT_VMS: VmSpec[] = [
  {
    name: 'web01', status: 'up', tags: ['prod', 'web'],
    disks: [
      {alias: 'web01_os', size: 64 * 2 ** 20, format: 'cow', bootable: true,
        fill: [{offset: 0, length: 2 * 2 ** 20, seed: 1}, {offset: 20 * 2 ** 20, length: 640 * 1024, seed: 2}]},
      {alias: 'web01_data', size: 32 * 2 ** 20, format: 'raw', sparse: false, fill: [{offset: 4 * 2 ** 20, length: 2 ** 20, seed: 3}]},
    ],
  },
  {
    name: `db 01 'quoted'; ünï`, status: 'down', tags: ['prod'],
    disks: [{alias: 'db disk ü', size: 16 * 2 ** 20, format: 'cow', bootable: true, fill: [{offset: 2 ** 20, length: 3 * 2 ** 20, seed: 4}]}],
  },
  {name: 'empty-vm', status: 'down', tags: [], disks: []},
];

/** Deterministic pseudo-random bytes (xorshift32), so tests can recompute expected data. */
export function pattern(seed: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  return buf;
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startSimulator(opts: SimOptions = {}): Promise<Simulator> {
  const tls = await makeSimTls(opts.tlsNames);
  const faults: SimFaults = {delayMs: opts.delayMs ?? 20, transferUrlUnreachable: false, legacyJson: opts.legacyJson ?? false};
  const state = new SimState(faults);
  const user = opts.user ?? 'admin@internal';
  const password = opts.password ?? 'sim-password';
  seed(state, opts.vms ?? DEFAULT_VMS);

  const apiLog: ApiLogEntry[] = [];
  const imageioLog: ImageioLogEntry[] = [];
  const ports = {engine: 0, daemon: 0, proxy: 0, dead: 0};
  const engine = new EngineApi({
    state, user, password, caPem: tls.caPem, log: apiLog, tokenTtlMs: opts.tokenTtlMs, version: opts.engineVersion,
    urls: () => ({
      daemon: `https://127.0.0.1:${faults.transferUrlUnreachable ? ports.dead : ports.daemon}`,
      proxy: `https://127.0.0.1:${ports.proxy}`,
    }),
  });
  const imageio = new ImageioServer(state, imageioLog);
  const control: SimControl = Object.assign(faults, {
    expireTokens: () => engine.expireTokens(),
    timeOutTransfer: (id?: string) => {
      const hit = [...state.transfers.values()].filter((t) => t.phase === 'transferring' && (id === undefined || t.id === id));
      for (const t of hit) state.timeOutTransfer(t);
      return hit;
    },
    vanishCheckpoint: (id: string) => state.removeCheckpointNow(id),
  });

  const guard = (fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => (req: IncomingMessage, res: ServerResponse) => {
    fn(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, {detail: String(err), reason: 'Operation Failed'});
      else res.destroy();
    });
  };
  const tlsOpts = {cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, minVersion: 'TLSv1.2' as const};
  const engineServer = createServer(tlsOpts, guard(async (req, res) => {
    if (req.url?.startsWith('/sim/')) return admin(req, res);
    return engine.handle(req, res);
  }));
  const daemonServer = createServer(tlsOpts, guard((req, res) => imageio.handle('daemon', req, res)));
  const proxyServer = createServer(tlsOpts, guard((req, res) => imageio.handle('proxy', req, res)));
  for (const s of [engineServer, daemonServer, proxyServer]) s.keepAliveTimeout = 60_000;

  async function admin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString();
    const msg = body ? JSON.parse(body) : {};
    if (req.url === '/sim/faults' && req.method === 'POST') {
      for (const k of ['delayMs', 'transferUrlUnreachable', 'inactivityTimeoutMs', 'legacyJson', 'slowReadsMs', 'backupStartFailure'] as const) {
        if (k in msg) (faults as unknown as Record<string, unknown>)[k] = msg[k];
      }
      return sendJson(res, 200, {...faults});
    }
    if (req.url === '/sim/expire-tokens' && req.method === 'POST') {
      control.expireTokens();
      return sendJson(res, 200, {});
    }
    if (req.url === '/sim/timeout-transfers' && req.method === 'POST') return sendJson(res, 200, control.timeOutTransfer(msg.id).map((t) => t.id));
    if (req.url === '/sim/vanish-checkpoint' && req.method === 'POST') {
      control.vanishCheckpoint(String(msg.id));
      return sendJson(res, 200, {});
    }
    if (req.url === '/sim/guest-write' && req.method === 'POST') {
      state.disk(String(msg.diskId)).image.write(Number(msg.offset), pattern(Number(msg.seed ?? 7), Number(msg.length)));
      return sendJson(res, 200, {});
    }
    sendJson(res, 404, {detail: 'unknown simulator admin call'});
  }

  ports.engine = await listen(engineServer, opts.port ?? 0);
  ports.daemon = await listen(daemonServer);
  ports.proxy = await listen(proxyServer);
  // A port where nothing listens: transfer_url "unreachable" (gotcha 11).
  const deadServer = createServer(tlsOpts);
  ports.dead = await listen(deadServer);
  await new Promise<void>((r) => deadServer.close(() => r()));
  for (const h of state.hosts) h.address = '127.0.0.1';

  const ticker = setInterval(() => state.checkInactivity(), 50);
  ticker.unref();

  const findVm = (name: string): SimVm => {
    const vm = [...state.vms.values()].find((v) => v.name === name);
    if (!vm) throw new Error(`no simulated VM ${name}`);
    return vm;
  };
  return {
    url: `https://127.0.0.1:${ports.engine}/ovirt-engine`,
    caPem: tls.caPem,
    caFingerprint: tls.caFingerprint,
    user, password, state, faults: control, apiLog, imageioLog,
    imageio: {daemon: `https://127.0.0.1:${ports.daemon}`, proxy: `https://127.0.0.1:${ports.proxy}`},
    get vms() {
      return [...state.vms.values()];
    },
    vm: findVm,
    disksOf: (name) => findVm(name).attachments.map((a) => state.disk(a.diskId)),
    guestWrite(diskId, offset, data) {
      state.disk(diskId).image.write(offset, data);
    },
    async stop() {
      clearInterval(ticker);
      state.stop();
      await Promise.all([engineServer, daemonServer, proxyServer].map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
    },
  };
}

function seed(state: SimState, vms: VmSpec[]): void {
  const dc = {id: randomUUID(), name: 'Default'};
  const cluster = {id: randomUUID(), name: 'Default', dataCenterId: dc.id, version: {major: 4, minor: 7}};
  const host = {id: randomUUID(), name: 'host1', address: '127.0.0.1', clusterId: cluster.id, status: 'up' as const};
  const sd = {id: randomUUID(), name: 'data1', available: 2 ** 40, used: 2 ** 34, storageType: 'nfs'};
  const sd2 = {id: randomUUID(), name: 'data2 block', available: 2 ** 40, used: 2 ** 30, storageType: 'iscsi'};
  state.dataCenters.push(dc);
  state.clusters.push(cluster);
  state.hosts.push(host);
  state.storageDomains.push(sd, sd2);
  for (const spec of vms) {
    const vm: SimVm = {
      id: randomUUID(), name: spec.name, status: spec.status ?? 'down', clusterId: cluster.id,
      hostId: spec.status === 'up' ? host.id : undefined, memory: spec.memory ?? 2 ** 30, tags: spec.tags ?? [],
      attachments: [], osType: 'rhel_8x64',
      ...(spec.cpu ? {cpu: spec.cpu} : {}), ...(spec.biosType !== undefined ? {biosType: spec.biosType} : {}), ...(spec.nics ? {nics: spec.nics} : {}),
    };
    state.vms.set(vm.id, vm);
    for (const d of spec.disks) {
      const format = d.format ?? 'cow';
      const image = new SimImage(d.size);
      for (const f of d.fill ?? []) image.write(f.offset, pattern(f.seed, f.length));
      const disk: SimDisk = {
        id: randomUUID(), imageId: randomUUID(), alias: d.alias, format, sparse: d.sparse ?? true,
        backup: d.backup ?? (format === 'cow' ? 'incremental' : 'none'), storageDomainId: sd.id, status: 'ok', image,
      };
      state.disks.set(disk.id, disk);
      vm.attachments.push({diskId: disk.id, bootable: d.bootable ?? false, iface: d.iface ?? 'virtio_scsi', active: true, passDiscard: d.passDiscard});
    }
  }
  void BLOCK;
}
