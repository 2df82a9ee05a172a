import {ExitCode, UserError} from '../util/errors.js';
import type {Command} from './command.js';

export const sshHostkey: Command = {
  words: ['ssh', 'hostkey'],
  summary: "Show a KVM host's SSH host key fingerprints, and trust them after you confirmed",
  usage: '<host>[:port] [--trust <known_hosts file>]',
  help: 'Compare the fingerprints with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host,\nthen run again with --trust ~/.ssh/known_hosts (or the file you pass as --known-hosts).',
  options: {trust: {type: 'string'}},
  positionals: [1, 1],
  async run(ctx, values, [target]) {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(target);
    if (!m) throw new UserError(`'${target}' is not HOST or HOST:PORT.`, {exitCode: ExitCode.usage});
    const host = m[1].replace(/^\[|\]$/g, '');
    const port = m[2] ? Number(m[2]) : 22;
    const {scanHostKey, trustHostKeys} = await import('../transports/ssh-host-key.js');
    const keys = await scanHostKey(host, port);
    if (typeof values.trust === 'string') await trustHostKeys(values.trust, keys);
    ctx.out.result({host, port, keys, trustedIn: values.trust}, () =>
      [
        `SSH host keys of ${host}:${port}`,
        ...keys.map((k) => `  ${k.type.padEnd(20)} ${k.fingerprint}`),
        typeof values.trust === 'string' ? `Added to ${values.trust}.` : 'Confirm a fingerprint, then run again with --trust <known_hosts>.',
      ].join('\n'),
    );
  },
};
