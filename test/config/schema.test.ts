import {describe, expect, it} from 'vitest';
import {ConfigError, connectionSchema, jobSchema, parseConfig, repositorySchema, workerSchema} from '../../src/config/index.js';

function problem(fn: () => unknown): {field?: string; message: string} {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    return {field: e.field, message: e.message};
  }
  throw new Error('expected a ConfigError');
}

const job = {
  id: 'nightly',
  name: 'Nightly',
  source: {connection: 'kvm', vms: [{id: 'uuid-1'}]},
  repository: 'main',
};

describe('job schema', () => {
  it('fills defaults', () => {
    const j = parseConfig(jobSchema, job, 'jobs');
    expect(j.schedule).toEqual({kind: 'none'});
    expect(j.retries).toEqual({count: 3, waitMinutes: 10});
    expect(j.notification.onFailure).toBe(true);
    expect(j.retention.restorePoints).toBe(14);
  });

  const bad: [string, unknown, string, RegExp][] = [
    ['name', {...job, name: 'a/b'}, 'jobs.name', /must not contain/],
    ['long name', {...job, name: 'x'.repeat(41)}, 'jobs.name', /at most 40/],
    ['missing name', {...job, name: undefined}, 'jobs.name', /is required/],
    ['description', {...job, description: 'x'.repeat(1025)}, 'jobs.description', /1024/],
    ['schedule.at', {...job, schedule: {kind: 'daily', at: '25:00'}}, 'jobs.schedule.at', /HH:MM/],
    ['schedule.kind', {...job, schedule: {kind: 'weekly'}}, 'jobs.schedule.kind', /kind/],
    ['schedule.day', {...job, schedule: {kind: 'monthly', day: 31, at: '01:00'}}, 'jobs.schedule.day', /1 to 28/],
    ['schedule.every', {...job, schedule: {kind: 'hours', every: 5}}, 'jobs.schedule.every', /divide a day/],
    ['schedule.expression', {...job, schedule: {kind: 'cron', expression: '61 * * * *'}}, 'jobs.schedule.expression', /minute/],
    ['cron fields', {...job, schedule: {kind: 'cron', expression: '* * * *'}}, 'jobs.schedule.expression', /five fields/],
    ['schedule.days', {...job, schedule: {kind: 'daily', at: '01:00', days: ['funday']}}, 'jobs.schedule.days[0]', /mon/],
    ['retention.restorePoints', {...job, retention: {restorePoints: 0}}, 'jobs.retention.restorePoints', /whole number/],
    ['retention.gfs.weekly', {...job, retention: {gfs: {weekly: -1}}}, 'jobs.retention.gfs.weekly', /whole number/],
    ['retries.count', {...job, retries: {count: 11}}, 'jobs.retries.count', /0 to 10/],
    ['retries.waitMinutes', {...job, retries: {waitMinutes: 'soon'}}, 'jobs.retries.waitMinutes', /whole number/],
    ['bandwidth', {...job, bandwidthLimitMBps: 0}, 'jobs.bandwidthLimitMBps', /more than 0/],
    ['activeFullDays', {...job, activeFullDays: ['x']}, 'jobs.activeFullDays[0]', /mon/],
    ['guestConsistency', {...job, guestConsistency: 'yes'}, 'jobs.guestConsistency', /true or false/],
    ['source empty', {...job, source: {connection: 'kvm'}}, 'jobs.source.vms', /at least one/],
    ['source.connection', {...job, source: {connection: 'a b', vms: [{id: 'x'}]}}, 'jobs.source.connection', /letters/],
    ['repository', {...job, repository: ''}, 'jobs.repository', /letters/],
    ['recipients', {...job, notification: {recipients: ['nobody']}}, 'jobs.notification.recipients[0]', /email address/],
    ['id', {...job, id: '../x'}, 'jobs.id', /letters/],
  ];
  for (const [what, input, field, msg] of bad) {
    it(`names the field for bad ${what}`, () => {
      const p = problem(() => parseConfig(jobSchema, input, 'jobs'));
      expect(p.field).toBe(field);
      expect(p.message).toMatch(msg);
      expect(p.message.startsWith(`${field}: `)).toBe(true);
    });
  }
});

describe('connection, repository and worker schemas', () => {
  const ovirt = {id: 'e', kind: 'ovirt', name: 'Engine', url: 'https://engine.example/ovirt-engine', user: 'admin@internal', password: 'pw', caPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----'};
  const kvm = {id: 'k', kind: 'morpheus', name: 'VME', clusters: [{name: 'c1', hosts: [{name: 'h1', connection: {kind: 'local'}}]}]};
  const cases: [string, unknown, unknown, string, RegExp][] = [
    ['url', connectionSchema, {...ovirt, url: 'http://engine'}, 'connections.url', /https/],
    ['user', connectionSchema, {...ovirt, user: 'admin'}, 'connections.user', /profile/],
    ['password', connectionSchema, {...ovirt, password: ''}, 'connections.password', /required/],
    ['caPem', connectionSchema, {...ovirt, caPem: 'nope'}, 'connections.caPem', /PEM/],
    ['caFingerprint', connectionSchema, {...ovirt, caFingerprint: 'AB'}, 'connections.caFingerprint', /SHA-256/],
    ['kind', connectionSchema, {...ovirt, kind: 'vmware'}, 'connections.kind', /ovirt/],
    ['clusters', connectionSchema, {...kvm, clusters: []}, 'connections.clusters', /at least one/],
    ['ssh host', connectionSchema, {...kvm, clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'a b', user: 'root', identityFile: '/k', hostKey: 'ssh-ed25519 AAAA'}}]}]}, 'connections.clusters[0].hosts[0].connection.host', /host name/],
    ['ssh port', connectionSchema, {...kvm, clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'h', port: 70000, user: 'root', identityFile: '/k', hostKey: 'ssh-ed25519 AAAA'}}]}]}, 'connections.clusters[0].hosts[0].connection.port', /65535/],
    ['ssh key', connectionSchema, {...kvm, clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'h', user: 'root', identityFile: 'k', hostKey: 'ssh-ed25519 AAAA'}}]}]}, 'connections.clusters[0].hosts[0].connection.identityFile', /absolute/],
    ['ssh trust', connectionSchema, {...kvm, clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'ssh', host: 'h', user: 'root', identityFile: '/k'}}]}]}, 'connections.clusters[0].hosts[0].connection.hostKey', /unknown host key/],
    ['dup host', connectionSchema, {...kvm, clusters: [{name: 'c', hosts: [{name: 'h', connection: {kind: 'local'}}]}, {name: 'd', hosts: [{name: 'h', connection: {kind: 'local'}}]}]}, 'connections.clusters[1].hosts[0].name', /twice/],
    ['repo path', repositorySchema, {id: 'r', name: 'R', path: 'rel'}, 'repositories.path', /absolute/],
    ['repo name', repositorySchema, {id: 'r', name: '', path: '/x'}, 'repositories.name', /required/],
    ['worker slots', workerSchema, {id: 'w', name: 'w', placement: {kind: 'appliance'}, slots: 0}, 'workers.slots', /1 to 64/],
    ['worker placement', workerSchema, {id: 'w', name: 'w', placement: {kind: 'moon'}}, 'workers.placement.kind', /appliance/],
    ['worker name', workerSchema, {id: 'w', name: 'w w', placement: {kind: 'appliance'}}, 'workers.name', /letters/],
  ];
  for (const [what, schema, input, field, msg] of cases) {
    it(`names the field for bad ${what}`, () => {
      const prefix = field.split('.')[0]!;
      const p = problem(() => parseConfig(schema as typeof jobSchema, input, prefix));
      expect(p.field).toBe(field);
      expect(p.message).toMatch(msg);
    });
  }
});
