/**
 * NBD_OPT_STARTTLS against qemu-nbd with x509 credentials made here with openssl: a verified
 * connection with a client certificate works; a wrong CA, a wrong server name, a missing client
 * certificate, TLS missing on either side are clear errors.
 */
import {readFile, writeFile, mkdir} from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ExitCode, UserError} from '../../../src/util/errors.js';
import {NbdClient} from '../../../src/transports/nbd/index.js';
import {freePort, qemuImg, qemuIo, startQemuNbd, tempDir, type RunningServer} from './servers.js';

let t: Awaited<ReturnType<typeof tempDir>>;
let ca: Buffer;
let otherCa: Buffer;
let client: {cert: Buffer; key: Buffer};
let image: string;
let server: RunningServer;

async function makeCa(dir: string, name: string): Promise<void> {
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca-key.pem'), '-out', path.join(dir, 'ca-cert.pem'), '-days', '2', '-subj', `/CN=${name}`]);
}

/** A certificate signed by the CA in `dir`, in the file names QEMU's tls-creds-x509 expects. */
async function makeCert(dir: string, who: 'server' | 'client'): Promise<void> {
  const ext = path.join(dir, `${who}.cnf`);
  const usage = who === 'server' ? 'subjectAltName=DNS:nbd.example.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth' : 'extendedKeyUsage=clientAuth';
  await writeFile(ext, `${usage}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n`);
  const f = (name: string) => path.join(dir, `${who}-${name}`);
  await execa('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('key.pem'), '-out', f('req.csr'), '-subj', `/CN=${who === 'server' ? 'nbd.example.test' : 'vmbackup'}`]);
  await execa('openssl', ['x509', '-req', '-in', f('req.csr'), '-CA', path.join(dir, 'ca-cert.pem'), '-CAkey', path.join(dir, 'ca-key.pem'), '-CAcreateserial', '-out', f('cert.pem'), '-days', '2', '-extfile', ext]);
}

beforeAll(async () => {
  t = await tempDir();
  const pki = path.join(t.dir, 'pki');
  const other = path.join(t.dir, 'other');
  await mkdir(pki);
  await mkdir(other);
  await makeCa(pki, 'vmbackup test CA');
  await makeCert(pki, 'server');
  await makeCert(pki, 'client');
  client = {cert: await readFile(path.join(pki, 'client-cert.pem')), key: await readFile(path.join(pki, 'client-key.pem'))};
  await makeCa(other, 'someone else');
  ca = await readFile(path.join(pki, 'ca-cert.pem'));
  otherCa = await readFile(path.join(other, 'ca-cert.pem'));
  image = path.join(t.dir, 'd.qcow2');
  await qemuImg('create', '-f', 'qcow2', image, '8M');
  await qemuIo(image, 'qcow2', 'write -P 0x33 0 1M');
  server = await startQemuNbd({
    image,
    port: await freePort(),
    readOnly: true,
    exportName: 'vda',
    extraArgs: ['--object', `tls-creds-x509,id=tls0,endpoint=server,dir=${pki}`, '--tls-creds=tls0'],
  });
});

afterAll(async () => {
  await server?.stop();
  await t?.remove();
});

describe('NBD over TLS', () => {
  it('reads through a verified TLS connection (IP SAN, then the DNS name)', async () => {
    for (const tls of [{ca, ...client}, {ca, ...client, servername: 'nbd.example.test'}]) {
      const c = await NbdClient.connect({address: server.address, exportName: 'vda', tls, metaContexts: ['base:allocation']});
      expect(c.size).toBe(8 * 1024 * 1024);
      expect((await c.read(0, 1024 * 1024)).equals(Buffer.alloc(1024 * 1024, 0x33))).toBe(true);
      expect((await c.blockStatus(0, c.size, 'base:allocation'))[0]).toMatchObject({offset: 0, flags: 0});
      await c.close();
    }
  });

  it('refuses a certificate from another CA, or for another name', async () => {
    for (const tls of [{ca: otherCa, ...client}, {ca, ...client, servername: 'other.example.test'}]) {
      const err = await NbdClient.connect({address: server.address, exportName: 'vda', tls}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toMatch(/TLS handshake with the NBD server at 127\.0\.0\.1:\d+ failed/);
      expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
    }
  });

  it('fails clearly without the client certificate QEMU asks for', async () => {
    const err = await NbdClient.connect({address: server.address, exportName: 'vda', tls: {ca}}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/NBD server closed the connection during the handshake for export 'vda'|TLS handshake .* failed/);
    expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
    expect((err as UserError).hint).toMatch(/client certificate/);
  });

  it('says so when the server requires TLS and the client did not ask for it', async () => {
    const err = await NbdClient.connect({address: server.address, exportName: 'vda'}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/requires TLS for export 'vda'/);
  });

  it('says so when TLS is asked of a server without it', async () => {
    const plain = await startQemuNbd({image, readOnly: true, exportName: 'vda'});
    try {
      const err = await NbdClient.connect({address: plain.address, exportName: 'vda', tls: {ca}}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toMatch(/does not support TLS: TLS not configured/);
      expect((err as UserError).exitCode).toBe(ExitCode.untrusted);
    } finally {
      await plain.stop();
    }
  });
});
