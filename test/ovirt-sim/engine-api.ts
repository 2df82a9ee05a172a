/**
 * The simulated engine's HTTP front: SSO token endpoint, CA download, and the `Version: 4`
 * JSON REST API under /ovirt-engine/api (docs/reference/ovirt-backup-api.md §1–§5, §8, §10). XML is not
 * simulated: the appliance speaks JSON only.
 *
 * Every request is recorded in `log` (method, path, parsed body) so that tests can check what
 * a client sent (for example an explicit inactivity_timeout).
 */
import type {IncomingMessage, ServerResponse} from 'node:http';
import {randomBytes, randomUUID} from 'node:crypto';
import {parseOvf} from './ovf.js';
import {renderOvf} from './ovf.js';
import {
  API, attachmentJson, backupJson, checkpointJson, clusterJson, collection, diskJson, finish, hostJson, eventJson, jobJson,
  storageDomainJson, tagJson, transferJson, vmJson,
} from './render.js';
import {SimFault, type SimJob, type SimState, type SimVm} from './state.js';

export interface ApiLogEntry {method: string; path: string; body?: unknown; status?: number; correlationId?: string}

export interface EngineApiOptions {
  state: SimState;
  user: string;
  password: string;
  caPem: string;
  urls: () => {daemon: string; proxy: string};
  log: ApiLogEntry[];
  /** Token lifetime in ms; undefined = until expireTokens(). */
  tokenTtlMs?: number;
  /** product_info.version; default 4.5.7. */
  version?: {major: number; minor: number; build: number};
}

export class EngineApi {
  private tokens = new Map<string, number>();

  constructor(private readonly o: EngineApiOptions) {}

  expireTokens(): void {
    this.tokens.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://sim');
    const raw = await readBody(req);
    // The log keeps the path with its query, the correlation id apart (tests match on paths).
    const correlationId = url.searchParams.get('correlation_id') ?? undefined;
    const shown = new URLSearchParams(url.searchParams);
    shown.delete('correlation_id');
    const entry: ApiLogEntry = {method: req.method ?? 'GET', path: url.pathname + (shown.size ? `?${shown.toString()}` : ''), correlationId};
    this.o.log.push(entry);
    try {
      if (url.pathname === '/ovirt-engine/services/pki-resource') return this.pki(url, res);
      if (url.pathname === '/ovirt-engine/sso/oauth/token' && req.method === 'POST') return this.token(raw, res);
      if (url.pathname === '/ovirt-engine/services/sso-logout') {
        const f = new URLSearchParams(raw.toString());
        this.tokens.delete(f.get('token') ?? '');
        return send(res, 200, '');
      }
      if (url.pathname === API || url.pathname.startsWith(API + '/')) {
        let path = url.pathname.slice(API.length);
        if (path.startsWith('/v4')) path = path.slice(3);
        const version = req.headers['version'];
        if (version !== undefined && version !== '4' && version !== '3') return send(res, 400, '');
        const auth = req.headers.authorization ?? '';
        const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
        const exp = this.tokens.get(token);
        if (exp === undefined || exp < Date.now()) {
          entry.status = 401;
          return send(res, 401, '', {'www-authenticate': 'Bearer realm="RESTAPI"'});
        }
        let body: unknown;
        if (raw.length) {
          try {
            body = JSON.parse(raw.toString());
          } catch {
            return this.fault(res, new SimFault(400, 'Unrecognized token: the request body is not valid JSON', 'Request syntactically incorrect.'), entry);
          }
        }
        entry.body = body;
        const method = req.method ?? 'GET';
        // Every changing command runs as an engine job, found later by the request's
        // correlation_id (GET /jobs?search=correlation_id=...). A command that fails validation
        // leaves no job. Commands that end synchronously end their job with the request.
        const s = this.o.state;
        const job: SimJob | undefined = method === 'GET' ? undefined : {
          id: randomUUID(), correlationId: url.searchParams.get('correlation_id') ?? undefined,
          description: `${method} ${path}`, status: 'finished', start: Date.now(),
        };
        s.currentJob = job;
        let out: {status: number; body: unknown};
        try {
          out = this.route(method, path.replace(/\/$/, ''), url.searchParams, (body ?? {}) as Record<string, any>);
        } finally {
          s.currentJob = undefined;
        }
        if (job && out.status < 300) {
          if (job.status === 'finished') job.end = Date.now();
          s.jobs.push(job);
        }
        entry.status = out.status;
        return sendJson(res, out.status, finish(out.body, this.o.state.faults.legacyJson));
      }
      send(res, 404, '');
    } catch (err) {
      this.fault(res, err, entry);
    }
  }

  private fault(res: ServerResponse, err: unknown, entry: ApiLogEntry): void {
    if (err instanceof SimFault) {
      entry.status = err.status;
      if (err.status === 404 && !err.detail) return send(res, 404, '');
      return sendJson(res, err.status, {detail: err.detail, reason: err.reason});
    }
    entry.status = 500;
    sendJson(res, 500, {detail: String((err as Error)?.message ?? err), reason: 'Operation Failed'});
  }

  private pki(url: URL, res: ServerResponse): void {
    if (url.searchParams.get('resource') !== 'ca-certificate') return send(res, 400, 'Unsupported resource');
    send(res, 200, this.o.caPem, {'content-type': 'application/x-x509-ca-cert'});
  }

  private token(raw: Buffer, res: ServerResponse): void {
    const f = new URLSearchParams(raw.toString());
    if (f.get('grant_type') !== 'password') {
      return sendJson(res, 400, {error: 'unsupported_grant_type', error_description: 'The authorization grant type is not supported.'});
    }
    if (f.get('scope') !== 'ovirt-app-api') {
      // §2.1 / gotcha 27: the scope is mandatory.
      return sendJson(res, 400, {error: 'invalid_scope', error_description: 'The requested scope is invalid.'});
    }
    if (f.get('username') !== this.o.user || f.get('password') !== this.o.password) {
      return sendJson(res, 400, {error_code: 'access_denied', error: 'Cannot authenticate user Invalid user credentials.'});
    }
    const token = randomBytes(20).toString('base64');
    this.tokens.set(token, this.o.tokenTtlMs === undefined ? Number.MAX_SAFE_INTEGER : Date.now() + this.o.tokenTtlMs);
    // `exp` is a string and is not the token lifetime (§2.1).
    sendJson(res, 200, {access_token: token, scope: 'ovirt-app-api ovirt-ext=token-info:authz-search', exp: '9223372036854775807', token_type: 'bearer'});
  }

  private route(method: string, path: string, q: URLSearchParams, body: Record<string, any>): {status: number; body: unknown} {
    const s = this.o.state;
    const seg = path.split('/').filter(Boolean);
    const ok = (b: unknown, status = 200) => ({status, body: b});
    const notFound = () => {
      throw new SimFault(404, '');
    };
    const [a, id, sub, subId, action] = seg;
    if (method === 'GET') {
      if (seg.length === 0) {
        return ok({
          product_info: {name: 'oVirt Engine', vendor: 'ovirt.org', version: {
            ...(this.o.version ?? {major: 4, minor: 5, build: 7}), revision: 0,
            full_version: `${(this.o.version ?? {major: 4, minor: 5, build: 7}).major}.${(this.o.version ?? {major: 4, minor: 5}).minor}.${(this.o.version ?? {build: 7}).build}-sim`,
          }},
          link: [{href: `${API}/vms`, rel: 'vms'}],
        });
      }
      switch (a) {
        case 'datacenters':
          if (id) return ok(s.dataCenters.find((d) => d.id === id) ?? notFound());
          return ok(collection('data_center', s.dataCenters.map((d) => ({href: `${API}/datacenters/${d.id}`, id: d.id, name: d.name, status: 'up'}))));
        case 'clusters':
          if (id) return ok(clusterJson(s.clusters.find((c) => c.id === id) ?? notFound()));
          return ok(collection('cluster', s.clusters.map(clusterJson)));
        case 'hosts':
          if (id) return ok(hostJson(s.hosts.find((h) => h.id === id) ?? notFound()));
          return ok(collection('host', s.hosts.map(hostJson)));
        case 'storagedomains':
          if (id) return ok(storageDomainJson(s.storageDomains.find((d) => d.id === id) ?? notFound()));
          return ok(collection('storage_domain', s.storageDomains.map(storageDomainJson)));
        case 'disks':
          if (id) return ok(diskJson(s.disk(id)));
          return ok(collection('disk', [...s.disks.values()].map(diskJson)));
        case 'events': {
          // Newest first, at most `max` (EventsService.List).
          const max = Number(q.get('max') ?? 100);
          return ok(collection('event', [...s.events].reverse().slice(0, max).map(eventJson)));
        }
        case 'jobs': {
          // The search the SDK and go-ovirt-client use: correlation_id=<id>.
          const m = /^correlation_id\s*=\s*(\S+)$/.exec(q.get('search') ?? '');
          const jobs = m ? s.jobs.filter((j) => j.correlationId === m[1]) : s.jobs;
          if (id) return ok(jobJson(s.jobs.find((j) => j.id === id) ?? notFound()));
          return ok(collection('job', jobs.map(jobJson)));
        }
        case 'imagetransfers':
          if (id) {
            const t = s.transfers.get(id) ?? notFound();
            return ok(transferJson(t, this.o.urls()));
          }
          return ok(collection('image_transfer', [...s.transfers.values()].map((t) => transferJson(t, this.o.urls()))));
        case 'vms':
          return ok(this.getVms(id, sub, subId, action, q));
      }
      notFound();
    }
    if (method === 'POST') {
      if (a === 'vms' && !id) return ok(this.importVm(body), 201);
      if (a === 'vms' && id && sub === 'backups' && !subId) {
        const b = s.startBackup(id, {
          id: body.id, fromCheckpointId: body.from_checkpoint_id, description: body.description,
          diskIds: listOf(body.disks, 'disk').map((d: any) => d.id),
          // VmBackupsService.Add require_consistency (api-model; a URL parameter).
          requireConsistency: q.get('require_consistency') === 'true',
        });
        return ok(backupJson(b), 202);
      }
      if (a === 'vms' && id && sub === 'backups' && subId && action === 'finalize') {
        try {
          s.finalizeBackup(id, subId);
        } catch (e) {
          if (e instanceof SimFault && e.status !== 404) return {status: e.status, body: {status: 'failed', fault: {detail: e.detail, reason: e.reason}}};
          throw e;
        }
        return ok({status: 'complete'});
      }
      if (a === 'vms' && id && sub === 'diskattachments') {
        const diskId = body.disk?.id;
        if (!diskId) throw new SimFault(400, 'DiskAttachment [disk.id] required for add', 'Incomplete parameters');
        const att = {diskId, bootable: truthy(body.bootable), iface: body.interface ?? 'virtio_scsi', active: body.active === undefined ? true : truthy(body.active),
          passDiscard: truthy(body.pass_discard)};
        s.attachDisk(id, att);
        return ok(attachmentJson(s.vm(id), att, s, false), 201);
      }
      if (a === 'disks' && !id) {
        const d = s.addDisk({
          id: body.id, alias: body.alias ?? body.name, description: body.description, format: body.format, sparse: body.sparse === undefined ? undefined : truthy(body.sparse),
          provisionedSize: body.provisioned_size === undefined ? undefined : Number(body.provisioned_size), backup: body.backup,
          initialSize: body.initial_size === undefined ? undefined : Number(body.initial_size),
          storageDomainId: listOf(body.storage_domains, 'storage_domain')[0]?.id,
        });
        return ok(diskJson(d), 202);
      }
      if (a === 'imagetransfers' && !id) {
        const t = s.createTransfer({
          diskId: body.disk?.id ?? body.image?.id, backupId: body.backup?.id, direction: body.direction, format: body.format,
          inactivityTimeout: body.inactivity_timeout === undefined ? undefined : Number(body.inactivity_timeout),
          timeoutPolicy: body.timeout_policy, hostId: body.host?.id,
        });
        return ok(transferJson(t, this.o.urls()), 201);
      }
      if (a === 'imagetransfers' && id && sub) {
        try {
          s.transferAction(id, sub);
        } catch (e) {
          if (e instanceof SimFault && e.status !== 404) return {status: e.status, body: {status: 'failed', fault: {detail: e.detail, reason: e.reason}}};
          throw e;
        }
        return ok({status: 'complete'});
      }
      notFound();
    }
    if (method === 'DELETE') {
      if (a === 'vms' && id && sub === 'checkpoints' && subId) {
        s.deleteCheckpoint(id, subId);
        return ok({status: 'complete'});
      }
      if (a === 'disks' && id) {
        const d = s.disk(id);
        s.checkEngineLock(d.id, 'remove Virtual Disk');
        if (d.status === 'locked') throw new SimFault(409, `[Cannot remove Virtual Disk. Disk ${d.alias} is locked. Please try again in a few minutes.]`);
        s.deleteDiskNow(id);
        return ok({status: 'complete'});
      }
      if (a === 'vms' && id && sub === 'diskattachments' && subId) {
        const vm = s.vm(id);
        vm.attachments = vm.attachments.filter((x) => x.diskId !== subId);
        if (q.get('detach_only') === 'false') s.deleteDiskNow(subId);
        return ok({status: 'complete'});
      }
      if (a === 'vms' && id && !sub) {
        const vm = s.vm(id);
        if (vm.status !== 'down') throw new SimFault(409, '[Cannot remove VM. VM is running.]');
        if (q.get('detach_only') !== 'true') for (const at of vm.attachments) s.deleteDiskNow(at.diskId);
        s.vms.delete(id);
        return ok({status: 'complete'});
      }
      notFound();
    }
    throw new SimFault(405, 'Method not allowed');
  }

  private getVms(id: string | undefined, sub: string | undefined, subId: string | undefined, action: string | undefined, q: URLSearchParams): unknown {
    const s = this.o.state;
    if (!id) {
      let vms = [...s.vms.values()];
      const search = q.get('search');
      const m = search ? /^name\s*=\s*(.+)$/.exec(search) : null;
      if (m) {
        const re = new RegExp('^' + m[1]!.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
        vms = vms.filter((v) => re.test(v.name));
      }
      const follow = (q.get('follow') ?? '').split(',');
      const refused = follow.find((f) => s.faults.unfollowable?.includes(f));
      if (refused) throw new SimFault(400, `[Cannot follow link '${refused}'.]`);
      return collection('vm', vms.map((v) => vmJson(v, s, {
        followTags: follow.includes('tags'), followDisks: follow.includes('disk_attachments.disk'), followBackups: follow.includes('backups'),
      })));
    }
    const vm = s.vm(id);
    if (!sub) {
      const ovf = q.get('all_content') === 'true' ? this.ovfOf(vm) : undefined;
      return vmJson(vm, s, {ovf, followTags: (q.get('follow') ?? '').split(',').includes('tags')});
    }
    switch (sub) {
      case 'tags':
        return collection('tag', vm.tags.map(tagJson));
      case 'diskattachments': {
        const follow = (q.get('follow') ?? '').split(',').includes('disk');
        if (subId) {
          const at = vm.attachments.find((x) => x.diskId === subId);
          if (!at) throw new SimFault(404, '');
          return attachmentJson(vm, at, s, follow);
        }
        return collection('disk_attachment', vm.attachments.map((at) => attachmentJson(vm, at, s, follow)));
      }
      case 'backups': {
        if (!subId) return collection('backup', [...s.backups.values()].filter((b) => b.vmId === id).map(backupJson));
        const b = s.backups.get(subId);
        if (!b || b.vmId !== id) throw new SimFault(404, '');
        if (action === 'disks') {
          return collection('disk', b.diskIds.map((d) => {
            const disk = s.disks.get(d);
            const mode = b.frozen.get(d)?.mode;
            return disk ? {...diskJson(disk), backup_mode: s.clusterOf(vm).perDiskModes ? mode : undefined} : {id: d};
          }));
        }
        return backupJson(b);
      }
      case 'checkpoints': {
        const chain = s.vmCheckpoints(id);
        if (!subId) return collection('checkpoint', chain.map(checkpointJson));
        const c = chain.find((x) => x.id === subId);
        if (!c) throw new SimFault(404, '');
        if (action === 'disks') return collection('disk', c.diskIds.map((d) => (s.disks.get(d) ? diskJson(s.disks.get(d)!) : {id: d})));
        return checkpointJson(c);
      }
    }
    throw new SimFault(404, '');
  }

  private ovfOf(vm: SimVm): string {
    const disks = vm.attachments.map((a) => this.o.state.disks.get(a.diskId)).filter((d) => d !== undefined);
    return renderOvf(vm, disks);
  }

  /** POST /vms from an OVF configuration (§8.3 option A), or a plain VM (option B). */
  private importVm(body: Record<string, any>): unknown {
    const s = this.o.state;
    const clusterRef = body.cluster ?? {};
    const cluster = s.clusters.find((c) => c.id === clusterRef.id || (clusterRef.name && c.name === clusterRef.name));
    if (!cluster) {
      if (!clusterRef.id && !clusterRef.name) throw new SimFault(400, 'Vm [cluster.id|name] required for add', 'Incomplete parameters');
      throw new SimFault(400, `[Cannot add VM. Cluster doesn't exist.]`);
    }
    const conf = body.initialization?.configuration;
    let parsed: ReturnType<typeof parseOvf> | undefined;
    if (conf) {
      if (conf.type !== 'ovf') throw new SimFault(400, `[Cannot import VM. Unsupported configuration type ${conf.type}.]`);
      try {
        parsed = parseOvf(String(conf.data ?? ''));
      } catch {
        throw new SimFault(400, '[Cannot import VM. Failed to parse the OVF configuration.]');
      }
    }
    const name: string | undefined = body.name ?? parsed?.name;
    if (!name) throw new SimFault(400, 'Vm [name] required for add', 'Incomplete parameters');
    if ([...s.vms.values()].some((v) => v.name === name)) throw new SimFault(409, `[Cannot ${conf ? 'import' : 'add'} VM. VM with the same name already exists.]`);
    const regenerate = truthy(body.initialization?.regenerate_ids);
    const id = parsed?.vmId && !regenerate ? parsed.vmId : randomUUID();
    if (s.vms.has(id)) throw new SimFault(409, '[Cannot import VM. VM with the same identifier already exists.]');
    const vm: SimVm = {
      id, name, status: 'down', clusterId: cluster.id, memory: Number(body.memory ?? parsed?.memory ?? 2 ** 30), tags: [],
      attachments: [], osType: body.os?.type ?? parsed?.osType ?? 'other',
    };
    const pinned = listOf(body.placement_policy?.hosts, 'host')[0]?.id;
    if (pinned) {
      if (!s.hosts.some((h) => h.id === pinned)) throw new SimFault(400, `[Cannot add VM. Host ${pinned} doesn't exist.]`);
      vm.hostId = pinned; // the preferred host; shown once the VM runs
    }
    s.vms.set(id, vm);
    // Gotcha 25: the engine attaches the OVF's disks by id and silently skips what it cannot.
    for (const d of parsed?.diskIds ?? []) {
      const disk = s.disks.get(d);
      const props = parsed!.attach.get(d) ?? {bootable: false, iface: 'virtio_scsi'};
      if (disk && disk.status === 'ok' && !s.attachedTo(d)) vm.attachments.push({diskId: d, ...props, active: true});
    }
    return vmJson(vm, s);
  }
}

function listOf(v: any, key: string): any[] {
  if (!v) return [];
  if (Array.isArray(v)) return v;
  return Array.isArray(v[key]) ? v[key] : [];
}

function truthy(v: unknown): boolean {
  return v === true || v === 'true';
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {'content-length': Buffer.byteLength(body), ...headers});
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, obj: unknown): void {
  send(res, status, JSON.stringify(obj), {'content-type': 'application/json'});
}
