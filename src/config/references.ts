/**
 * Checks between configuration objects: ids and names unique per collection, a job's repository
 * and connection exist, tags only on oVirt connections, a worker's placement names a known
 * connection, cluster and host; and what may not be deleted while something uses it.
 */
import type {FieldProblem} from './parse.js';
import type {ConfigData} from './store.js';
import {copySourceOf, vmSourceOf} from './schema.js';

export function referenceProblems(data: ConfigData): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const c of ['repositories', 'connections', 'workers', 'jobs', 'webhooks'] as const) {
    const ids = new Set<string>();
    const names = new Set<string>();
    for (const o of data[c] as {id: string; name: string}[]) {
      if (ids.has(o.id)) problems.push({field: `${c}.id`, message: `'${o.id}' is already used`});
      if (names.has(o.name.toLowerCase())) problems.push({field: `${c}.name`, message: `'${o.name}' is already used`});
      ids.add(o.id);
      names.add(o.name.toLowerCase());
    }
  }
  const paths = new Set<string>();
  for (const r of data.repositories) {
    if (paths.has(r.path)) problems.push({field: 'repositories.path', message: `${r.path} is already a repository of this appliance`});
    paths.add(r.path);
  }
  for (const j of data.jobs) {
    for (const w of j.notification.webhooks) {
      if (!data.webhooks.some((x) => x.id === w)) problems.push({field: 'jobs.notification.webhooks', message: `no webhook with id '${w}'`});
    }
    if (!data.repositories.some((r) => r.id === j.repository)) problems.push({field: 'jobs.repository', message: `no repository with id '${j.repository}'`});
    const verifyOn = j.restoreVerification.connection;
    if (verifyOn !== undefined) {
      const v = data.connections.find((c) => c.id === verifyOn);
      if (!v) problems.push({field: 'jobs.restoreVerification.connection', message: `no connection with id '${verifyOn}'`});
      else if (v.kind !== 'morpheus') problems.push({field: 'jobs.restoreVerification.connection', message: `${v.name} is not a libvirt (Morpheus) connection: restore points are verified by starting them on a libvirt host`});
    }
    const copy = copySourceOf(j);
    if (copy) {
      if (!data.repositories.some((r) => r.id === copy.repository)) problems.push({field: 'jobs.source.repository', message: `no repository with id '${copy.repository}'`});
      else if (copy.repository === j.repository) problems.push({field: 'jobs.source.repository', message: 'is the job\'s own repository: a copy goes to another one'});
      if (j.restoreVerification.enabled) problems.push({field: 'jobs.restoreVerification.enabled', message: 'is for backup jobs; a copy job checks its copies by reading them back (source.verify)'});
      continue;
    }
    const source = vmSourceOf(j)!;
    const conn = data.connections.find((c) => c.id === source.connection);
    if (!conn) {
      problems.push({field: 'jobs.source.connection', message: `no connection with id '${source.connection}'`});
      continue;
    }
    if (conn.kind !== 'ovirt' && source.tags.length > 0) problems.push({field: 'jobs.source.tags', message: 'tags can only select VMs of an oVirt/OLVM connection'});
    if (conn.kind === 'morpheus') {
      const clusters = conn.clusters.map((c) => c.name);
      const hosts = conn.clusters.flatMap((c) => c.hosts.map((h) => h.name));
      for (const c of source.clusters) if (!clusters.includes(c)) problems.push({field: 'jobs.source.clusters', message: `'${c}' is not a cluster of ${conn.name}`});
      for (const h of source.hosts) if (!hosts.includes(h)) problems.push({field: 'jobs.source.hosts', message: `'${h}' is not a host of ${conn.name}`});
    }
  }
  for (const w of data.workers) {
    if (w.placement.kind === 'appliance') continue;
    const conn = data.connections.find((c) => c.id === (w.placement as {connection: string}).connection);
    if (!conn) {
      problems.push({field: 'workers.placement.connection', message: `no connection with id '${w.placement.connection}'`});
      continue;
    }
    const p = w.placement;
    if (conn.kind === 'morpheus') {
      if (p.kind === 'cluster' && !conn.clusters.some((c) => c.name === p.cluster)) {
        problems.push({field: 'workers.placement.cluster', message: `'${p.cluster}' is not a cluster of ${conn.name}`});
      }
      if (p.kind === 'host' && !conn.clusters.some((c) => c.hosts.some((h) => h.name === p.host))) {
        problems.push({field: 'workers.placement.host', message: `'${p.host}' is not a host of ${conn.name}`});
      }
    }
  }
  return problems;
}

/** Why `id` of `collection` may not be removed, or undefined. */
export function removalProblem(data: ConfigData, collection: string, id: string): string | undefined {
  if (collection === 'repositories') {
    const jobs = data.jobs.filter((j) => j.repository === id || copySourceOf(j)?.repository === id).map((j) => j.name);
    if (jobs.length) return `repository '${id}' is used by job(s) ${jobs.join(', ')}`;
  }
  if (collection === 'connections') {
    const jobs = data.jobs.filter((j) => vmSourceOf(j)?.connection === id || j.restoreVerification.connection === id).map((j) => j.name);
    if (jobs.length) return `connection '${id}' is used by job(s) ${jobs.join(', ')}`;
    const workers = data.workers.filter((w) => w.placement.kind !== 'appliance' && w.placement.connection === id).map((w) => w.name);
    if (workers.length) return `connection '${id}' is used by worker(s) ${workers.join(', ')}`;
  }
  if (collection === 'webhooks') {
    const jobs = data.jobs.filter((j) => j.notification.webhooks.includes(id)).map((j) => j.name);
    if (jobs.length) return `webhook '${id}' is used by job(s) ${jobs.join(', ')}`;
  }
  return undefined;
}
