/**
 * Under systemd the daemon's stdout goes to journald, which reads a syslog priority prefix
 * ("<4>") at the start of each line: with it `journalctl -p warning` shows warnings and errors
 * only. A real vmbackupd started with JOURNAL_STREAM set (as systemd sets it) writes the prefixes;
 * the console's log view (GET /logs) gets the lines without them.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {journalLine} from '../../src/daemon/log.js';
import {startDaemon, type RunningDaemon} from './helpers.js';

let dir: string;
let d: RunningDaemon;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-journal-'));
  d = await startDaemon(join(dir, 'state'), join(dir, 'api.sock'), {JOURNAL_STREAM: '8:123456'});
});
afterAll(async () => {
  await d?.stop();
  await rm(dir, {recursive: true, force: true});
});

describe('log lines for journald', () => {
  it('carry the syslog priority of their level', async () => {
    expect(d.lines.find((l) => l.includes('Listening on'))).toMatch(/^<6>INFO  Listening on /);
    // A refused change is logged as a warning by the API.
    await d.client.create('repositories', {id: 'bad id!', name: 'x', path: 'relative'}).catch(() => undefined);
    const logs = await d.client.logs(50);
    expect(logs.lines.every((l) => !/^<\d>/.test(l))).toBe(true);
    // journald stamps its own time; the console's log view gets the lines with theirs.
    expect(logs.lines.every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l))).toBe(true);
    expect(d.lines.every((l) => /^<[3467]>/.test(l))).toBe(true);
  });

  it('the fallback log file (no systemd) is rotated by logrotate with the rule the installer puts in place', async () => {
    const {execa} = await import('execa');
    const {readFile, writeFile, stat} = await import('node:fs/promises');
    const log = join(dir, 'vmbackupd.log');
    await writeFile(log, '2026-12-07T03:00:00.000Z INFO  a line\n'.repeat(100));
    const rule = (await readFile('appliance/logrotate.d/vmbackupd', 'utf8')).replace('/var/log/vmbackupd.log', log).replace('su root root', '');
    await writeFile(join(dir, 'rule'), rule);
    const r = await execa('logrotate', ['-f', '-s', join(dir, 'logrotate.state'), join(dir, 'rule')], {reject: false});
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await stat(log)).size).toBe(0); // copytruncate: emptied in place, the daemon keeps writing to it
    expect((await readFile(`${log}.1`, 'utf8')).split('\n')[0]).toBe('2026-12-07T03:00:00.000Z INFO  a line');
  });

  it('maps each level to its priority', () => {
    expect(['error', 'warn', 'info', 'debug'].map((l) => journalLine(l as 'error', 'x'))).toEqual(['<3>x', '<4>x', '<6>x', '<7>x']);
  });
});
