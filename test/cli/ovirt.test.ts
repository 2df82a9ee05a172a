/**
 * The CLI against the oVirt engine simulator: confirm the engine CA, back up a VM through
 * `vmbackup backup --engine …`, restore its disks to files and compare with the simulator's
 * disks, and a wrong password that says so.
 */
import {existsSync} from 'node:fs';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, expect, it} from 'vitest';
import {ExitCode} from '../../src/util/errors.js';
import {vmbackup} from '../lib/cli.js';
import {startSimulator, type Simulator} from '../ovirt-sim/index.js';

let sim: Simulator;
let dir: string;
beforeAll(async () => {
  sim = await startSimulator({delayMs: 5});
  dir = await mkdtemp(join(tmpdir(), 'cli ovirt ü '));
});
afterAll(async () => {
  await sim?.stop();
  if (dir) await rm(dir, {recursive: true, force: true});
});

it('confirms the CA, backs up through the engine and restores the disks bit-identical', async () => {
  const ca = join(dir, 'engine-ca.pem');
  const shown = await vmbackup(['ovirt', 'ca', sim.url]);
  expect(shown.exitCode, shown.stderr).toBe(0);
  expect(shown.stdout).toContain(sim.caFingerprint);
  expect((await vmbackup(['ovirt', 'ca', sim.url, '--save', ca])).exitCode).toBe(0);

  const pw = join(dir, 'password');
  await writeFile(pw, `${sim.password}\n`, {mode: 0o600});
  const repo = join(dir, 'repo');
  expect((await vmbackup(['repo', 'create', repo])).exitCode).toBe(0);
  const engine = ['--engine', sim.url, '--user', sim.user, '--password-file', pw, '--ca-file', ca];
  const vmName = `db 01 'quoted'; ünï`;
  const b = await vmbackup(['backup', ...engine, '--vm', vmName, '--repo', repo]);
  expect(b.exitCode, b.stderr).toBe(0);
  expect(b.stdout).toContain('restore point');
  expect(b.stdout).not.toContain(sim.password);

  const out = join(dir, 'restored');
  // --dry-run says what would be made, and makes nothing.
  const dry = await vmbackup(['restore', '--repo', repo, '--vm', vmName, '--to-files', out, '--format', 'raw', '--dry-run']);
  expect(dry.exitCode, dry.stderr).toBe(0);
  expect(dry.stdout).toContain(`to raw image files in ${out} on this appliance would:`);
  for (const d of sim.disksOf(vmName)) expect(dry.stdout).toContain(`create:  disk ${d.id}: raw image ${out}/`);
  expect(dry.stdout).toContain('Nothing was changed (--dry-run).');
  expect(existsSync(out)).toBe(false);
  const r = await vmbackup(['restore', '--repo', repo, '--vm', vmName, '--to-files', out, '--format', 'raw', '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  const files: string[] = JSON.parse(r.stdout).files;
  for (const d of sim.disksOf(vmName)) {
    const file = files.find((f) => f.includes(d.id));
    expect(file).toBeDefined();
    expect((await readFile(file!)).equals(d.image.read(0, d.image.size))).toBe(true);
  }

  await writeFile(pw, 'wrong-password\n');
  const denied = await vmbackup(['backup', ...engine, '--vm', vmName, '--repo', repo]);
  expect(denied.exitCode).toBe(ExitCode.authFailed);
  expect(denied.stderr).toMatch(/^error: /m);
  expect(denied.stderr).not.toContain('wrong-password');
});
