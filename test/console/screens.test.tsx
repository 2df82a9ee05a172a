/** Every screen: help, Esc, q and the 80×24 fit; then each management screen's actions against the fake API. */
import {afterEach, describe, expect, it} from 'vitest';
import {SCREENS} from '../../src/console/screens/index.js';
import {FINGERPRINT, makeSession, seeded} from './fake-api.js';
import {KEY, overlong, renderApp, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

const PARAMS: Record<string, Record<string, string>> = {job: {id: 'nightly'}, session: {id: 's-1'}, 'job-wizard': {}, restore: {}};

describe('every screen', () => {
  for (const name of Object.keys(SCREENS)) {
    it(`${name}: ? shows help, Esc closes it, Esc goes back, q quits, fits 80×24`, async () => {
      r = await renderApp(seeded(), {name, params: PARAMS[name]});
      await r.waitFor(/\S/);
      await r.press(''); // let loads settle
      await new Promise((res) => setTimeout(res, 20));
      await r.press('');
      const f = r.frame();
      expect(overlong(f)).toEqual([]);
      expect(f.split('\n').length).toBeLessThanOrEqual(24);
      if (name !== 'dashboard') {
        // Help works even where a text field has the focus: leave it with ↓ is not needed on lists.
        await r.press('?');
        const typing = !r.frame().includes('Help: ');
        if (!typing) {
          await r.press(KEY.esc);
          expect(r.frame()).not.toContain('Help: ');
        }
        await r.press(KEY.esc);
        await r.waitFor('Enter open job');
      }
      await r.press('q');
      await r.waitFor(/./);
      expect(r.exited()).toBe(true);
    });
  }
});

describe('repositories', () => {
  it('lists repositories, verifies and prunes the chosen one (↓ ↓ Enter burst in the action menu)', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('✔ main');
    await r.press(KEY.enter);
    await r.waitFor('Verify now');
    await r.press(KEY.enter);
    await r.waitFor('Verify found no damage (1 VMs).');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Pruned 2 restore point(s).');
    expect(api.called('prune')[0]!.args).toEqual(['main']);
  });

  it('browses the restore points: protects one, forgets one after a confirmation ("No" keeps it), restores from one', async () => {
    const api = seeded();
    api.points.main = [
      {id: 'web01-20261121t220000z-aaaaaa', vmId: 'vm-1', vmName: 'web01', time: '2026-11-21T22:00:00Z', type: 'full', sizeBytes: 2 ** 30, storedBytes: 0, protected: false, platform: 'libvirt', disks: [{key: 'vda', name: 'web01.qcow2', size: 2 ** 30}]},
      {id: 'web01-20261122t220000z-bbbbbb', vmId: 'vm-1', vmName: 'web01', time: '2026-11-22T22:00:00Z', type: 'incremental', sizeBytes: 2 ** 30, storedBytes: 0, protected: false, platform: 'libvirt', disks: [{key: 'vda', name: 'web01.qcow2', size: 2 ** 30}]},
    ];
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('✔ main');
    await r.press(KEY.enter);
    await r.waitFor('Restore points');
    await r.press(KEY.down.repeat(4) + KEY.enter);
    let f = await r.waitFor('Restore points (2)');
    // Newest first: the incremental of the 22nd, then the full of the 21st.
    expect(f.indexOf('incremental')).toBeLessThan(f.indexOf('full'));
    expect(overlong(f)).toEqual([]);
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Protect it');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Protected: retention never removes it.');
    expect(api.called('protectRestorePoint')[0]!.args).toEqual(['main', 'web01-20261121t220000z-aaaaaa', true]);
    await r.waitFor('Lift the protection');
    await r.press(KEY.down + KEY.down + KEY.enter);
    f = await r.waitFor('It can no longer be restored');
    expect(f).toContain('Forget restore point web01-20261121t220000z-aaaaaa of web01');
    expect(f).toContain('It is protected');
    await r.press(KEY.enter); // "No, keep it" is first
    await r.waitFor('Lift the protection');
    expect(api.called('forgetRestorePoint')).toEqual([]);
    await r.press(KEY.down + KEY.down + KEY.enter);
    await r.waitFor('It can no longer be restored');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Forgot restore point web01-20261121t220000z-aaaaaa.');
    expect(api.points.main!.map((p) => p.id)).toEqual(['web01-20261122t220000z-bbbbbb']);
    // Restore from the one left: the wizard opens at "where to".
    await r.press(KEY.enter);
    await r.waitFor('Restore from here');
    await r.press(KEY.enter);
    f = await r.waitFor('where to');
    expect(f).toContain('Whole VM as a new VM');
  });

  it('the retention lock: shown with what holds it, raised, and a lower one refused in the daemon\'s words', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('✔ main');
    await r.press(KEY.enter);
    await r.waitFor('Retention lock');
    await r.press(KEY.down.repeat(5) + KEY.enter);
    let f = await r.waitFor('Retention lock of main');
    expect(f).toContain('No lock');
    expect(f).toContain('holds against vmbackup (CLI, API, console) only');
    expect(overlong(f)).toEqual([]);
    await r.press(`30${KEY.enter}`);
    f = await r.waitFor('✔ main is locked for 30 days.');
    expect(api.locks.main!.days).toBe(30);
    await r.waitFor('Locked for 30 days');
    await r.press(`${KEY.backspace.repeat(2)}10${KEY.enter}`);
    f = await r.waitFor('a lock can be raised, not lowered');
    expect(api.locks.main!.days).toBe(30);
  });

  it('adds a repository in an S3 bucket: address, keys (the secret unseen), region by default', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('Add an S3 bucket');
    await r.press(KEY.down.repeat(3) + KEY.enter);
    await r.waitFor('Secret key');
    await r.press(`Offsite${KEY.enter}s3://s3.example.com/backups/site-a${KEY.enter}AKIA123${KEY.enter}very-secret-key${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    const f = await r.waitFor(/Offsite/);
    expect(f).not.toContain('very-secret-key');
    expect(api.data.repositories[1]).toMatchObject({id: 'offsite', path: 's3://s3.example.com/backups/site-a', s3: {accessKeyId: 'AKIA123', secretAccessKey: 'very-secret-key', region: 'us-east-1'}});
  });

  it('adds a repository on another appliance over SSH: the authorized_keys line pinned to repo serve, the far host key compared before it is trusted', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('Add one on another appliance');
    await r.press(KEY.down.repeat(4) + KEY.enter);
    let f = await r.waitFor('Directory there');
    expect(f.replace(/\s+/g, ' ')).toContain('command="vmbackup repo serve /srv/vmbackup/copy",restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApplianceFake');
    // Name, appliance, directory, user (default), port, vmbackup there (default), not encrypted.
    await r.press(`Far${KEY.enter}b.example.com${KEY.enter}srv/far${KEY.enter}${KEY.enter}2222${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    f = await r.waitFor('is not an absolute path');
    expect(api.data.repositories).toHaveLength(1);
    // The form comes back where it was left (the last field): up to the directory, and fix it.
    await r.press(`${KEY.up.repeat(6)}${KEY.backspace.repeat(7)}/srv/far${KEY.enter.repeat(7)}`);
    f = await r.waitFor('Compare the host key');
    expect(f).toContain('b.example.com: SHA256:abcdefghijklmnop (ssh-ed25519)');
    await r.press(KEY.enter);
    await r.waitFor(/✔ Far/);
    expect(api.data.repositories[1]).toMatchObject({id: 'far', path: 'ssh://vmbackup-copy@b.example.com:2222/srv/far', ssh: {hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake'}});
  });

  it('prune on a daemon without the endpoint says so inline', async () => {
    const api = seeded();
    api.missing('prune', '/repositories/main/prune');
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('✔ main');
    await r.press(KEY.enter);
    await r.waitFor('Prune');
    await r.press(KEY.down + KEY.enter);
    const f = await r.waitFor('does not offer');
    expect(f).toContain('✖ This daemon does not offer that yet.');
  });

  it('adds a repository with a name that needs an id made for it', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('Add a repository');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Directory');
    await r.press(`Offsite Ü 2${KEY.enter}/srv/backup/off site${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('✔ Offsite Ü 2');
    expect(api.data.repositories[1]).toMatchObject({id: 'offsite-u-2', name: 'Offsite Ü 2', path: '/srv/backup/off site'});
    expect(api.data.repositories[1]!.passphrase).toBeUndefined();
    expect(r.frame().split('\n')[0]).toContain('Repositories');
  });

  it('adds an encrypted repository: the passphrase typed twice, unseen; a mismatch is said and nothing saved', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repository-add'});
    await r.waitFor('Repeat passphrase');
    // Name, directory, Encrypt → yes (→), passphrase, a different repeat.
    await r.press(`Offsite${KEY.enter}/srv/backup/offsite${KEY.enter}${KEY.right}${KEY.enter}correct horse battery${KEY.enter}correct horse batter${KEY.enter}`);
    let f = await r.waitFor('The two passphrases differ');
    expect(f).not.toContain('correct horse');
    expect(api.data.repositories).toHaveLength(1);
    await r.press(`y${KEY.enter}`);
    // Saved, the form closes (back where it was opened from: here the dashboard, which lists it).
    f = await r.waitFor(/Offsite\s+10 GiB/);
    expect(api.data.repositories[1]).toMatchObject({id: 'offsite', path: '/srv/backup/offsite', passphrase: 'correct horse battery'});
    expect(f).not.toContain('correct horse');
  });

  it('makes a copy job in its form (same repository twice refused), shows it as a copy, and edits it in the same form', async () => {
    const api = seeded();
    api.data.repositories.push({id: 'offsite', name: 'offsite', path: '/mnt/offsite/repo', passphrase: 'kept by the daemon'});
    r = await renderApp(api, {name: 'jobs'});
    await r.waitFor('+ New copy job');
    await r.press(KEY.down + KEY.down + KEY.enter);
    await r.waitFor('Check copies');
    // Name; From main; To ← (main: the same) → refused; then → back to offsite.
    await r.press(`Offsite copy${KEY.enter}${KEY.enter}${KEY.left}${KEY.enter}06:00${KEY.enter}7${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('The copy must go to another repository');
    expect(api.data.jobs).toHaveLength(1);
    await r.press(`${KEY.up}${KEY.up}${KEY.up}${KEY.up}${KEY.right}${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('Offsite copy');
    expect(api.data.jobs[1]).toMatchObject({
      id: 'offsite-copy',
      source: {repository: 'main', vms: [], verify: true},
      repository: 'offsite',
      schedule: {kind: 'daily', at: '06:00'},
      retention: {restorePoints: 7},
    });
    let f = await r.waitFor(/Offsite copy\s+copy · /);
    expect(overlong(f)).toEqual([]);
    // Open it: it says what it copies; Edit opens the copy form filled in.
    await r.press(KEY.down + KEY.enter);
    f = await r.waitFor('copies of every VM from repository main, read back and checked');
    await r.press(`${KEY.down}${KEY.down}${KEY.down}${KEY.enter}`);
    await r.waitFor('Check copies');
    expect(r.frame()).toContain('Offsite copy');
    await r.press(`${KEY.down}${KEY.down}${KEY.down}${KEY.down}${KEY.backspace}3${KEY.enter}${KEY.enter}${KEY.enter}`);
    await r.waitFor('copies of every VM');
    expect(api.data.jobs[1]).toMatchObject({retention: {restorePoints: 3}, schedule: {kind: 'daily', at: '06:00'}, repository: 'offsite'});
  });

  it('shows the daemon’s refusal in plain words and keeps the form', async () => {
    const api = seeded();
    const {UserError} = await import('../../src/util/errors.js');
    api.fail('create', new UserError('Invalid repository: path must be an absolute path.', {hint: 'Correct the field(s) named above and save again.'}));
    r = await renderApp(api, {name: 'repository-add'});
    await r.press(`x${KEY.enter}relative${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}`);
    const f = await r.waitFor('absolute path');
    expect(f).toContain('✖ Invalid repository: path must be an absolute path.');
    expect(f).toContain('Correct the field');
    expect(api.data.repositories).toHaveLength(1);
  });
});

describe('connections', () => {
  it('oVirt: fetches the CA, shows the fingerprint, tests, then saves', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'connection-add'});
    await r.press(KEY.enter);
    await r.waitFor('Engine URL');
    expect(r.frame()).toContain('❯ Name');
    await r.press(`olvm${KEY.enter}https://olvm.example.com/ovirt-engine${KEY.enter}admin@internal${KEY.enter}pa ss"wd${KEY.enter}`);
    await r.waitFor(FINGERPRINT.slice(0, 47));
    expect(r.frame()).toContain(FINGERPRINT.slice(48));
    expect(api.data.connections).toHaveLength(1);
    await r.press(KEY.enter);
    await r.waitFor('Dashboard');
    const saved = api.data.connections[1]!;
    expect(saved).toMatchObject({id: 'olvm', kind: 'ovirt', url: 'https://olvm.example.com/ovirt-engine', user: 'admin@internal', password: 'pa ss"wd', caFingerprint: FINGERPRINT});
    expect(api.called('testConnection')).toHaveLength(1);
  });

  it('oVirt: a failed test saves nothing and says why', async () => {
    const api = seeded();
    api.testConnection = async () => ({ok: false, reachable: true, authenticated: false, error: {message: 'The engine refused admin@internal: wrong password.', hint: 'Check the password.', exitCode: 21}});
    r = await renderApp(api, {name: 'connection-add'});
    await r.press(KEY.enter);
    await r.press(`olvm${KEY.enter}https://olvm.example.com/ovirt-engine${KEY.enter}admin@internal${KEY.enter}bad${KEY.enter}`);
    await r.waitFor(FINGERPRINT.slice(0, 47));
    expect(r.frame()).toContain(FINGERPRINT.slice(48));
    await r.press(KEY.enter);
    const f = await r.waitFor('wrong password');
    expect(f).toContain('✖ The connection test failed; nothing was saved.');
    expect(api.data.connections).toHaveLength(1);
  });

  it('VM Essentials: scans host keys, confirms, tests, saves', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'connection-add'});
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('On KVM hosts reached over SSH');
    await r.press(KEY.enter);
    // The appliance's own key, with the line that authorizes it on a host.
    const form = await r.waitFor('SSH key file');
    expect(form.replace(/\s+/g, '')).toContain("echo'ssh-ed25519AAAAC3NzaC1lZDI1NTE5AAAAIApplianceFakevmbackup@appliance'>>~/.ssh/authorized_keys");
    await r.press(`site1${KEY.enter}c1${KEY.enter}kvm1, kvm2${KEY.enter}root${KEY.enter}${KEY.enter}${KEY.enter}`);
    // The ed25519 key is the one to compare, though the host listed another first.
    const confirm = await r.waitFor('kvm2: SHA256:');
    expect(confirm).toContain('kvm1: SHA256:abcdefghijklmnop (ssh-ed25519)');
    expect(confirm).not.toContain('ecdsa');
    await r.press(KEY.enter);
    await r.waitFor('Dashboard');
    const c = api.data.connections[1] as unknown as {clusters: {hosts: {name: string; connection: {hostKey: string; identityFile: string}}[]}[]};
    expect(c.clusters[0]!.hosts.map((h) => h.name)).toEqual(['kvm1', 'kvm2']);
    expect(c.clusters[0]!.hosts[0]!.connection.hostKey).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake');
    // No key file given: the appliance's own.
    expect(c.clusters[0]!.hosts[0]!.connection.identityFile).toBe('/var/lib/vmbackup/ssh/id_ed25519');
  });

  it('VM Essentials on this appliance: no SSH, a local connection', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'connection-add'});
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('On this appliance (no SSH)');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('qemu:///system');
    await r.press(`here${KEY.enter}${KEY.enter}`);
    await r.waitFor('Dashboard');
    const c = api.data.connections[1] as unknown as {id: string; clusters: {hosts: {name: string; connection: {kind: string}}[]}[]};
    expect(c.id).toBe('here');
    expect(c.clusters[0]!.hosts).toEqual([{name: 'localhost', connection: {kind: 'local'}}]);
  });

  it('tests an existing connection and refreshes its inventory', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'connections'});
    await r.waitFor('engine');
    await r.press(KEY.enter);
    await r.waitFor('Test the connection');
    await r.press(KEY.enter);
    await r.waitFor('Reachable and logged in: 3 VMs.');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('3 VMs found.');
    expect(api.called('inventory')[0]!.args).toEqual(['engine', true]);
  });
});

describe('adding an oVirt engine', () => {
  it('"It does not match: go back" keeps what was typed', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'connection-add'});
    await r.press(KEY.enter);
    await r.press(`olvm2${KEY.enter}https://olvm2.example.com/ovirt-engine${KEY.enter}admin@internal${KEY.enter}pw${KEY.enter}`);
    await r.waitFor('It does not match');
    await r.press(KEY.down + KEY.enter);
    const f = await r.waitFor('Engine URL');
    expect(f).toContain('https://olvm2.example.com/ovirt-engine');
    expect(f).toMatch(/User\s+admin@internal/);
    expect(api.data.connections).toHaveLength(1);
  });
});

/** The connections screen (as `r`, so that afterEach unmounts it), the oVirt connection "engine" chosen, its edit form open. */
async function openEngineEdit(api: ReturnType<typeof seeded>): Promise<Rendered> {
  const rendered = (r = await renderApp(api, {name: 'connections'}));
  await rendered.waitFor('engine');
  await rendered.press(KEY.enter);
  await rendered.waitFor('Edit');
  await rendered.press(KEY.down.repeat(2) + KEY.enter);
  await rendered.waitFor('Edit engine');
  return rendered;
}

describe('editing a connection', () => {
  it('changes the oVirt user, keeps the stored password when left empty, tests before saving', async () => {
    const api = seeded();
    const e = await openEngineEdit(api);
    await e.press(KEY.enter + KEY.backspace.repeat(20) + 'backup@internal' + KEY.enter + KEY.enter);
    await e.waitFor('✔ Saved: 3 VMs visible.');
    const tested = api.called('testConnection')[0]!.args[0] as Record<string, unknown>;
    expect(tested).toMatchObject({user: 'backup@internal', password: '••••', url: 'https://engine.example.com/ovirt-engine'});
    expect(api.data.connections[0]).toMatchObject({user: 'backup@internal'});
  });

  it('a failed test saves nothing and keeps what was typed', async () => {
    const api = seeded();
    api.testConnection = async () => ({ok: false, reachable: true, authenticated: false, error: {message: 'wrong password', exitCode: 21}});
    const e = await openEngineEdit(api);
    await e.press(KEY.enter + KEY.backspace.repeat(20) + 'someone@internal' + KEY.enter + 'bad' + KEY.enter);
    const f = await e.waitFor('failed its test; nothing was saved');
    expect(f).toContain('someone@internal');
    expect(api.data.connections[0]).toMatchObject({user: 'admin@internal'});
  });
});

describe('removing', () => {
  it('removes a repository from the appliance only after saying that its files stay', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'repositories'});
    await r.waitFor('main');
    await r.press(KEY.enter);
    await r.waitFor('Remove from the appliance');
    await r.press(KEY.down.repeat(6) + KEY.enter);
    const ask = await r.waitFor('Remove the repository main from the appliance?');
    expect(ask).toContain('Its files stay in /srv/backup/main');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Removed from the appliance.');
    expect(api.data.repositories).toEqual([]);
  });

  it('removes a connection from its action menu; changes a worker\'s slots and removes it after asking', async () => {
    const api = seeded();
    api.data.workers.push({id: 'w1', name: 'w1', placement: {kind: 'appliance'}, slots: 4});
    r = await renderApp(api, {name: 'connections'});
    await r.waitFor('engine');
    await r.press(KEY.enter);
    await r.waitFor('Remove');
    await r.press(KEY.down.repeat(3) + KEY.enter);
    // It asks first, names the jobs that use it, and an Enter typed ahead keeps it.
    const ask = await r.waitFor('Remove the connection engine?');
    expect(ask).toContain('Jobs that use it: nightly');
    await r.press(KEY.enter);
    await r.waitFor('Test the connection');
    expect(api.data.connections).toHaveLength(1);
    await r.press(KEY.down.repeat(3) + KEY.enter);
    await r.waitFor('Remove the connection engine?');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Removed.');
    expect(api.data.connections).toEqual([]);
    await r.unmount();
    r = await renderApp(api, {name: 'workers'});
    await r.waitFor('w1');
    await r.press(KEY.enter);
    await r.waitFor('Change the slots');
    await r.press(KEY.enter);
    await r.waitFor('Slots');
    await r.press(KEY.backspace.repeat(3) + '6' + KEY.enter);
    await r.waitFor('✔ Worker w1 saved.');
    expect(api.data.workers[0]).toMatchObject({slots: 6});
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('Remove the worker w1?');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Worker removed.');
    expect(api.data.workers).toEqual([]);
  });
});

describe('webhooks', () => {
  it('adds a Slack webhook for every job, sends a test report, turns it off and removes it after asking', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'webhook-add'});
    await r.waitFor('Signing secret');
    // Name, URL (typed hidden), format Slack, every job, failures only, no secret.
    await r.press(`ops chat${KEY.enter}https://hooks.example/T1/B2/tok${KEY.enter}${KEY.enter}${KEY.enter}${KEY.right}${KEY.right}${KEY.enter}${KEY.enter}`);
    await r.waitFor('Dashboard');
    expect(api.data.webhooks[0]).toEqual({id: 'ops-chat', name: 'ops chat', url: 'https://hooks.example/T1/B2/tok', format: 'slack', allJobs: true, onSuccess: false, onWarning: false, onFailure: true});
    await r.unmount();
    api.data.webhooks[0] = {...api.data.webhooks[0]!, enabled: true, info: {host: 'hooks.example', pending: 1, lastError: {message: 'Webhook ops chat: hooks.example answered HTTP 503.', hint: 'The receiver has a problem.'}}};
    r = await renderApp(api, {name: 'webhooks'});
    const list = await r.waitFor('ops chat');
    expect(list).toContain('Slack → hooks.example · every job · ⚠ 1 waiting');
    await r.press(KEY.enter);
    const detail = await r.waitFor('Send a test report');
    expect(detail).toContain('answered HTTP 503');
    await r.press(KEY.enter);
    await r.waitFor('✔ Delivered: the receiver answered HTTP 200 (ok).');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('turned off');
    expect(api.data.webhooks[0]).toMatchObject({enabled: false});
    await r.press(KEY.down.repeat(2) + KEY.enter);
    await r.waitFor('Remove the webhook ops chat?');
    await r.press(KEY.down + KEY.enter);
    await r.waitFor('✔ Webhook removed.');
    expect(api.data.webhooks).toEqual([]);
  });
});

describe('workers, email, appliance, sessions', () => {
  it('adds a worker for a cluster', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'worker-add'});
    await r.waitFor('Slots');
    await r.press(`w-1${KEY.enter}${KEY.right}${KEY.enter}${KEY.enter}Default${KEY.enter}${KEY.backspace}2${KEY.enter}`);
    await r.waitFor('Dashboard');
    expect(api.data.workers[0]).toEqual({id: 'w-1', name: 'w-1', placement: {kind: 'cluster', connection: 'engine', cluster: 'Default'}, slots: 2});
  });

  it('saves email settings and sends a test message; a missing test endpoint is explained', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'email'});
    await r.waitFor('Recipients');
    await r.press(`${KEY.enter}smtp.example.com${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}${KEY.enter}backup@example.com${KEY.enter}a@example.com, b@example.com${KEY.enter}`);
    await r.waitFor('Send a test message');
    expect(api.emailSettings).toEqual({transport: 'smtp', host: 'smtp.example.com', security: 'starttls', from: 'backup@example.com', recipients: ['a@example.com', 'b@example.com']});
    await r.press(KEY.enter);
    await r.waitFor('✔ Test message accepted by the server.');
    api.missing('testEmail', '/email/test');
    await r.press(KEY.enter);
    await r.waitFor('does not offer');
  });

  it('appliance shows the daemon and its log', async () => {
    r = await renderApp(seeded(), {name: 'appliance'});
    const f = await r.waitFor('job nightly started');
    expect(f).toContain('✔ vmbackupd 0.1.0 is running (pid 1)');
  });

  it('audit log shows who changed what with their role, refusals marked, and who you are', async () => {
    r = await renderApp(seeded(), {name: 'audit'});
    const f = await r.waitFor('night-op');
    expect(f).toContain('You are console (uid 1001), an admin.');
    expect(f).toMatch(/✔ .* console \(1001, admin\) POST \/jobs/);
    expect(f).toMatch(/⚠ .* night-op \(1002, operator\) DELETE \/repositories\/main\n\s+refused: DELETE \/repositories\/main needs an administrator/);
  });

  it('session view: warnings and errors marked, live disk progress, stop', async () => {
    const api = seeded();
    api.sessionsList.push(makeSession({id: 's-2', state: 'running', endedAt: undefined, vms: [{id: 'vm-2', name: 'web02', state: 'running', attempts: 1}]}));
    r = await renderApp(api, {name: 'session', params: {id: 's-1'}});
    let f = await r.waitFor('host unreachable');
    expect(f).toMatch(/⚠ \d\d:\d\d:\d\d web01: no guest agent/);
    expect(f).toMatch(/✖ \d\d:\d\d:\d\d web01: host unreachable/);
    expect(f).toContain('✖ web01 failed – host unreachable');
    await r.unmount();
    api.sessionsList[0]!.vms.push({
      id: 'vm-2', name: 'web02', state: 'success', attempts: 1, endedAt: '2026-11-23T02:05:00Z', figures: {sizeBytes: 2 ** 30, readBytes: 300 * 2 ** 20, storedBytes: 100 * 2 ** 20, newPlainBytes: 0, processedBytes: 0, durationMs: 65_000, sourceMs: 0, repositoryMs: 0},
      verification: {result: 'passed', message: 'the firmware handed over to the boot loader on the disk, which read 64 KiB', signal: 'boot-loader', connection: 'kvm', host: 'kvm1'},
    });
    r = await renderApp(api, {name: 'session', params: {id: 's-1'}});
    f = await r.waitFor('web02');
    expect(f).toContain('✔ web02 success · 300 MiB read, 100 MiB stored, 1m 05s');
    expect(f).toContain('boot check passed: the firmware handed over to the boot loader');
    await r.unmount();
    r = await renderApp(api, {name: 'session', params: {id: 's-2'}});
    await r.waitFor('web02');
    await r!.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'vm-started', vmId: 'vm-2', vmName: 'web02', incremental: true, disks: [{key: 'd2', name: 'web02_disk', size: 4000}]}}));
    await r!.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'disk-progress', vmId: 'vm-2', disk: 'd2', doneBytes: 1000, size: 4000, readBytes: 1000, rate: 1000}}));
    await r!.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'log', time: '2026-11-23T03:00:00Z', event: {severity: 'warning', code: 'raw', message: 'web02: RAW disk read in full'}}}));
    f = await r.waitFor('25%');
    expect(f).toMatch(/web02_disk\s+█+░+\s+25%\s+1000 B\/s\s+3s left/);
    expect(f).toContain('⚠ 03:00:00 web02: RAW disk read in full');
    await r.press('s');
    await r.waitFor('Stop requested');
    expect(api.called('stopJob')[0]!.args).toEqual(['nightly']);
  });

  it('session view: a lost event stream is said, then reconnected', async () => {
    const api = seeded();
    const {UserError, ExitCode} = await import('../../src/util/errors.js');
    api.fail('events', new UserError('vmbackupd is not running (nothing listens on /x).', {exitCode: ExitCode.unreachable}));
    api.sessionsList.push(makeSession({id: 's-2', state: 'running', endedAt: undefined, vms: [{id: 'vm-2', name: 'web02', state: 'running', attempts: 1}]}));
    r = await renderApp(api, {name: 'session', params: {id: 's-2'}});
    await r.waitFor('⚠ Live updates stopped: vmbackupd is not running');
    // The second attempt subscribes; the next event clears the message.
    for (let i = 0; i < 100 && api.listenerCount() === 0; i++) await r.waitFor(/./).then(() => new Promise((res) => setTimeout(res, 50)));
    expect(api.listenerCount()).toBe(1);
    await r.act(() => api.emit({type: 'engine', sessionId: 's-2', jobId: 'nightly', event: {type: 'log', time: '2026-11-23T03:00:00Z', event: {severity: 'info', code: 'x', message: 'back again'}}}));
    const f = await r.waitFor('back again');
    expect(f).not.toContain('Live updates stopped');
  });

  it('sessions list opens a session; jobs list opens a job', async () => {
    r = await renderApp(seeded(), {name: 'sessions'});
    await r.waitFor('nightly');
    await r.press(KEY.enter);
    await r.waitFor('Log');
    await r.unmount();
    r = await renderApp(seeded(), {name: 'jobs'});
    await r.waitFor('At 22:00');
    await r.press(KEY.enter);
    await r.waitFor('Run the job now');
  });
});

describe('job actions', () => {
  it('disables a job and enables it again, saving the job as it was otherwise', async () => {
    const api = seeded();
    r = await renderApp(api, {name: 'job', params: {id: 'nightly'}});
    await r.waitFor('Disable the job');
    await r.press(KEY.down.repeat(4) + KEY.enter);
    await r.waitFor('✔ Disabled: it runs only when started by hand.');
    await r.waitFor('nightly (disabled)');
    const saved = api.called('update')[0]!.args[2] as Record<string, unknown>;
    expect(saved).toMatchObject({id: 'nightly', enabled: false, repository: 'main', schedule: {kind: 'daily', at: '22:00'}});
    expect(saved).not.toHaveProperty('info');
    await r.press(KEY.enter);
    await r.waitFor('✔ Enabled: it runs on its schedule.');
    expect(api.data.jobs[0]!.enabled).toBe(true);
  });
});

describe('appliance health', () => {
  it('shows free space of the state directory and of each repository, and when each was last checked', async () => {
    const api = seeded();
    api.data.repositories.push({id: 'offsite', name: 'offsite', path: '/srv/offsite'});
    api.statusExtra = {
      repositories: [
        {id: 'main', name: 'main', path: '/srv/backup/main', freeBytes: 90 * 2 ** 30, totalBytes: 100 * 2 ** 30, needsFullVms: 0, lastHealthCheck: {at: '2026-11-22T04:00:00Z', ok: true, problems: 0}},
        {id: 'offsite', name: 'offsite', path: '/srv/offsite', freeBytes: 2 * 2 ** 30, totalBytes: 100 * 2 ** 30, needsFullVms: 0},
      ],
    };
    r = await renderApp(api, {name: 'appliance'});
    const f = await r.waitFor('offsite');
    expect(f).toMatch(/✔ State \/var\/lib\/vmbackup: 4\.0 GiB free of 8\.0 GiB \(50 %\)/);
    expect(f).toMatch(/✔ main: 90 GiB free of 100 GiB \(90 %\) · checked 2026-11-22/);
    expect(f).toMatch(/⚠ offsite: 2\.0 GiB free of 100 GiB \(2 %\) · never checked/);
    expect(overlong(f)).toEqual([]);
  });
});

describe('session log', () => {
  it('l opens the whole log: e filters by level, v by VM, arrows scroll, Esc goes back', async () => {
    const api = seeded();
    const log = Array.from({length: 40}, (_, i) => ({
      time: `2026-11-23T02:${String(i).padStart(2, '0')}:00Z`, severity: (i % 10 === 3 ? 'warning' : i === 37 ? 'error' : 'info') as 'info' | 'warning' | 'error',
      code: 'x', message: `line ${i}${i % 2 ? ' of db01' : ' of web01'}`, vm: i % 2 ? 'db01' : 'web01',
    }));
    api.sessionsList.push(makeSession({id: 's-log', state: 'failed', log, vms: [{id: 'vm-1', name: 'web01', state: 'success', attempts: 1, restorePointId: 'web01-20261123t020000z-abcdef'}]}));
    r = await renderApp(api, {name: 'session', params: {id: 's-log'}});
    let f = await r.waitFor('l whole log');
    expect(f).toContain('web01-20261123t020000z-abcdef');
    await r.press('l');
    f = await r.waitFor('40 line(s)');
    expect(f).toContain('line 39 of db01');
    expect(overlong(f)).toEqual([]);
    await r.press(KEY.up.repeat(30));
    f = await r.waitFor('newer below');
    expect(f).toContain('line 0 of web01');
    await r.press('e');
    f = await r.waitFor('warnings and errors · all VMs · 5 line(s)');
    expect(f).toContain('⚠ 02:03:00 line 3 of db01');
    expect(f).toContain('✖ 02:37:00 line 37 of db01');
    await r.press('e');
    await r.waitFor('errors · all VMs · 1 line(s)');
    await r.press('e');
    await r.press('v');
    f = await r.waitFor(/all levels · \S+ · 20 line\(s\)/);
    await r.press(KEY.esc);
    await r.waitFor('l whole log');
  });
});
