/**
 * The appliance's own SSH key pair (ed25519), made on the daemon's first start in
 * <state dir>/ssh/ (directory 0700, private key 0600, owned by the daemon's user): the key that
 * KVM host connections log in with unless a connection names another. The console shows its
 * public half with the line to add to a host's authorized_keys.
 */
import {mkdir, readFile, stat} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {applianceSshKeyReply, type ApplianceSshKeyReply} from '../api/contract.js';
import {parseFingerprints} from '../transports/ssh-args.js';

export function applianceKeyPath(stateDir: string): string {
  return join(stateDir, 'ssh', 'id_ed25519');
}

/** Makes the key pair when it is missing, and describes it. */
export async function ensureApplianceKey(stateDir: string): Promise<ApplianceSshKeyReply> {
  const identityFile = applianceKeyPath(stateDir);
  await mkdir(join(stateDir, 'ssh'), {recursive: true, mode: 0o700});
  const exists = await stat(identityFile).then(() => true, () => false);
  if (!exists) {
    const comment = `vmbackup@${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}`;
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', identityFile], {stdin: 'ignore'});
  }
  const publicKey = (await readFile(`${identityFile}.pub`, 'utf8')).trim();
  const fp = await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${identityFile}.pub`]);
  const fingerprint = parseFingerprints(String(fp.stdout))[0]?.fingerprint ?? '';
  return applianceSshKeyReply.parse({
    identityFile,
    publicKey,
    fingerprint,
    authorizeCommand: `install -d -m 700 ~/.ssh && echo '${publicKey}' >> ~/.ssh/authorized_keys`,
  });
}
