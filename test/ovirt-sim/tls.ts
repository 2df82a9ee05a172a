/**
 * A throw-away certificate authority for the oVirt simulator.
 *
 * The real engine signs its Apache (API, imageio proxy) and vdsm (imageio daemon) certificates
 * with the engine CA and publishes that CA unauthenticated (docs/reference/ovirt-backup-api.md §2.3). The
 * simulator does the same with a CA made at start-up by openssl: one CA, one server certificate
 * for "localhost" and 127.0.0.1 that every listener uses.
 */
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {X509Certificate} from 'node:crypto';
import {execa} from 'execa';

export interface SimTls {
  caPem: string;
  /** SHA-256 fingerprint of the CA as openssl/node print it (AA:BB:...). */
  caFingerprint: string;
  certPem: string;
  keyPem: string;
}

/** `names`: the server certificate's subject alternative names (default localhost and 127.0.0.1). */
export async function makeSimTls(names: string[] = ['DNS:localhost', 'IP:127.0.0.1']): Promise<SimTls> {
  const dir = await mkdtemp(join(tmpdir(), 'ovirt-sim-tls-'));
  try {
    const f = (n: string) => join(dir, n);
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '30', '-subj', '/O=vmbackup-sim/CN=engine-sim CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await execa('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/O=vmbackup-sim/CN=localhost']);
    const ext = `subjectAltName=${names.join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`;
    await writeFile(f('srv.ext'), ext);
    await execa('openssl', ['x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-out', f('srv.pem'), '-days', '30', '-extfile', f('srv.ext')]);
    const caPem = await readFile(f('ca.pem'), 'utf8');
    return {
      caPem,
      caFingerprint: new X509Certificate(caPem).fingerprint256,
      certPem: await readFile(f('srv.pem'), 'utf8'),
      keyPem: await readFile(f('srv.key'), 'utf8'),
    };
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}
