/**
 * systemd's notification protocol (sd_notify(3)): READY=1 once the control socket answers,
 * WATCHDOG=1 while the event loop runs, STATUS=… lines, STOPPING=1 on the way out.
 *
 * Node has no unix datagram sockets, so one small Perl process (perl-base is Essential in Debian,
 * as for SO_PEERCRED in peer.ts) lives beside the daemon and turns each line it reads on stdin into
 * one datagram to $NOTIFY_SOCKET. It must live as long as the daemon: systemd attributes a
 * notification to a unit by the sender's cgroup, which it cannot read for a process that already
 * exited (the race that a `systemd-notify` per message loses). Because the sender is not the main
 * PID, the unit says NotifyAccess=all; only the daemon and its own children run in its cgroup.
 *
 * The watchdog: with WatchdogSec= in the unit, systemd passes WATCHDOG_USEC (and WATCHDOG_PID);
 * the daemon pings at half that interval from a timer on its event loop, so an event loop that
 * hangs (or a process stopped with SIGSTOP) stops the pings and systemd restarts the service.
 * Without NOTIFY_SOCKET (no systemd, a test) everything here does nothing.
 */
import {spawn, type ChildProcess} from 'node:child_process';

const SEND_SCRIPT = String.raw`
use strict; use warnings; use Socket;
my $path = $ENV{NOTIFY_SOCKET};
$path =~ s/^@/\0/;
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
my $to = pack_sockaddr_un($path);
$| = 1;
while (my $line = <STDIN>) {
  chomp $line;
  $line =~ s/\\n/\n/g;
  send($s, $line, 0, $to) or print STDERR "sd_notify: $!\n";
}
`;

export interface SdNotifier {
  /** Sends "KEY=value" assignments (one message). */
  notify(fields: Record<string, string>): void;
  /** Starts the watchdog pings when systemd asked for them; returns the interval (ms) or undefined. */
  startWatchdog(): number | undefined;
  close(): void;
}

const NOOP: SdNotifier = {notify() {}, startWatchdog: () => undefined, close() {}};

export function sdNotifier(env: NodeJS.ProcessEnv = process.env, log?: (line: string) => void): SdNotifier {
  const socket = env['NOTIFY_SOCKET'];
  if (!socket || !(socket.startsWith('/') || socket.startsWith('@'))) return NOOP;
  let child: ChildProcess | undefined = spawn('perl', ['-e', SEND_SCRIPT], {stdio: ['pipe', 'ignore', 'pipe'], env: {NOTIFY_SOCKET: socket, PATH: env['PATH'] ?? '/usr/bin:/bin'}});
  child.on('error', (err) => log?.(`sd_notify helper failed: ${err.message}`));
  child.stderr!.on('data', (d: Buffer) => log?.(d.toString().trim()));
  child.on('exit', () => (child = undefined));
  // Never keeps the daemon alive, never blocks its exit.
  child.unref();
  (child.stdin as unknown as {unref?: () => void}).unref?.();
  let timer: NodeJS.Timeout | undefined;
  const send = (fields: Record<string, string>) => {
    if (!child?.stdin?.writable) return;
    // One message per line; a newline inside a value (STATUS) travels as \n.
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${v.replace(/\\/g, '/').replace(/\r?\n/g, '\\n')}`)
      .join('\\n');
    child.stdin.write(`${text}\n`);
  };
  return {
    notify: send,
    startWatchdog() {
      const usec = Number(env['WATCHDOG_USEC']);
      const forPid = env['WATCHDOG_PID'];
      if (!Number.isFinite(usec) || usec <= 0 || (forPid && Number(forPid) !== process.pid)) return undefined;
      const every = Math.max(500, Math.floor(usec / 2000));
      send({WATCHDOG: '1'});
      timer = setInterval(() => send({WATCHDOG: '1'}), every);
      timer.unref();
      return every;
    },
    close() {
      if (timer) clearInterval(timer);
      child?.stdin?.end();
    },
  };
}
