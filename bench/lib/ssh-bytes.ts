/**
 * Bytes that cross the test bed's SSH connections: every TCP byte to and from port 2222 on
 * loopback, both ways, from iptables rules that only count (SSH's encryption and framing
 * included). countSshBytes() inserts the rules and returns what reads and removes them.
 */
import {execa} from 'execa';
import {SSHD_PORT} from '../../test/lib/sshd.js';

const RULES = [
  ['-o', 'lo', '-p', 'tcp', '--sport', String(SSHD_PORT)],
  ['-o', 'lo', '-p', 'tcp', '--dport', String(SSHD_PORT)],
];

export async function countSshBytes(): Promise<{bytes(): Promise<number>; stop(): Promise<void>}> {
  for (const r of RULES) await execa('iptables', ['-I', 'OUTPUT', '1', ...r]);
  return {
    async bytes() {
      const out = (await execa('iptables', ['-L', 'OUTPUT', '-v', '-x', '-n'])).stdout;
      let n = 0;
      for (const line of out.split('\n')) if (new RegExp(`[sd]pt:${SSHD_PORT}\\b`).test(line)) n += Number(line.trim().split(/\s+/)[1]);
      return n;
    },
    async stop() {
      for (const r of RULES) await execa('iptables', ['-D', 'OUTPUT', ...r]).catch(() => undefined);
    },
  };
}
