/**
 * vmbackupd: the appliance daemon, in the foreground (systemd Type=notify, or a test).
 *
 *   node dist/daemon/main.js [--state-dir /var/lib/vmbackup] [--socket /run/vmbackup/api.sock]
 *                            [--log-format plain|json]
 *
 * SIGTERM/SIGINT: stop accepting requests, stop running sessions cleanly (unfinished restore
 * points and platform backup jobs are aborted; committed ones stay), exit 0. A second signal
 * exits at once. Start-up errors the operator can fix print message and hint and exit with the
 * UserError's code.
 */
import {parseArgs} from 'node:util';
import {DEFAULT_STATE_DIR} from '../config/store.js';
import {isUserError} from '../util/errors.js';
import {DEFAULT_SOCKET} from './api.js';
import {Daemon} from './daemon.js';
import {sdNotifier} from './sd-notify.js';

const USAGE = 'usage: vmbackupd [--state-dir DIR] [--socket PATH] [--log-format plain|json]';
let values: {'state-dir': string; socket: string; 'log-format': string};
try {
  values = parseArgs({
    options: {
      'state-dir': {type: 'string', default: process.env.VMBACKUP_STATE_DIR ?? DEFAULT_STATE_DIR},
      socket: {type: 'string', default: process.env.VMBACKUP_SOCKET ?? DEFAULT_SOCKET},
      // Plain lines read best in journalctl; JSON lines suit log shippers.
      'log-format': {type: 'string', default: process.env.VMBACKUP_LOG_FORMAT ?? 'plain'},
    },
    strict: true,
  }).values as typeof values;
} catch (err) {
  process.stderr.write(`vmbackupd: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
  process.exit(2);
}
if (!['plain', 'json'].includes(values['log-format'])) {
  process.stderr.write(`vmbackupd: --log-format must be plain or json\n${USAGE}\n`);
  process.exit(2);
}

const format = values['log-format'] === 'json' ? 'json' : 'plain';
let daemon: Daemon | undefined;
try {
  daemon = await Daemon.start({stateDir: values['state-dir'], socketPath: values.socket, logFormat: format});
} catch (err) {
  if (isUserError(err)) {
    process.stderr.write(`vmbackupd: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
    process.exit(err.exitCode);
  }
  throw err;
}

// systemd (Type=notify): ready once the control socket answers; the watchdog while the loop runs.
const systemd = sdNotifier(process.env, (line) => daemon!.log('warn', line));
systemd.notify({READY: '1', STATUS: `Listening on ${values.socket}`, MAINPID: String(process.pid)});
const watchdogMs = systemd.startWatchdog();
if (watchdogMs) daemon.log('info', `systemd watchdog: pinging every ${watchdogMs} ms`);

let stopping = false;
const onSignal = (sig: string) => {
  if (stopping) process.exit(1);
  stopping = true;
  systemd.notify({STOPPING: '1', STATUS: 'Stopping: running sessions are stopped cleanly'});
  daemon!.log('info', `Received ${sig}`);
  daemon!
    .stop()
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      daemon!.log('error', `Stopping failed: ${String(err)}`);
      process.exit(1);
    });
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
