import {writeFile} from 'node:fs/promises';
import type {Command} from './command.js';

export const ovirtCa: Command = {
  words: ['ovirt', 'ca'],
  summary: "Download an OLVM/oVirt engine's CA and show its SHA-256 fingerprint to confirm",
  usage: '<engine url> [--save <file>]',
  help:
    'Compare the fingerprint with the one on the engine (on the engine machine:\n' +
    '  openssl x509 -in /etc/pki/ovirt-engine/ca.pem -noout -fingerprint -sha256)\n' +
    'and only then save it with --save; pass that file as --ca-file to backup and restore.',
  options: {save: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [url]) {
    const {fetchEngineCa} = await import('../platforms/ovirt/fetch-ca.js');
    const ca = await fetchEngineCa(url);
    if (typeof values.save === 'string') await writeFile(values.save, ca.pem, {mode: 0o644});
    ctx.out.result({subject: ca.subject, fingerprint: ca.fingerprint, validTo: ca.validTo, savedTo: values.save}, () =>
      [
        `Engine CA of ${url}`,
        `  subject      ${ca.subject}`,
        `  SHA-256      ${ca.fingerprint}`,
        `  valid until  ${ca.validTo}`,
        typeof values.save === 'string' ? `Saved to ${values.save}.` : 'Confirm the fingerprint, then run again with --save <file>.',
      ].join('\n'),
    );
  },
};
