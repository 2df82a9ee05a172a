/**
 * Who is on the other end of a control socket connection: the kernel's SO_PEERCRED (pid, uid,
 * gid of the process that connected), which the client cannot choose. Node has no getsockopt,
 * so a tiny Perl program (perl-base is Essential in Debian) is handed the connection's file
 * descriptor as its fd 3 and prints the credentials; once per connection, on its first request,
 * so idle connections cost nothing. The user name comes from the system's user database.
 */
import {spawn} from 'node:child_process';
import type {Socket} from 'node:net';
import {execa} from 'execa';

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
  /** The login name of `uid`, or "uid N" when the user database has none. */
  user: string;
}

const PEERCRED_SCRIPT = [
  'use Socket;',
  'open(my $s, q{+<&=}, 3) or die qq{fd 3: $!\\n};',
  'my $c = getsockopt($s, SOL_SOCKET, SO_PEERCRED) or die qq{SO_PEERCRED: $!\\n};',
  'my ($pid, $uid, $gid) = unpack(q{lll}, $c);',
  'print qq{$pid $uid $gid\\n};',
].join(' ');

const cache = new WeakMap<Socket, Promise<Peer>>();
const names = new Map<number, string>();

/** The credentials of the process that opened `socket` (a unix socket connection). */
export function peerOf(socket: Socket): Promise<Peer> {
  let p = cache.get(socket);
  if (!p) {
    p = readPeer(socket);
    cache.set(socket, p);
  }
  return p;
}

async function readPeer(socket: Socket): Promise<Peer> {
  const fd = (socket as unknown as {_handle?: {fd?: number}})._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the connection has no file descriptor (closed?)');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('perl', ['-e', PEERCRED_SCRIPT], {stdio: ['ignore', 'pipe', 'pipe', fd]});
    let text = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`reading the peer's credentials failed: ${err.trim() || `exit ${code}`}`))));
  });
  const [pid, uid, gid] = out.trim().split(' ').map(Number);
  if (![pid, uid, gid].every((n) => Number.isInteger(n) && n! >= 0)) throw new Error(`unexpected peer credentials ${JSON.stringify(out)}`);
  return {pid: pid!, uid: uid!, gid: gid!, user: await userName(uid!)};
}

export async function userName(uid: number): Promise<string> {
  const known = names.get(uid);
  if (known !== undefined) return known;
  const r = await execa('getent', ['passwd', String(uid)], {reject: false});
  const name = r.exitCode === 0 ? r.stdout.split(':')[0]! : `uid ${uid}`;
  // Names change rarely; a renamed account is seen after a daemon restart.
  if (r.exitCode === 0) names.set(uid, name);
  return name;
}
