/**
 * Names from outside that carry terminal control sequences (a VM named by a tenant, a hostile
 * repository) reach the CLI's and the console's screens only as visible escapes
 * (docs/security.md). The CLI is run as a user would; the console's API layer against a real
 * daemon serving a real repository.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {consoleApi} from '../../src/console/api.js';
import {createRepository} from '../../src/repository/index.js';
import {terminalSafe} from '../../src/util/format.js';
import {isolate, startDaemon, type RunningDaemon} from '../daemon/helpers.js';
import {vmbackup} from '../lib/cli.js';
import {backupImage, pseudoRandom} from '../repository/helpers.js';

/** Retitles the window, clears the screen, and writes in 8-bit CSI form too. */
const EVIL = 'web\u001b]0;pwned\u0007\u001b[2J\u009b31m\r\u0008x';
let dir: string;
let repoPath: string;
let d: RunningDaemon;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-terminal-'));
  repoPath = join(dir, 'repo');
  const repo = await createRepository(repoPath, {chunkSize: 64 * 1024});
  await backupImage(repo, pseudoRandom(64 * 1024, 1), {vmName: EVIL});
  d = await startDaemon(join(dir, 'state'), join(dir, 'run', 'api.sock'));
  await isolate(d.client);
});
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('terminal control characters from outside', () => {
  it('terminalSafe makes every C0/C1 control character visible and keeps the text readable', () => {
    expect(terminalSafe(EVIL)).toBe('web\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x0d\\x08x');
    expect(terminalSafe('line 1\nline\t2')).toBe('line 1\nline\t2');
    expect(terminalSafe('a\nb', {oneLine: true})).toBe('a\\x0ab');
  });

  it('the CLI lists a VM whose name carries escape sequences without passing them to the terminal', async () => {
    const r = await vmbackup(['repo', 'list', repoPath]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toMatch(CONTROL);
    expect(r.stdout).toContain('web\\x1b]0;pwned');
    // --json keeps the real name (JSON escapes it): scripts see the data as it is.
    const j = await vmbackup(['repo', 'list', repoPath, '--json']);
    expect(JSON.parse(j.stdout)[0].vmName).toBe(EVIL);
    // An error that quotes a name from outside is escaped too.
    const e = await vmbackup(['restore', '--repo', repoPath, '--vm', EVIL.replace('web', 'nope'), '--to-files', join(dir, 'out')]);
    expect(e.exitCode).not.toBe(0);
    expect(e.stderr).not.toMatch(CONTROL);
  });

  it('the console gets names and errors from the daemon with their control characters made visible', async () => {
    const api = consoleApi(d.client);
    const repo = await api.create<{id: string}>('repositories', {name: 'Evil', path: repoPath});
    const points = await api.restorePoints(repo.id);
    expect(points).toHaveLength(1);
    expect(points[0]!.vmName).not.toMatch(CONTROL);
    expect(points[0]!.vmName).toContain('\\x1b[2J');
    const err = await api.get('repositories', EVIL).then(() => undefined, (e: Error) => e);
    expect(err?.message).toBeDefined();
    expect(err!.message).not.toMatch(CONTROL);
  });
});
