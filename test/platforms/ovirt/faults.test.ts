/**
 * Faults the oVirt adapter must ride out, against the simulator: an unreachable transfer_url
 * (gotcha 11), an expired SSO token (§2.1, gotcha 27), a transfer cancelled for inactivity
 * (§5.6, §10.2 "imageio 403 mid-transfer"), slow engine phases, and old-engine JSON (§1.3).
 */
import {afterEach, describe, expect, it} from 'vitest';
import {readSource, startBed, stopBed, type Bed} from './helpers.js';

let bed: Bed | undefined;
afterEach(async () => {
  await stopBed(bed);
  bed = undefined;
});

describe('oVirt faults', () => {
  it('reads through proxy_url when transfer_url cannot be reached', async () => {
    bed = await startBed();
    bed.sim.faults.transferUrlUnreachable = true;
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    expect((b.sources[0] as unknown as {via: string}).via).toBe('proxy_url');
    const {image} = await readSource(b.sources[0]!);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    expect(bed.sim.imageioLog.filter((l) => l.op === 'GET').every((l) => l.via === 'proxy')).toBe(true);
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'imageio-proxy'}));
    await b.complete();
  });

  it('uses transfer_url (the host) when it can be reached', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    await readSource(b.sources[0]!);
    expect(bed.sim.imageioLog.filter((l) => l.op === 'GET').every((l) => l.via === 'daemon')).toBe(true);
    await b.complete();
  });

  it('logs in again once when the token expired, also in the middle of a backup', async () => {
    bed = await startBed();
    const logins = () => bed!.sim.apiLog.filter((l) => l.path.startsWith('/ovirt-engine/sso/oauth/token')).length;
    await bed.platform.inventory();
    expect(logins()).toBe(1);
    bed.sim.faults.expireTokens();
    const vms = await bed.platform.inventory();
    expect(vms.length).toBe(3);
    expect(logins()).toBe(2);
    // inventory() sends three requests at once: each got one 401, and they shared one new login.
    expect(bed.sim.apiLog.filter((l) => l.status === 401)).toHaveLength(3);
    const vm = bed.sim.vm('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    for (const s of b.sources) await readSource(s);
    bed.sim.faults.expireTokens();
    await b.complete();
    expect(logins()).toBe(3);
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('succeeded');
  });

  it('a transfer cancelled for inactivity is replaced and the read continues', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    const src = b.sources[0]!;
    const first = await src.read(0, 65536);
    expect(first.equals(os!.image.read(0, 65536))).toBe(true);
    const [hit] = bed.sim.faults.timeOutTransfer();
    expect(hit!.endedBy).toBe('inactivity');
    const {image} = await readSource(src);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    expect(bed.sim.imageioLog.some((l) => l.status === 403)).toBe(true);
    expect(bed.events).toContainEqual(expect.objectContaining({severity: 'warning', code: 'transfer-restarted', disk: os!.alias}));
    expect(bed.sim.state.transfers.size).toBe(2);
    await b.complete();
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('succeeded');
  });

  it('a transfer cancelled while reads are in flight: new requests get 403 at once, the reads in flight end after their current buffer, every read comes back right', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    const src = b.sources[0]!;
    // Slow storage: each response pauses between its 64 KiB slices, so reads stay in flight. The
    // daemon's read buffer is 256 KiB here (8 MiB on a real host): a cancelled read goes on to the
    // end of its current buffer before its response is cut, while a new request is refused at once.
    bed.sim.faults.slowReadsMs = 40;
    bed.sim.state.imageioBufferBytes = 256 * 1024;
    const MiB = 2 ** 20;
    // Three reads of 1 MiB on three of the four connections, then the engine cancels the transfer
    // (its inactivity clock, or an administrator).
    const reads = [0, 1, 2].map((i) => src.read(i * 4 * MiB, MiB));
    while (bed.sim.imageioLog.filter((l) => l.op === 'GET').length < 3) await new Promise((r) => setTimeout(r, 5));
    const [hit] = bed.sim.faults.timeOutTransfer();
    expect(hit).toBeDefined();
    // A fourth read starts now on the free connection: 403 at once, and its recovery replaces the
    // transfer while the three are still sending their current buffer on the old one.
    const fourth = src.read(20 * MiB, 128 * 1024);
    const got = await Promise.all([...reads, fourth]);
    bed.sim.faults.slowReadsMs = undefined;
    for (const i of [0, 1, 2]) expect(got[i]!.equals(os!.image.read(i * 4 * MiB, MiB))).toBe(true);
    expect(got[3]!.equals(os!.image.read(20 * MiB, 128 * 1024))).toBe(true);
    expect(bed.sim.imageioLog).toContainEqual(expect.objectContaining({op: 'GET', status: 403}));
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'transfer-restarted', disk: os!.alias}));
    expect(bed.events.filter((e) => e.code === 'transfer-restarted')).toHaveLength(1);
    await b.complete();
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('succeeded');
  });
  it('reads keep coming while the transfer is replaced: none fails on the closed client', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    const src = b.sources[0]!;
    bed.sim.faults.slowReadsMs = 5;
    bed.sim.state.imageioBufferBytes = 128 * 1024;
    // Four readers that each read 256 KiB pieces one after another, as the backup pipeline does;
    // the transfer is cancelled twice on the way.
    const piece = 256 * 1024;
    const jobs = Array.from({length: 32}, (_, i) => i * piece);
    const out = Buffer.alloc(32 * piece);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const at = jobs[next++]!;
        (await src.read(at, piece)).copy(out, at);
      }
    };
    const running = Promise.all(Array.from({length: 4}, worker));
    for (const after of [6, 18]) {
      while (next < after) await new Promise((r) => setTimeout(r, 2));
      bed.sim.faults.timeOutTransfer();
    }
    await running;
    bed.sim.faults.slowReadsMs = undefined;
    expect(out.equals(os!.image.read(0, 32 * piece))).toBe(true);
    expect(bed.events.filter((e) => e.code === 'transfer-restarted').length).toBeGreaterThanOrEqual(1);
    await b.complete();
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('succeeded');
  });
  it('the engine cancels an idle transfer on its own inactivity clock; the source recovers', async () => {
    bed = await startBed();
    const vm = bed.sim.vm('web01');
    const [os] = bed.sim.disksOf('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log, disks: [os!.id]});
    bed.sim.faults.inactivityTimeoutMs = 50;
    const t = [...bed.sim.state.transfers.values()][0]!;
    while (t.phase === 'transferring') await new Promise((r) => setTimeout(r, 20));
    bed.sim.faults.inactivityTimeoutMs = undefined;
    const {image} = await readSource(b.sources[0]!);
    expect(image.equals(os!.image.read(0, os!.image.size))).toBe(true);
    await b.complete();
  });

  it('slow engine phases are waited for by polling', async () => {
    bed = await startBed({delayMs: 150});
    const vm = bed.sim.vm(`db 01 'quoted'; ünï`);
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    const polls = bed.sim.apiLog.filter((l) => l.method === 'GET' && /\/backups\/[^/]+$/.test(l.path)).length;
    expect(polls).toBeGreaterThan(1);
    await readSource(b.sources[0]!);
    await b.complete();
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('succeeded');
  });

  it('old-engine JSON with numbers and booleans as strings (§1.3) reads the same', async () => {
    bed = await startBed({legacyJson: true});
    const vms = await bed.platform.inventory();
    const web = vms.find((v) => v.name === 'web01')!;
    expect(web.disks.map((d) => d.size)).toEqual([64 * 2 ** 20, 32 * 2 ** 20]);
    const b = await bed.platform.openBackup(web.id, {log: bed.log});
    expect(b.sources[0]!.size).toBe(64 * 2 ** 20);
    await readSource(b.sources[0]!);
    await b.complete();
  });

  it('an engine older than 4.4 is refused with a UserError before any backup starts (§1.7)', async () => {
    bed = await startBed({engineVersion: {major: 4, minor: 3, build: 10}});
    const vm = bed.sim.vm('web01');
    await expect(bed.platform.openBackup(vm.id, {log: bed.log})).rejects.toMatchObject({name: 'UserError', exitCode: 23, message: expect.stringContaining('4.3.10')});
    expect(bed.sim.state.backups.size).toBe(0);
  });

  it('an engine that drops finished backups and transfers at once (< 4.4.7, gotcha 24) still completes', async () => {
    bed = await startBed();
    bed.sim.faults.dropFinished = true;
    const vm = bed.sim.vm('web01');
    const b = await bed.platform.openBackup(vm.id, {log: bed.log});
    for (const s of b.sources) await readSource(s);
    await b.complete();
    expect(bed.sim.state.backups.size).toBe(0);
    expect(bed.sim.state.transfers.size).toBe(0);
    expect(bed.sim.state.isDuringBackup(vm.id)).toBe(false);
  });

  it('a checkpoint that vanishes while the backup starts (event 10791) ends in a full backup', async () => {
    bed = await startBed({delayMs: 100});
    const vm = bed.sim.vm('web01');
    const full = await bed.platform.openBackup(vm.id, {log: bed.log});
    await full.complete();
    const pending = bed.platform.openBackup(vm.id, {baseCheckpoint: full.checkpoint, log: bed.log});
    while (![...bed.sim.state.backups.values()].some((b) => b.phase === 'initializing')) await new Promise((r) => setTimeout(r, 5));
    bed.sim.faults.vanishCheckpoint(full.checkpoint!.id);
    const b = await pending;
    expect(b.sources.every((s) => !s.incremental)).toBe(true);
    expect(bed.events).toContainEqual(expect.objectContaining({code: 'checkpoint-lost', message: expect.stringContaining('failed the incremental')}));
    expect([...bed.sim.state.backups.values()].filter((x) => x.phase === 'failed')).toHaveLength(1);
    await b.complete();
  });

  it('a backup that never becomes ready times out with a UserError and is finalized', async () => {
    bed = await startBed({delayMs: 60_000}, {phaseTimeoutMs: 300});
    const vm = bed.sim.vm('web01');
    await expect(bed.platform.openBackup(vm.id, {log: bed.log})).rejects.toMatchObject({name: 'UserError', message: expect.stringContaining('Timed out')});
    // The premature finalize fails the backup on the engine (§4.5) instead of leaving it running.
    expect([...bed.sim.state.backups.values()][0]!.phase).toBe('finalizing');
  });
});
