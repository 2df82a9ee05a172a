/**
 * The daemon's log: one line per event on stdout (journald picks it up), as JSON lines or plain
 * lines; under systemd (JOURNAL_STREAM set) each line carries its syslog priority prefix, so
 * `journalctl -p warning` shows warnings and errors only. Every line passes through a scrubber that replaces the configured secrets, so a
 * password that slips into an error message is never written.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type DaemonLog = (level: Level, message: string, fields?: Record<string, unknown>) => void;

/** sd-daemon(3) priority prefixes: journald stores the line at this priority (`journalctl -p warning`). */
export const SYSLOG_PRIORITY: Record<Level, number> = {error: 3, warn: 4, info: 6, debug: 7};

/** The line as written to journald's stdout stream: "<4>WARN ..." (journald strips the prefix). */
export function journalLine(level: Level, line: string): string {
  return `<${SYSLOG_PRIORITY[level]}>${line}`;
}

export function createLog(opts: {format: 'json' | 'plain'; secrets: () => string[]; write?: (line: string, level: Level) => void}): DaemonLog {
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  return (level, message, fields) => {
    let line: string;
    if (opts.format === 'json') line = JSON.stringify({time: new Date().toISOString(), level, msg: message, ...fields});
    else line = `${level.toUpperCase().padEnd(5)} ${message}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`;
    for (const s of opts.secrets()) if (s.length >= 3) line = line.split(s).join('••••');
    write(line, level);
  };
}
