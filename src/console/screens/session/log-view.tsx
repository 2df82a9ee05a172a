/**
 * A session's whole log, to read rather than glance at: every line (not only the newest), a
 * filter by level (e: all → warnings and errors → errors only) and by VM (v: all → each VM in
 * turn), ↑↓ a line, PgUp/PgDn a page, Home/End. Esc goes back to the session.
 */
import {Box, Text} from 'ink';
import {useState} from 'react';
import type {LogLine} from '../../../api/session-model.js';
import {useEscape} from '../../app/key-capture.js';
import {useKeys} from '../../components/use-keys.js';

export type LevelFilter = 'all' | 'warnings' | 'errors';

export function filterLog(log: readonly LogLine[], level: LevelFilter, vm: string | undefined): LogLine[] {
  return log.filter((l) => (level === 'all' || l.severity === 'error' || (level === 'warnings' && l.severity === 'warning')) && (vm === undefined || l.vm === vm));
}

export function LogView(props: {log: readonly LogLine[]; vms: readonly string[]; height: number; onClose: () => void}) {
  const [level, setLevel] = useState<LevelFilter>('all');
  const [vm, setVm] = useState<string | undefined>();
  // Lines from the end: 0 = the newest lines are in view (and new ones keep it so).
  const [back, setBack] = useState(0);
  useEscape(props.onClose);
  const lines = filterLog(props.log, level, vm);
  const room = Math.max(3, props.height - 3);
  const maxBack = Math.max(0, lines.length - room);
  const at = Math.min(back, maxBack);
  useKeys((input, key) => {
    if (input === 'e') setLevel((l) => (l === 'all' ? 'warnings' : l === 'warnings' ? 'errors' : 'all'));
    else if (input === 'v') setVm((cur) => (cur === undefined ? props.vms[0] : props.vms[props.vms.indexOf(cur) + 1]));
    else if (key.upArrow) setBack((b) => Math.min(maxBack, Math.min(b, maxBack) + 1));
    else if (key.downArrow) setBack((b) => Math.max(0, Math.min(b, maxBack) - 1));
    else if (key.pageUp) setBack((b) => Math.min(maxBack, Math.min(b, maxBack) + room));
    else if (key.pageDown) setBack((b) => Math.max(0, Math.min(b, maxBack) - room));
    else if (key.home) setBack(maxBack);
    else if (key.end) setBack(0);
  });
  const shown = lines.slice(Math.max(0, lines.length - room - at), lines.length - at);
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Log · {level === 'all' ? 'all levels' : level === 'warnings' ? 'warnings and errors' : 'errors'} · {vm ?? 'all VMs'} · {lines.length} line(s)
        {at > 0 ? ` · ${at} newer below` : ''}
      </Text>
      {shown.length === 0 ? <Text dimColor>No lines match.</Text> : null}
      {shown.map((l, i) => (
        <Text key={`${at}:${i}`} wrap="truncate-end" color={l.severity === 'error' ? 'red' : l.severity === 'warning' ? 'yellow' : undefined}>
          {l.severity === 'error' ? '✖' : l.severity === 'warning' ? '⚠' : ' '} {l.time.slice(11, 19)} {l.message}
        </Text>
      ))}
      <Text dimColor>e level · v VM · ↑↓ PgUp PgDn Home End scroll · Esc back</Text>
    </Box>
  );
}
