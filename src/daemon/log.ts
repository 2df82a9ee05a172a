/**
 * The daemon's log: one line per event on stdout (journald picks it up), as JSON lines or plain
 * lines. Every line passes through a scrubber that replaces the configured secrets, so a
 * password that slips into an error message is never written.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type DaemonLog = (level: Level, message: string, fields?: Record<string, unknown>) => void;

export function createLog(opts: {format: 'json' | 'plain'; secrets: () => string[]; write?: (line: string) => void}): DaemonLog {
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  return (level, message, fields) => {
    let line: string;
    if (opts.format === 'json') line = JSON.stringify({time: new Date().toISOString(), level, msg: message, ...fields});
    else line = `${level.toUpperCase().padEnd(5)} ${message}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`;
    for (const s of opts.secrets()) if (s.length >= 3) line = line.split(s).join('••••');
    write(line);
  };
}
